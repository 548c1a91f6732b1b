// The credential each upstream receives (DESIGN.md: user-token | client-credentials | api-key |
// none). One CredentialSource per upstream, built once from config. The hot path is synchronous
// for every type while a client-credentials token is cached.
import type { Logger } from 'pino';
import * as oidc from 'openid-client';
import type { ClientCredentials, UpstreamConfig } from '../config/types.js';
import { boundedFetch, IDP_RESPONSE_MAX_BYTES } from '../bounded-fetch.js';
import { CredentialUnavailableError } from '../errors.js';
import { noopMetrics, type Metrics } from '../metrics.js';
import { systemClock, type Clock } from '../clock.js';
import type { Principal } from '../token/principal.js';
import { HEADER_SAFE } from './headers.js';
import { sharedTokenKey, type SharedTokens } from './shared-token.js';

export interface Credential {
  readonly header: string;
  readonly value: string;
  /**
   * The value is a valid header value, made sure of once where it was made, so the header rules
   * need not scan it on every request: `Bearer ` and a verified JWT (base64url parts and dots
   * only), an api-key the configuration check accepted, or a client-credentials token checked
   * when it came (bearerCredential).
   */
  readonly headerSafe?: true;
}

export interface CredentialSource {
  /**
   * Credential for this request; may be sync. `token` is the caller's verified access token (the
   * bearer token, or the session's), passed per request so that nothing caches it longer than
   * the request. Throws (synchronously, or by rejecting) a CredentialUnavailableError (503) when
   * none can be had: never forward without one.
   */
  get(principal: Principal, token: string): Credential | null | Promise<Credential>;
  /** The secret to scrub from responses (api-key value / current client-credentials token), or null. */
  secret(): string | null;
  close(): void;
}

export interface CredentialDeps {
  clock?: Clock;
  metrics?: Metrics;
  logger?: Logger;
  fetch?: typeof fetch;
  /** Tokens shared by the replicas through redis; absent: this process asks for its own. */
  shared?: SharedTokens | null;
}

/**
 * The credential for a token the IdP issued (directly, or through the replicas' shared token).
 * One that cannot be sent as a header value (CR, LF, controls) is a failed token request (503),
 * checked once here, never a request forwarded without its credential. The message names no token.
 */
function bearerCredential(token: string): Credential {
  const value = `Bearer ${token}`;
  if (!HEADER_SAFE.test(value)) throw new Error('token response has an access_token that is not a valid header value');
  return Object.freeze({ header: 'authorization', value, headerSafe: true });
}

/** After a failed token request, calls within this window fail without a new request (ms). */
export const FAILURE_COOLDOWN_MS = 1000;

export function createCredentialSource(upstream: UpstreamConfig, deps: CredentialDeps = {}): CredentialSource {
  const cfg = upstream.credentials;
  switch (cfg.type) {
    case 'none':
      return { get: () => null, secret: () => null, close() {} };
    case 'user-token':
      return {
        get: (_principal, token) => ({ header: 'authorization', value: `Bearer ${token}`, headerSafe: true }),
        secret: () => null,
        close() {},
      };
    case 'api-key': {
      const credential: Credential = Object.freeze({ header: cfg.header.toLowerCase(), value: cfg.value, headerSafe: true });
      return { get: () => credential, secret: () => cfg.value, close() {} };
    }
    case 'client-credentials':
      return new ClientCredentialsSource(upstream.name, cfg, deps);
  }
}

interface CachedToken {
  readonly credential: Credential;
  readonly token: string;
  /** ms since the epoch (injected clock). */
  readonly expiresAt: number;
  readonly renewAt: number;
}

