// Header rules between client and upstream (DESIGN.md "Contract details"). Pure functions on
// the hot path: every lookup is a precomputed Set, and a request with nothing to strip costs one
// pass over its headers and one new object.
import type { IncomingHttpHeaders } from 'node:http';
import type { Principal } from '../token/principal.js';
import type { Credential } from './credentials.js';
import { util as undiciUtil } from 'undici';
import { rewriteLocation, type RedirectBases } from './location.js';

export interface ForwardContext {
  /** Socket remote address. */
  readonly peer: string;
  /** This listener's scheme. */
  readonly proto: 'http' | 'https';
  readonly fromTrustedProxy: boolean;
  /** null on public routes. */
  readonly principal: Principal | null;
  /** The upstream credential; `header` is lower-case. */
  readonly credential: Credential | null;
  /** Host header for the upstream (host[:port]). */
  readonly upstreamHost: string;
}

const HOP_BY_HOP: readonly string[] = [
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate',
  'te', 'trailer', 'transfer-encoding', 'upgrade',
];

/** Client request headers that never reach an upstream (besides `_` names and x-auth-request-*). */
const DROPPED_REQUEST = new Set<string>([
  'authorization', 'api-key',
  'x-forwarded-user', 'x-forwarded-email', 'x-forwarded-groups', 'x-forwarded-preferred-username',
  'remote-user', 'x-remote-user',
  'x-original-url', 'x-rewrite-url', 'x-original-uri', 'x-forwarded-uri', 'x-forwarded-prefix',
  'x-forwarded-method', 'x-original-method', 'forwarded',
  'x-http-method-override', 'x-http-method', 'x-method-override',
  // The gateway answers Expect itself (after deciding); undici refuses to send it.
  'expect',
  ...HOP_BY_HOP,
]);

const HOP_BY_HOP_SET = new Set<string>(HOP_BY_HOP);

/**
 * Upstream response headers that only name the upstream's software and version (the gateway is
 * the origin as far as clients know): fingerprinting aids, of no use to a client. nginx hides
 * Server by default; X-Powered-By and the ASP.NET pair are the usual version leaks.
 */
const DROPPED_RESPONSE = new Set<string>(['server', 'x-powered-by', 'x-aspnet-version', 'x-aspnetmvc-version']);

/** What the response rules need to know about the request besides the upstream's headers. */
export interface ResponseContext {
  /** The route's redirect bases: a Location into the upstream's base path is rewritten. */
  readonly redirect?: RedirectBases | null;
  /** The request was authenticated by a session cookie, or the response carries the gateway's own Set-Cookie: without the upstream's own Cache-Control, `private`. */
  readonly session?: boolean;
}

/**
 * Headers the gateway sets itself (or that frame the body): a client's `Connection` header may
 * not name them away.
 */
const NOT_CONNECTION_REMOVABLE = new Set<string>([
  'host', 'content-length', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host',
]);

const AUTH_REQUEST_PREFIX = 'x-auth-request-';
/** CR, LF or NUL: never forwarded, whatever the source. */
const INJECTION = /[\r\n\0]/;
/**
 * What Node and undici accept in a header value (latin1 without controls other than TAB). The
 * configuration check uses this too (config/schema/formats.ts), so no configured credential
 * passes `check` and is then left out here.
 */
export const HEADER_SAFE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** The gateway's cookies: `cdf-gw*`, `__Host-cdf-gw*`, `__Secure-cdf-gw*` (matched case-insensitively). */
export function isGatewayCookieName(name: string): boolean {
  const n = name.toLowerCase();
  return n.startsWith('cdf-gw') || n.startsWith('__host-cdf-gw') || n.startsWith('__secure-cdf-gw');
}

/**
 * Cookie names an upstream may neither set nor receive: any name containing `cdf-gw` (any case,
 * anywhere), and the empty name, which browsers send as a bare value (`=cdf-gw-session=x` comes
 * back as `Cookie: cdf-gw-session=x`).
 */
function isReservedCookieName(name: string): boolean {
  return name === '' || name.toLowerCase().includes('cdf-gw');
}

