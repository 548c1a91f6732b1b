// The gateway's cookies: names, flags and Set-Cookie lines. Every name starts with the `cdf-gw`
// stem (headers.ts strips those from upstream requests and responses). `__Host-` and `Secure`
// whenever the public origin is https or loopback (browsers treat loopback as a secure context).
// Parsing and serialising are @fastify/cookie's: its plugin is registered with `hook: false`
// (server.ts; registering is what loads its codec), so no per-request hook parses cookies on
// the proxy path, which never reads them.
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { fastifyCookie } from '@fastify/cookie';

const { parse, serialize } = fastifyCookie;
import { cookieNamesOf, splitCookie } from './chunks.js';

export interface CookieNames {
  /** `__Host-cdf-gw` or `cdf-gw`. */
  readonly stem: string;
  readonly secure: boolean;
  /** The session cookie (chunked as `<session>.0`, `.1`, … when large). */
  readonly session: string;
  /** The login-flow cookie for one `state`: one per tab, so concurrent logins don't collide. */
  flow(state: string): string;
}

function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  return h === '::1';
}

export function cookieNames(publicUrl: string): CookieNames {
  const u = new URL(publicUrl);
  const secure = u.protocol === 'https:' || isLoopback(u.hostname);
  const stem = secure ? '__Host-cdf-gw' : 'cdf-gw';
  return Object.freeze({
    stem,
    secure,
    session: `${stem}-session`,
    flow: (state: string) => `${stem}-flow-${createHash('sha256').update(state).digest('base64url').slice(0, 16)}`,
  });
}

/**
 * The value parseCookies gives a gateway cookie that came more than once: never a real value
 * (cookie-octets exclude controls), so it opens no seal and names no session.
 */
export const AMBIGUOUS = '\u0000ambiguous';

/** The gateway's cookie names (`cdf-gw…`, `__Host-cdf-gw…`, `__Secure-cdf-gw…`, any case). */
const GATEWAY_NAME = /^(__host-|__secure-)?cdf-gw/i;

/**
 * Cookie header → name → value. A gateway cookie sent twice (say one planted for a sibling
 * domain or a deeper path) is AMBIGUOUS: which one is ours cannot be told, so neither counts.
 */
export function parseCookies(header: string | string[] | undefined): Record<string, string> {
  if (header === undefined) return {};
  const text = Array.isArray(header) ? header.join('; ') : header;
  if (text === '') return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(parse(text))) if (typeof v === 'string') out[k] = v;
  if (text.toLowerCase().includes('cdf-gw')) {
    const seen = new Set<string>();
    for (const part of text.split(';')) {
      const eq = part.indexOf('=');
      if (eq === -1) continue;
      const name = part.slice(0, eq).trim();
      if (!GATEWAY_NAME.test(name)) continue;
      if (seen.has(name)) out[name] = AMBIGUOUS;
      else seen.add(name);
    }
  }
  return out;
}

/** Whether a cookie of `name` (plain or any chunk) came more than once. */
export function isAmbiguous(name: string, cookies: Readonly<Record<string, string>>): boolean {
  return cookieNamesOf(name, cookies).some((n) => cookies[n] === AMBIGUOUS);
}

function line(names: CookieNames, name: string, value: string, maxAgeSec: number): string {
  return serialize(name, value, {
    path: '/', httpOnly: true, sameSite: 'lax', secure: names.secure, maxAge: Math.max(0, Math.floor(maxAgeSec)),
  });
}

/** Set-Cookie lines writing `value` under `name` (chunked if large) and expiring stale chunks. */
export function writeCookie(
  names: CookieNames, name: string, value: string, maxAgeSec: number, present: Readonly<Record<string, string>>,
): string[] {
  const parts = splitCookie(name, value);
  const written = new Set(parts.map((p) => p.name));
  const out = parts.map((p) => line(names, p.name, p.value, maxAgeSec));
  for (const stale of cookieNamesOf(name, present)) if (!written.has(stale)) out.push(line(names, stale, '', 0));
  return out;
}

/** Set-Cookie lines expiring every present cookie that belongs to `name`. */
export function clearCookie(names: CookieNames, name: string, present: Readonly<Record<string, string>>): string[] {
  return cookieNamesOf(name, present).map((n) => line(names, n, '', 0));
}

/** One unchunked cookie (the flow cookie is small). */
export function simpleCookie(names: CookieNames, name: string, value: string, maxAgeSec: number): string {
  return line(names, name, value, maxAgeSec);
}
