// Rules between keys, checked on the values the user set (peeked from the raw tree, so they run
// even when other parts of the file are broken). Defaults never take part: they adapt
// (defaults.ts), so only two explicitly set values can conflict.

import { dig, isMapping, peekBool, report, type Context } from './schema.js';
import { listenersClash, DEFAULT_HOST, type Explicit } from './defaults.js';
import { projectSchema } from './login.js';
import { adminFields, serverFields } from './sections/server.js';
import { issuerSchema, tokensFields } from './sections/tokens.js';

/** The values of the keys with adaptive defaults, as set in the file. */
export function explicitValues(raw: Record<string, unknown>, ctx: Context): Explicit {
  const s = raw.server;
  const t = raw.tokens;
  return {
    server: {
      host: serverFields.peek(s, 'host', ctx),
      port: serverFields.peek(s, 'port', ctx),
      maxHeaderBytes: serverFields.peek(s, 'maxHeaderBytes', ctx),
      headersTimeoutMs: serverFields.peek(s, 'headersTimeoutMs', ctx),
      requestTimeoutMs: serverFields.peek(s, 'requestTimeoutMs', ctx),
    },
    admin: { host: adminFields.peek(raw.admin, 'host', ctx), port: adminFields.peek(raw.admin, 'port', ctx) },
    tokens: {
      maxTokenBytes: tokensFields.peek(t, 'maxTokenBytes', ctx),
      jwksCacheMaxAgeMs: tokensFields.peek(t, 'jwksCacheMaxAgeMs', ctx),
      jwksMaxStaleMs: tokensFields.peek(t, 'jwksMaxStaleMs', ctx),
    },
  };
}

/** Reports pairs of explicitly set values that contradict each other. */
export function checkExplicitPairs(set: Explicit, ctx: Context): void {
  const { server, admin, tokens } = set;
  if (tokens.jwksCacheMaxAgeMs !== undefined && tokens.jwksMaxStaleMs !== undefined && tokens.jwksMaxStaleMs < tokens.jwksCacheMaxAgeMs) {
    report(ctx, 'tokens.jwksMaxStaleMs', `must be at least tokens.jwksCacheMaxAgeMs (${tokens.jwksCacheMaxAgeMs})`, tokens.jwksMaxStaleMs);
  }
  if (tokens.maxTokenBytes !== undefined && server.maxHeaderBytes !== undefined && tokens.maxTokenBytes >= server.maxHeaderBytes) {
    report(ctx, 'tokens.maxTokenBytes', `must be less than server.maxHeaderBytes (${server.maxHeaderBytes})`, tokens.maxTokenBytes);
  }
  const whole = server.requestTimeoutMs ?? 0;
  if (server.headersTimeoutMs !== undefined && whole > 0 && server.headersTimeoutMs > whole) {
    report(ctx, 'server.headersTimeoutMs', `must not exceed server.requestTimeoutMs (${whole})`, server.headersTimeoutMs);
  }
  const adminHost = admin.host ?? DEFAULT_HOST;
  const serverHost = server.host ?? DEFAULT_HOST;
  if (server.port !== undefined && admin.port !== undefined
      && listenersClash({ host: adminHost, port: admin.port }, { host: serverHost, port: server.port })) {
    report(ctx, 'admin.port', `must differ from server.port (${server.port}) ` + (adminHost === serverHost ? 'on the same host'
      : `while admin.host (${adminHost}) and server.host (${serverHost}) may be the same interface`), admin.port);
  }
}

/** `issuers` may be empty only when every route is public. */
export function checkIssuersNeeded(raw: Record<string, unknown>, ctx: Context): void {
  if (!Array.isArray(raw.issuers) || raw.issuers.length > 0) return;
  const routes = raw.routes;
  const allPublic = Array.isArray(routes) && routes.every((r) => isMapping(r) && peekBool(r.public, ctx.env) === true);
  if (!allPublic) report(ctx, 'issuers', 'must list at least one issuer (only a configuration whose routes are all public may omit them)');
}

/** A login project's issuer is trusted under `issuers`, and its `resource` is one of that issuer's audiences. */
export function checkLoginIssuers(raw: Record<string, unknown>, ctx: Context): void {
  const projects = dig(raw, 'login', 'projects');
  if (!Array.isArray(raw.issuers) || !isMapping(projects)) return;
  const issuers = raw.issuers.map((i) => ({
    issuer: issuerSchema.peek(i, 'issuer', ctx) ?? dig(i, 'issuer'),
    audiences: issuerSchema.peek(i, 'audiences', ctx),
  }));
  for (const [name, p] of Object.entries(projects)) {
    const at = `login.projects.${name}`;
    const issuer = projectSchema.peek(p, 'issuer', ctx);
    if (issuer === undefined) continue;
    const trusted = issuers.find((i) => i.issuer === issuer);
    if (trusted === undefined) {
      report(ctx, `${at}.issuer`, 'is not listed under issuers (the session\'s access token is verified like a bearer token)', issuer);
      continue;
    }
    const resource = projectSchema.peek(p, 'resource', ctx);
    if (resource !== undefined && resource !== null && trusted.audiences !== undefined && !trusted.audiences.includes(resource)) {
      report(ctx, `${at}.resource`, `is not one of the issuer's audiences (${trusted.audiences.join(', ')})`, resource);
    }
  }
}

/** Names a route may refer to, as written (even when their own sections are invalid). */
export function routeRefs(raw: Record<string, unknown>) {
  const projects = dig(raw, 'login', 'projects');
  return {
    upstreams: isMapping(raw.upstreams) ? Object.keys(raw.upstreams) : null,
    projects: !isMapping(raw.login) ? null : isMapping(projects) ? Object.keys(projects) : [],
  };
}