function clean(value: string | string[]): string | string[] | undefined {
  if (typeof value === 'string') return INJECTION.test(value) ? undefined : value;
  let out: string[] | undefined;
  for (let i = 0; i < value.length; i++) {
    const v = value[i]!;
    if (INJECTION.test(v)) {
      out ??= value.slice(0, i);
    } else if (out !== undefined) {
      out.push(v);
    }
  }
  if (out === undefined) return value.length > 0 ? value : undefined;
  return out.length > 0 ? out : undefined;
}

/** A single-valued header (joined if repeated), or undefined when empty or holding CR/LF/NUL. */
function cleanString(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const s = joinList(value);
  return s === '' || INJECTION.test(s) ? undefined : s;
}

/**
 * Identity values come from token claims: forwarded only when valid as a header value as is
 * (a claim with CR/LF/NUL or characters beyond latin1 is left out, never altered, so no claim
 * can be bent into another user's name). `checked`: the principal's values were made sure of
 * when it was made (Principal.headerSafe), so they are not scanned again.
 */
function identityValue(value: string | null, checked: boolean): string | undefined {
  if (value === null || value === '' || !(checked || HEADER_SAFE.test(value))) return undefined;
  return value;
}

function joinList(value: string | string[]): string {
  return typeof value === 'string' ? value : value.join(', ');
}

/** The app's cookies without the gateway's; null when none remain. */
function appCookies(value: string | string[]): string | null {
  const joined = typeof value === 'string' ? value : value.join('; ');
  if (!joined.toLowerCase().includes('cdf-gw')) return joined === '' ? null : joined;
  const kept: string[] = [];
  for (const part of joined.split(';')) {
    const pair = part.trim();
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const name = eq === -1 ? '' : pair.slice(0, eq).trim();
    // A nameless pair (`=v`, or no `=`) is judged by all of it: some parsers read `=cdf-gw-x=1` as cdf-gw-x.
    const gateway = name === '' ? pair.toLowerCase().includes('cdf-gw') : isGatewayCookieName(name);
    if (!gateway) kept.push(pair);
  }
  return kept.length > 0 ? kept.join('; ') : null;
}

function stripV4Mapped(address: string): string {
  return address.length > 7 && /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(address) ? address.slice(7) : address;
}

/**
 * A new header object for the upstream request: the client's headers minus everything the
 * contract drops, plus Host, X-Forwarded-*, identity headers and the upstream credential.
 * Output names are lower-case.
 */
