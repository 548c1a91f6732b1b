// A development OpenID Provider (oidc-provider) for the demo. Any password logs in (devInteractions).
// Access tokens for RESOURCE are RS256 JWTs with `groups`, `scp` and aud = RESOURCE.
// The issuer is http://localhost:<port> while it listens on 127.0.0.1: browsers key cookies by host
// (not port), so this keeps the IdP's cookies apart from the gateway's on 127.0.0.1.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { closeServer, listen } from './net.mjs';

export const RESOURCE = 'https://cdf.example';
export const USERS = {
  alice: { groups: ['readers'], email: 'alice@example.com' },
  bob: { groups: ['readers', 'writers'], email: 'bob@example.com' },
  carol: { groups: [], email: 'carol@example.com' },
};
/** `groups` of client-credentials tokens, by client id. */
const CLIENT_GROUPS = { svc: ['service'], 'demo-cli': ['readers'] };
/** The client a person uses with curl. Its secret is printed on purpose: a loopback-only dev IdP. */
export const CLI_CLIENT = { id: 'demo-cli', secret: 'demo-cli-secret' };

// oidc-provider announces dev features and (on Node 20) an unsupported runtime via console.warn/info.
function quietProviderNotices() {
  for (const level of ['warn', 'info']) {
    const original = console[level].bind(console);
    console[level] = (...args) => {
      if (typeof args[0] === 'string' && args[0].replace(/\x1b\[[0-9;]*m/g, '').startsWith('oidc-provider ')) return;
      original(...args);
    };
  }
}

/**
 * Starts the IdP on 127.0.0.1:port. `redirectUri` is the gateway's /auth/callback and
 * `postLogoutRedirectUris` where /auth/logout may return to; the secrets of the `gateway` and
 * `svc` clients come from the caller (the same values the gateway config reads).
 */
export async function startIdp({ port, redirectUri, postLogoutRedirectUris, gatewaySecret, svcSecret }) {
  quietProviderNotices();
  const { default: Provider, errors } = await import('oidc-provider');
  const issuer = `http://localhost:${port}`;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  // A new key each start, so a kid of its own: a gateway still running picks it up as an unknown kid.
  const kid = await calculateJwkThumbprint(jwk);
  const claimsFor = (sub) => ({ groups: USERS[sub]?.groups ?? [], email: USERS[sub]?.email });

  const provider = new Provider(issuer, {
    jwks: { keys: [{ ...jwk, kid, alg: 'RS256', use: 'sig' }] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    clients: [
      { client_id: 'gateway', client_secret: gatewaySecret, redirect_uris: [redirectUri],
        post_logout_redirect_uris: postLogoutRedirectUris,
        grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic' },
      { client_id: 'svc', client_secret: svcSecret, grant_types: ['client_credentials'],
        response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic' },
      { client_id: CLI_CLIENT.id, client_secret: CLI_CLIENT.secret, grant_types: ['client_credentials'],
        response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic' },
    ],
    pkce: { required: () => true },           // default would be public clients only
    scopes: ['openid', 'profile', 'email', 'offline_access'],
    claims: { openid: ['sub'], profile: ['name', 'groups'], email: ['email'] },
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub, ...claimsFor(sub) }) }),
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => RESOURCE,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resource) => {
          if (resource !== RESOURCE) throw new errors.InvalidTarget();
          return { scope: 'user_impersonation', audience: RESOURCE, accessTokenTTL: 3600,
            accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
        },
      },
    },
    extraTokenClaims: async (_ctx, token) => (token.accountId
      ? { ...claimsFor(token.accountId), scp: token.scope ?? '' }
      : { groups: CLIENT_GROUPS[token.clientId] ?? [], scp: token.scope ?? '' }),
    ttl: { AccessToken: 3600, ClientCredentials: 3600, RefreshToken: 86400, Interaction: 600, Session: 3600, Grant: 3600 },
  });

  const server = http.createServer(provider.callback());
  await listen(server, port, 'IdP');
  const base = `http://127.0.0.1:${port}`;
  return {
    issuer,
    tokenUrl: `${base}/token`,
    close: () => closeServer(server),
  };
}
