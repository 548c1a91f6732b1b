// The OIDC relying party for one login project, on openid-client 6 (certified): discovery,
// authorization code + PKCE (S256) with state and nonce, the code exchange with ID-token
// signature checks, refresh, and the end-session URL. No protocol code of our own.
import * as oidc from 'openid-client';
import { boundedFetch, IDP_RESPONSE_MAX_BYTES } from '../bounded-fetch.js';
import type { LoginProjectConfig } from '../config/types.js';
import { GatewayError } from '../errors.js';
import { isAuthenticationFailure } from '../errors.js';
import { describeError } from '../log.js';

/** The secrets of one login attempt, kept only in the sealed flow cookie. */
export interface FlowSecrets {
  readonly state: string;
  readonly nonce: string;
  readonly verifier: string;
}

export interface Tokens {
  readonly accessToken: string;
  readonly refreshToken: string | null;
  /** Claims of the validated ID token (absent on a refresh that returns none). */
  readonly claims: Readonly<Record<string, unknown>> | null;
}

export interface LoginClientOptions {
  readonly redirectUri: string;
  readonly fetch?: typeof fetch;
  /** Bound on every IdP request (discovery, token, JWKS), in ms. */
  readonly timeoutMs?: number;
}

/** Discovery or the IdP failed: not the user's fault, answered 503 / sent to the error page. */
export class IdpUnavailableError extends Error {}

export class LoginClient {
  readonly project: LoginProjectConfig;
  private readonly opts: LoginClientOptions;
  private config: Promise<oidc.Configuration> | null = null;

  constructor(project: LoginProjectConfig, opts: LoginClientOptions) {
    this.project = project;
    this.opts = opts;
  }

  /** Discovery once; a failure is not cached, so the next login retries it. */
  private configuration(): Promise<oidc.Configuration> {
    if (this.config === null) {
      const p = this.project;
      const auth = p.clientSecret === null ? oidc.None()
        : p.tokenEndpointAuthMethod === 'client_secret_post' ? oidc.ClientSecretPost(p.clientSecret) : oidc.ClientSecretBasic(p.clientSecret);
      const issuer = new URL(p.issuer);
      const execute: Array<(c: oidc.Configuration) => void> = [oidc.enableNonRepudiationChecks];
      if (issuer.protocol === 'http:') execute.unshift(oidc.allowInsecureRequests);
      // Every IdP answer is cut off at IDP_RESPONSE_MAX_BYTES while it is read.
      const f = boundedFetch(IDP_RESPONSE_MAX_BYTES, this.opts.fetch ?? ((input, init) => fetch(input, init)));
      const custom: Pick<oidc.DiscoveryRequestOptions, typeof oidc.customFetch> = {
        [oidc.customFetch]: (url: string, options: unknown) => f(url, options as RequestInit),
      };
      this.config = oidc.discovery(issuer, p.clientId, undefined, auth, {
        execute, timeout: (this.opts.timeoutMs ?? 10_000) / 1000, ...custom,
      }).then((c) => {
        c.timeout = (this.opts.timeoutMs ?? 10_000) / 1000;
        const cf = custom[oidc.customFetch];
        if (cf !== undefined) c[oidc.customFetch] = cf;
        return c;
      }, (err: unknown) => {
        this.config = null;
        throw new IdpUnavailableError(`discovery of ${p.issuer} failed: ${describe(err)}`, { cause: err });
      });
    }
    return this.config;
  }

  newFlow(): FlowSecrets {
    return { state: oidc.randomState(), nonce: oidc.randomNonce(), verifier: oidc.randomPKCECodeVerifier() };
  }

  async authorizationUrl(flow: FlowSecrets): Promise<URL> {
    const config = await this.configuration();
    const p = this.project;
    const params: Record<string, string> = {
      ...p.authorizationParams,
      redirect_uri: this.opts.redirectUri,
      response_type: 'code',
      scope: p.scopes.join(' '),
      state: flow.state,
      nonce: flow.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(flow.verifier),
      code_challenge_method: 'S256',
    };
    if (p.resource !== null) params.resource = p.resource;
    return oidc.buildAuthorizationUrl(config, params);
  }

  /**
   * The callback URL (with code, state, iss) → tokens. openid-client checks state, the RFC 9207
   * `iss` parameter, PKCE, and the ID token's signature, iss, aud, exp and nonce.
   */
  async exchange(callbackUrl: URL, flow: FlowSecrets): Promise<Tokens> {
    const config = await this.configuration();
    const extra: Record<string, string> = {};
    if (this.project.resource !== null) extra.resource = this.project.resource;
    const res = await oidc.authorizationCodeGrant(config, callbackUrl, {
      pkceCodeVerifier: flow.verifier, expectedState: flow.state, expectedNonce: flow.nonce, idTokenExpected: true,
    }, extra);
    return toTokens(res);
  }