export function upstreamRequestHeaders(
  incoming: IncomingHttpHeaders, ctx: ForwardContext,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const credentialHeader = ctx.credential === null ? null : ctx.credential.header;

  // Headers named in the client's Connection header are hop-by-hop too.
  let connectionNamed: Set<string> | null = null;
  const connection = incoming.connection;
  if (connection !== undefined) {
    for (const token of joinList(connection).split(',')) {
      const t = token.trim().toLowerCase();
      if (t !== '' && !NOT_CONNECTION_REMOVABLE.has(t)) (connectionNamed ??= new Set()).add(t);
    }
  }

  let host: string | string[] | undefined;
  let xfFor: string | string[] | undefined;
  let xfProto: string | string[] | undefined;
  let xfHost: string | string[] | undefined;
  let cookie: string | string[] | undefined;

  for (const rawName in incoming) {
    const value = incoming[rawName];
    if (value === undefined) continue;
    const name = rawName.toLowerCase();
    if (
      DROPPED_REQUEST.has(name) || name.includes('_') || name.startsWith(AUTH_REQUEST_PREFIX) ||
      name === credentialHeader || name.charCodeAt(0) === 58 /* ':' HTTP/2 pseudo-header */ ||
      (connectionNamed !== null && connectionNamed.has(name))
    ) continue;
    switch (name) {
      case 'host': host = value; continue;
      case 'x-forwarded-for': xfFor = value; continue;
      case 'x-forwarded-proto': xfProto = value; continue;
      case 'x-forwarded-host': xfHost = value; continue;
      case 'cookie': cookie = value; continue;
      // The client address as nginx passes it (`proxy_set_header X-Real-IP $remote_addr`): an
      // upstream may trust it as X-Forwarded-For's first hop, so only a trusted proxy's is kept.
      case 'x-real-ip': {
        const v = ctx.fromTrustedProxy ? cleanString(value) : undefined;
        if (v !== undefined) out[name] = v;
        continue;
      }
      default: {
        const v = clean(value);
        if (v !== undefined) out[name] = v;
      }
    }
  }

  out.host = ctx.upstreamHost;

  if (cookie !== undefined) {
    const c = clean(cookie);
    const kept = c === undefined ? null : appCookies(c);
    if (kept !== null) out.cookie = kept;
  }

  const peer = stripV4Mapped(ctx.peer);
  const requestHost = cleanString(host);
  if (ctx.fromTrustedProxy) {
    const prior = cleanString(xfFor);
    out['x-forwarded-for'] = prior === undefined ? peer : `${prior}, ${peer}`;
    out['x-forwarded-proto'] = cleanString(xfProto) ?? ctx.proto;
    const fwdHost = cleanString(xfHost) ?? requestHost;
    if (fwdHost !== undefined) out['x-forwarded-host'] = fwdHost;
  } else {
    out['x-forwarded-for'] = peer;
    out['x-forwarded-proto'] = ctx.proto;
    if (requestHost !== undefined) out['x-forwarded-host'] = requestHost;
  }

  const p = ctx.principal;
  if (p !== null) {
    const checked = p.headerSafe === true;
    const user = identityValue(p.sub, checked);
    if (user !== undefined) out['x-auth-request-user'] = user;
    const email = identityValue(p.email, checked);
    if (email !== undefined) out['x-auth-request-email'] = email;
    const groups = identityValue(p.groupsHeader, checked);
    if (groups !== undefined) out['x-auth-request-groups'] = groups;
  }

  // Every credential source marks what it made sure of once (a ~700-character user token scanned
  // on every request cost ~0.4 µs, Node 24, one core); an unmarked value is scanned here.
  if (ctx.credential !== null && (ctx.credential.headerSafe === true || HEADER_SAFE.test(ctx.credential.value))) {
    out[ctx.credential.header] = ctx.credential.value;
  }
  return out;
}

/** The cookie name a browser reads from a Set-Cookie line (RFC 6265bis §5.6: no `=` → empty name). */
function setCookieName(sc: string): string {
  const semi = sc.indexOf(';');
  const pair = semi === -1 ? sc : sc.slice(0, semi);
  const eq = pair.indexOf('=');
  return eq === -1 ? '' : pair.slice(0, eq).trim();
}

function containsSecret(value: string | string[], secret: string): boolean {
  if (typeof value === 'string') return value.includes(secret);
  for (const v of value) if (v.includes(secret)) return true;
  return false;
}

/**
 * Upstream response headers fit for the client: no hop-by-hop headers (nor those the upstream's
 * Connection names), no Set-Cookie for a gateway cookie, no Server/X-Powered-By, and, when
 * `secret` (the injected api-key or client-credentials token) is at least 8 characters, no header
 * whose value holds it. A Location into the upstream's base path points at the gateway instead;
 * a session-authenticated response without Cache-Control gets `private` (RFC 9111 §3.5 keeps
 * shared caches off only requests with Authorization, and cookies are not that).
 */
export function clientResponseHeaders(
  upstream: Record<string, string | string[] | undefined>, secret: string | null, ctx: ResponseContext = {},
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const scrub = scrubbed(secret);
  const connection = upstream.connection ?? upstream.Connection;
  const connectionNamed = connection === undefined ? null : namedBy(connection, null);

  for (const rawName in upstream) {
    const value = upstream[rawName];
    if (value === undefined) continue;
    const name = rawName.toLowerCase();
    if (notForClient(name, connectionNamed)) continue;
    if (name === 'set-cookie') {
      if (typeof value === 'string') {
        if (keptCookie(value, scrub)) out[name] = value;
      } else {
        const kept = value.filter((sc) => keptCookie(sc, scrub));
        if (kept.length > 0) out[name] = kept;
      }
      continue;
    }
    if (scrub !== null && containsSecret(value, scrub)) continue;
    if (typeof value === 'string') out[name] = clientValue(name, value, ctx);
    else out[name] = name === 'location' ? value.map((v) => clientValue(name, v, ctx)) : value;
  }
  return sessionPrivate(out, ctx);
}