/** RFC 6749 §2.3.1 / appendix B form-urlencoding (what client_secret_basic applies before base64). */
function formUrlEncode(s: string): string {
  return encodeURIComponent(s).replace(/%20/g, '+').replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

class ClientCredentialsSource implements CredentialSource {
  private readonly name: string;
  private readonly cfg: ClientCredentials;
  private readonly clock: Clock;
  private readonly metrics: Metrics;
  private readonly logger: Logger | undefined;
  private readonly config: oidc.Configuration;
  private readonly params: Record<string, string>;
  /** Every form the client secret may take on the wire; scrubbed from anything we log. */
  private readonly secretForms: readonly string[];

  private readonly shared: SharedTokens | null;
  private readonly sharedKey: string;

  private current: CachedToken | null = null;
  private inflight: Promise<CachedToken> | null = null;
  private failedAt = Number.NEGATIVE_INFINITY;
  private lastError: CredentialUnavailableError | null = null;
  private closed = false;

  constructor(name: string, cfg: ClientCredentials, deps: CredentialDeps) {
    this.name = name;
    this.cfg = cfg;
    this.clock = deps.clock ?? systemClock;
    this.metrics = deps.metrics ?? noopMetrics;
    this.logger = deps.logger;
    this.shared = deps.shared ?? null;
    this.sharedKey = sharedTokenKey(cfg);

    const tokenUrl = new URL(cfg.tokenUrl);
    const auth = cfg.tokenEndpointAuthMethod === 'client_secret_post'
      ? oidc.ClientSecretPost(cfg.clientSecret)
      : oidc.ClientSecretBasic(cfg.clientSecret);
    // No discovery: the token endpoint is configured. The issuer value is only an identifier
    // here (a client_credentials response carries no id_token to check it against).
    this.config = new oidc.Configuration(
      { issuer: tokenUrl.origin, token_endpoint: tokenUrl.href },
      cfg.clientId, undefined, auth,
    );
    this.config.timeout = cfg.timeoutMs / 1000;   // openid-client takes seconds
    if (tokenUrl.protocol === 'http:') oidc.allowInsecureRequests(this.config);
    // The token endpoint's answer is cut off at IDP_RESPONSE_MAX_BYTES while it is read.
    const f = boundedFetch(IDP_RESPONSE_MAX_BYTES, deps.fetch ?? ((input, init) => fetch(input, init)));
    this.config[oidc.customFetch] = (url, options) => f(url, options as RequestInit);

    const params: Record<string, string> = {};
    if (cfg.scopes.length > 0) params.scope = cfg.scopes.join(' ');
    if (cfg.resource !== null) params.resource = cfg.resource;
    if (cfg.audience !== null) params.audience = cfg.audience;
    this.params = params;

    const s = cfg.clientSecret;
    this.secretForms = s === '' ? [] : [...new Set([
      s, encodeURIComponent(s), formUrlEncode(s),
      Buffer.from(`${formUrlEncode(cfg.clientId)}:${formUrlEncode(s)}`).toString('base64'),
    ])];
  }

  get(_principal: Principal, _token: string): Credential | Promise<Credential> {
    if (this.closed) throw new CredentialUnavailableError(`upstream ${this.name}: credential source closed`);
    const now = this.clock();
    const cur = this.current;
    if (cur !== null && now < cur.expiresAt) {
      // Valid: serve it; past renewAt, start the one background renewal (unless cooling down).
      if (now >= cur.renewAt && this.inflight === null && now - this.failedAt >= FAILURE_COOLDOWN_MS) {
        this.refresh().catch(() => { /* logged in refresh(); callers keep the current token */ });
      }
      return cur.credential;
    }
    if (this.inflight !== null) return this.inflight.then((t) => t.credential);
    if (now - this.failedAt < FAILURE_COOLDOWN_MS && this.lastError !== null) throw this.lastError;
    return this.refresh().then((t) => t.credential);
  }

  secret(): string | null {
    return this.current === null ? null : this.current.token;
  }

  close(): void {
    this.closed = true;
    this.current = null;
  }

  /** Single flight: every caller shares the one request in progress. */
  private refresh(): Promise<CachedToken> {
    if (this.inflight !== null) return this.inflight;
    const p = this.obtain().then(
      (token) => {
        if (!this.closed) this.current = token;
        this.failedAt = Number.NEGATIVE_INFINITY;
        this.lastError = null;
        this.inflight = null;
        this.metrics.clientCredentialsRefresh(this.name, 'ok');
        return token;
      },
      (err: unknown) => {
        const message = this.describe(err);
        this.failedAt = this.clock();
        // No cause: openid-client errors carry the response body, which may hold a token.
        this.lastError = new CredentialUnavailableError(`upstream ${this.name}: client-credentials token request failed: ${message}`);
        this.inflight = null;
        this.metrics.clientCredentialsRefresh(this.name, 'error');
        this.logger?.warn({ upstream: this.name, error: message }, 'client-credentials token request failed');
        throw this.lastError;
      },
    );
    this.inflight = p;
    return p;
  }

  /** From the token endpoint, or through the replicas' shared token when configured. */
  private async obtain(): Promise<CachedToken> {
    if (this.shared === null) return this.request(this.clock());
    const d = await this.shared.obtain(this.sharedKey, this.clock, () => this.request(this.clock()));
    return { credential: bearerCredential(d.token), token: d.token, expiresAt: d.expiresAt, renewAt: d.renewAt };
  }

  private async request(startedAt: number): Promise<CachedToken> {
    const res = await oidc.clientCredentialsGrant(this.config, this.params);
    const token = res.access_token;
    const expiresIn = res.expires_in;
    if (typeof token !== 'string' || token === '') throw new Error('token response has no access_token');
    if (typeof expiresIn !== 'number' || !Number.isFinite(expiresIn) || expiresIn <= 0) {
      throw new Error('token response has no usable expires_in');
    }
    const lifetimeMs = expiresIn * 1000;
    const expiresAt = startedAt + lifetimeMs;
    const renewAt = expiresAt - Math.min(this.cfg.renewBeforeSec * 1000, lifetimeMs / 2);
    return { credential: bearerCredential(token), token, expiresAt, renewAt };
  }

  /** A loggable, secret-free description of a failure (message, OAuth error code, HTTP status). */
  private describe(err: unknown): string {
    let msg = err instanceof Error ? err.message : 'unknown error';
    const e = err as { error?: unknown; status?: unknown; code?: unknown; cause?: unknown };
    if (err instanceof oidc.ResponseBodyError) {
      msg += ` (${String(e.error)}, HTTP ${String(e.status)})`;
    } else if (typeof e.code === 'string' && e.code !== '') {
      msg += ` (${e.code})`;
    }
    const cause = e.cause;
    if (cause instanceof Response) msg += ` (HTTP ${cause.status})`;
    else if (err instanceof TypeError && cause instanceof Error) {
      // fetch's network failure: the socket error's code (ECONNREFUSED, ENOTFOUND, …).
      const code = (cause as { code?: unknown }).code;
      msg += `: ${typeof code === 'string' ? code : cause.message}`;
    }
    for (const form of this.secretForms) msg = msg.split(form).join('[redacted]');
    return msg.length > 300 ? `${msg.slice(0, 300)}…` : msg;
  }
}
