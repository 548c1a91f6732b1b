// Textual formats: URLs, hosts, CIDRs, paths, header names. CIDRs and paths are parsed by the
// same code the request path uses (request/trust.ts, request/target.ts), so a value this accepts
// is one the gateway can use, and the other way round.

import { isIP } from 'node:net';

import { GatewayError } from '../../errors.js';
import { parseTarget } from '../../request/target.js';
import { parseCidr } from '../../request/trust.js';
import { HEADER_SAFE } from '../../upstream/headers.js';
import { str, type Schema } from './core.js';

export interface UrlRules {
  /** Allow a path other than `/` (default true). */
  readonly path?: boolean;
  /** Allow a query string (default false). */
  readonly query?: boolean;
}

/** Reason the text is not an acceptable http(s) URL, or undefined. Never echoes the value. */
export function httpUrlProblem(s: string, rules: UrlRules = {}): string | undefined {
  if (/[\s\u0000-\u001f\u007f]/.test(s)) return 'must not contain whitespace or control characters';
  if (!/^https?:\/\/[^/?#]/i.test(s)) return 'must be an http(s) URL';
  let u: URL;
  try { u = new URL(s); } catch { return 'must be an http(s) URL'; }
  if (u.hostname === '') return 'must be an http(s) URL';
  if (s.includes('\\')) return 'must not contain a backslash';
  const authority = s.slice(s.indexOf('//') + 2).split(/[/?#]/, 1)[0] ?? '';
  if (authority.includes('@')) return 'must not contain credentials (user:password@)';
  if (s.includes('#')) return 'must not have a fragment';
  if (rules.query !== true && s.includes('?')) return 'must not have a query';
  if (rules.path === false && u.pathname !== '/') return 'must be an origin (scheme, host and port; no path)';
  return undefined;
}

/** A URL as quoted in a problem: whatever precedes an `@` in the authority is masked. */
export function redactUrl(s: string): string {
  return s.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, '$1***@');
}

export function httpUrl(rules: UrlRules = {}): Schema<string> {
  return str((s) => httpUrlProblem(s, rules), { redact: redactUrl });
}

const DNS_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** A listen address: an IP address (IPv6 without brackets) or a host name. */
export function hostName(): Schema<string> {
  return str((s) => {
    if (isIP(s) !== 0 || DNS_NAME.test(s)) return undefined;
    if (/^\[.*\]$/.test(s)) return 'is in brackets: write IPv6 addresses without them';
    return 'must be an IP address or a host name';
  });
}

/** Reason the text is not an IP address or CIDR the proxy matcher accepts, or undefined. */
export function cidrProblem(s: string): string | undefined {
  try {
    parseCidr(s);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

// RFC 3986 pchar minus percent-encoding, plus '/'.
const PATH_CHAR = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/]$/;

const TARGET_PROBLEMS: Record<string, string> = {
  'empty segment': 'must not contain empty segments (//)',
  'dot segment': 'must not contain . or .. segments',
};

/**
 * Reason `s` is not a canonical absolute path prefix, or undefined: only RFC 3986 path characters
 * (no percent-encoding), and a path the request-target parser takes exactly as written.
 */
export function canonicalPathProblem(s: string): string | undefined {
  if (!s.startsWith('/')) return 'must start with /';
  for (const ch of s) {
    if (PATH_CHAR.test(ch)) continue;
    const code = ch.codePointAt(0)!;
    if (code < 0x20 || code === 0x7f) return 'must not contain control characters';
    if (/\s/.test(ch)) return 'must not contain whitespace';
    if (code > 0x7e) return 'must contain only ASCII characters';
    return `must not contain "${ch}"`;
  }
  return targetPathProblem(s);
}

/** Reason the request-target parser would refuse `path` (or read it as having a query), or undefined. */
export function targetPathProblem(path: string): string | undefined {
  try {
    if (parseTarget(path).query === '') return undefined;
  } catch (err) {
    const detail = err instanceof GatewayError ? err.detail : undefined;
    const known = detail === undefined ? undefined : TARGET_PROBLEMS[detail];
    if (known !== undefined) return known;
    if (detail !== undefined) return `must be a canonical path (${detail})`;
  }
  return 'must be a canonical path';
}

/** An OAuth scope token: no spaces, quotes or backslashes. */
export const scopeToken = (s: string): string | undefined => (/[\s"\\]/.test(s) ? 'must not contain spaces, quotes or backslashes' : undefined);

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** RFC 9110 token (header names, methods). */
export function isToken(s: string): boolean {
  return TOKEN.test(s);
}

/**
 * Reason `s` cannot be sent as a header value, or undefined. Exactly what the upstream request
 * accepts (upstream/headers.ts HEADER_SAFE): a value it would leave out is refused here instead.
 * Never echoes the value (these are credentials).
 */
export function headerValueProblem(s: string): string | undefined {
  if (HEADER_SAFE.test(s)) return undefined;
  if (/[\r\n\0]/.test(s)) return 'must not contain CR, LF or NUL (it is sent as a header value)';
  if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(s)) return 'must not contain control characters other than tab (it is sent as a header value)';
  return 'must contain only ASCII or latin1 characters (up to U+00FF; it is sent as a header value)';
}

/**
 * Reason a client secret cannot be sent, or undefined. It travels form-urlencoded (in the body, or
 * base64'd into `Authorization: Basic`), so any Unicode text works except a lone surrogate
 * (YAML's "\ud800"), which percent-encoding refuses. Never echoes the value.
 */
export function clientSecretProblem(s: string): string | undefined {
  return /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s)
    ? 'must be well-formed Unicode (it contains a lone surrogate, which cannot be form-urlencoded)' : undefined;
}