/**
 * clientResponseHeaders straight from undici's raw response headers (name, value, … as Buffers,
 * in order), without undici's parseHeaders object in between: the same headers with the same
 * values (a repeated header's values become an array, in their order, as parseHeaders makes
 * them). Only distinct headers may come in another order, which carries no meaning (RFC 9110
 * §5.3): a header whose first value was dropped (a gateway cookie) takes the place of its first
 * kept one. A header whose value holds the secret is dropped whole, all its values.
 */
export function clientResponseHeadersRaw(raw: readonly Buffer[], secret: string | null, ctx: ResponseContext = {}): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const scrub = scrubbed(secret);
  // Names first: Connection may name a header that comes before it.
  const names: string[] = [];
  let connectionNamed: Set<string> | null = null;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = undiciUtil.headerNameToString(raw[i]!); // as parseHeaders names it: lower-cased
    names.push(name);
    if (name === 'connection') connectionNamed = namedBy(raw[i + 1]!.toString('latin1'), connectionNamed);
  }
  let holdSecret = null as Set<string> | null;
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    // `__proto__` is no header a client gets (an assignment would not even make it a property).
    if (notForClient(name, connectionNamed) || name === '__proto__' || holdSecret?.has(name) === true) continue;
    const value = raw[2 * i + 1]!.toString('latin1');
    let kept: string;
    if (name === 'set-cookie') {
      if (!keptCookie(value, scrub)) continue;
      kept = value;
    } else if (scrub !== null && value.includes(scrub)) {
      delete out[name];
      (holdSecret ??= new Set()).add(name);
      continue;
    } else {
      kept = clientValue(name, value, ctx);
    }
    // Own properties only: a header named like an Object.prototype member (constructor) starts afresh.
    let had = out[name];
    if (had !== undefined && !Object.hasOwn(out, name)) had = undefined;
    if (had === undefined) out[name] = kept;
    else if (typeof had === 'string') out[name] = [had, kept];
    else had.push(kept);
  }
  return sessionPrivate(out, ctx);
}

/** The secret to keep out of response headers: null when none, or too short to look for. */
function scrubbed(secret: string | null): string | null {
  return secret !== null && secret.length >= 8 ? secret : null;
}

/**
 * The header names a Connection value lists (lower-cased), added to `named`; hop-by-hop names are
 * dropped anyway, so `keep-alive` (nearly every response's) adds nothing.
 */
function namedBy(connection: string | string[], named: Set<string> | null): Set<string> | null {
  if (connection === 'keep-alive') return named;
  for (const token of joinList(connection).split(',')) {
    const t = token.trim().toLowerCase();
    if (t !== '' && !HOP_BY_HOP_SET.has(t)) (named ??= new Set()).add(t);
  }
  return named;
}

/** Hop-by-hop (and what Connection names), or a header we never pass on (Server, X-Powered-By). */
function notForClient(name: string, connectionNamed: Set<string> | null): boolean {
  return HOP_BY_HOP_SET.has(name) || DROPPED_RESPONSE.has(name) || (connectionNamed !== null && connectionNamed.has(name));
}

/** Set-Cookie is judged per cookie: one gateway (or secret-bearing) cookie does not cost the app its others. */
function keptCookie(sc: string, scrub: string | null): boolean {
  return !isReservedCookieName(setCookieName(sc)) && (scrub === null || !sc.includes(scrub));
}

/** A value as the client gets it: a Location into the upstream's base path points at the gateway. */
function clientValue(name: string, value: string, ctx: ResponseContext): string {
  return name === 'location' && ctx.redirect ? rewriteLocation(value, ctx.redirect) : value;
}

function sessionPrivate(out: Record<string, string | string[]>, ctx: ResponseContext): Record<string, string | string[]> {
  if (ctx.session === true && out['cache-control'] === undefined) out['cache-control'] = 'private';
  return out;
}