  async refresh(refreshToken: string): Promise<Tokens> {
    const config = await this.configuration();
    const extra: Record<string, string> = {};
    if (this.project.resource !== null) extra.resource = this.project.resource;
    return toTokens(await oidc.refreshTokenGrant(config, refreshToken, extra));
  }

  /**
   * The IdP's end_session_endpoint URL, or null when it has none (or discovery fails). It names
   * the client (`client_id`, so the IdP can check post_logout_redirect_uri against the client's
   * registration, RP-Initiated Logout 1.0 §2) and never carries the ID token: no token goes in a
   * URL, where browser history, the IdP's access logs and Referer would keep it.
   */
  async endSessionUrl(postLogoutRedirect: string): Promise<URL | null> {
    let config: oidc.Configuration;
    try { config = await this.configuration(); } catch { return null; }
    if (config.serverMetadata().end_session_endpoint === undefined) return null;
    return oidc.buildEndSessionUrl(config, { post_logout_redirect_uri: postLogoutRedirect, client_id: this.project.clientId });
  }
}

function toTokens(res: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers): Tokens {
  const claims = res.claims();
  return {
    accessToken: res.access_token,
    refreshToken: res.refresh_token ?? null,
    claims: claims === undefined ? null : { ...claims },
  };
}

/** The IdP answered and said no (e.g. invalid_grant), or its answer failed validation. */
export function isRejection(err: unknown): boolean {
  if (err instanceof GatewayError) return isAuthenticationFailure(err);
  // 4xx from the token endpoint (invalid_grant, …) is a refusal; 5xx is an outage.
  if (err instanceof oidc.ResponseBodyError) return err.status >= 400 && err.status < 500;
  return err instanceof oidc.AuthorizationResponseError
    || (err instanceof Error && (err as { code?: unknown }).code === 'OAUTH_JWT_CLAIM_COMPARISON_FAILED');
}

/** openid-client codes for an answer that is no OAuth answer at all (a proxy's error page, a 404). */
const NOT_AN_ANSWER = new Set(['OAUTH_RESPONSE_IS_NOT_CONFORM', 'OAUTH_RESPONSE_IS_NOT_JSON']);

/**
 * An answer whose body is not the shape its endpoint must send: a token response of `{}` or `[]`
 * (no string `access_token`, `token_type`, `id_token`), a key set whose `keys` is no array, JSON
 * that does not parse. oauth4webapi reports these as OAUTH_INVALID_RESPONSE with the offending
 * body as the cause (`{ body }`), or OAUTH_PARSE_ERROR for the response body. The same codes also
 * report checks failing on a well-formed answer (state, iss, the ID token's signature and claims:
 * their cause is no `{ body }`, and a JWT that does not parse names the JWT, not the response);
 * those stay refusals.
 */
function isMalformedAnswer(e: Error & { code?: unknown }): boolean {
  if (e.code === 'OAUTH_INVALID_RESPONSE') {
    const cause = e.cause;
    return typeof cause === 'object' && cause !== null && !(cause instanceof Error) && Object.hasOwn(cause, 'body');
  }
  return e.code === 'OAUTH_PARSE_ERROR' && e.message.startsWith('failed to parse "response" body');
}

/**
 * Whether `err` says the IdP could not be used (unreachable, timed out, 5xx, an answer that is
 * no OAuth answer or not the shape its endpoint must send, its keys unobtainable) rather than
 * that it said no: 'timeout', 'unavailable',
 * or null for a refusal or a failed check (the login itself failed).
 */
export function idpFailure(err: unknown): 'timeout' | 'unavailable' | null {
  if (err instanceof GatewayError) return err.status >= 500 ? 'unavailable' : null; // KeysUnavailableError
  if (err instanceof oidc.ResponseBodyError) return err.status >= 500 ? 'unavailable' : null;
  let unavailable = false;
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (e.name === 'TimeoutError' || code === 'OAUTH_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') return 'timeout';
    // fetch() fails with a TypeError (cause: ECONNREFUSED, ENOTFOUND, …); discovery failures are wrapped.
    if (e instanceof IdpUnavailableError || e instanceof TypeError || (typeof code === 'string' && NOT_AN_ANSWER.has(code))) unavailable = true;
    else if (isMalformedAnswer(e)) unavailable = true;
  }
  return unavailable ? 'unavailable' : null;
}

/** Error text without response bodies (they may hold tokens or codes). */
export function describe(err: unknown): string {
  if (err instanceof oidc.ResponseBodyError) return `${err.error}${err.status ? ` (HTTP ${err.status})` : ''}`;
  if (err instanceof oidc.AuthorizationResponseError) return `authorization error ${err.error}`;
  // Message, code and cause chain: `fetch failed < connect ECONNREFUSED 127.0.0.1:4000 (ECONNREFUSED)`.
  return err === undefined || err === null ? 'unknown error' : describeError(err);
}
