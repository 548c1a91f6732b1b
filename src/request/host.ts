// The Host header (RFC 9112 §3.2): an HTTP/1.1 request carries exactly one, and its value is a
// valid `host[:port]`. Anything else is 400: the value is passed upstream as X-Forwarded-Host, and
// two readings of "the host" (two headers, a list, a path or space in it) are what cache-poisoning
// and routing confusion are made of. Pure: no Fastify, no config.
import type { IncomingHttpHeaders } from 'node:http';
import { isIPv6 } from 'node:net';
import { BadRequestError } from '../errors.js';

export type HostProblem = 'missing' | 'duplicate' | 'malformed';

export type HostCheck =
  | { readonly ok: true; readonly host: string | null }
  | { readonly ok: false; readonly problem: HostProblem };

/**
 * reg-name restricted to what DNS names and IPv4 addresses use (RFC 3986 unreserved). The
 * sub-delims RFC 3986 also allows (`,` `;` `!` `*` …) and percent-encoding are refused: no real
 * host needs them, and `,` would make a one-value header look like a list.
 */
const REG_NAME = /^[A-Za-z0-9._~-]{1,253}$/;
const PORT = /^[0-9]{1,5}$/;

/** Whether `value` is `uri-host [ ":" port ]` with uri-host a reg-name or a bracketed IPv6 address. */
export function isValidHost(value: string): boolean {
  let host = value;
  let port: string | null = null;
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    if (close === -1) return false;
    const rest = value.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return false;
      port = rest.slice(1);
    }
    // IPv6 only: no zone id (`%25eth0`), no IPvFuture (`[v1.x]`).
    const literal = value.slice(1, close);
    if (literal.includes('%') || !isIPv6(literal)) return false;
  } else {
    const colon = value.indexOf(':');
    if (colon !== -1) {
      host = value.slice(0, colon);
      port = value.slice(colon + 1);
    }
    if (!REG_NAME.test(host)) return false;
  }
  return port === null || (PORT.test(port) && Number(port) <= 65535);
}

/** Judges the Host headers of a request from Node's rawHeaders (name, value, name, value, …). */
export function checkHost(rawHeaders: readonly string[], httpVersion: string): HostCheck {
  let host: string | null = null;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length !== 4 || name.toLowerCase() !== 'host') continue;
    if (host !== null) return { ok: false, problem: 'duplicate' };
    host = rawHeaders[i + 1]!;
  }
  if (host === null) {
    // HTTP/1.0 predates Host; every later version must send it.
    return httpVersion === '1.0' ? { ok: true, host: null } : { ok: false, problem: 'missing' };
  }
  return isValidHost(host) ? { ok: true, host } : { ok: false, problem: 'malformed' };
}

function hostError(problem: HostProblem): BadRequestError {
  return new BadRequestError('Bad request: invalid Host header', `host ${problem}`, 'bad_host');
}

/** checkHost's verdict as the 400 the gateway answers with, or null when the Host is fine. */
export function hostRefusal(rawHeaders: readonly string[], httpVersion: string): BadRequestError | null {
  const r = checkHost(rawHeaders, httpVersion);
  return r.ok ? null : hostError(r.problem);
}

/** checkHost, throwing the 400 the gateway answers with. */
export function requireValidHost(rawHeaders: readonly string[], httpVersion: string): void {
  const refused = hostRefusal(rawHeaders, httpVersion);
  if (refused !== null) throw refused;
}

/**
 * The Host check every request gets on arrival, whatever answers it: an HTTP/1.1 request with no
 * Host at all is refused. One property read. The full check (duplicates, which Node's
 * `headers.host` hides by keeping the first; malformed values) is decide()'s on the routes that
 * ask it, and a route hook's on every other (request/observe.ts). Null when the request has a
 * Host (or is HTTP/1.0).
 */
export function missingHost(headers: IncomingHttpHeaders, httpVersion: string): BadRequestError | null {
  return headers.host === undefined && httpVersion !== '1.0' ? hostError('missing') : null;
}
