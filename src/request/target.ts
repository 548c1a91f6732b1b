// Request-target canonicalisation. Every request passes here before route matching: a target
// that another component (upstream framework, servlet container, CDN) could read differently
// from the way the router reads it is refused with 400, so router, policy and upstream always
// agree about which path was asked for. One pass over the string, no regular expressions;
// the only allocations on success are the result object and the path/query slices.

import { BadRequestError, InvalidRequestError } from '../errors.js';

export interface Target {
  /** Canonical path: starts with '/', no dot or empty segments, canonical percent-encoding. */
  readonly path: string;
  /** Raw query including the leading '?', or ''. */
  readonly query: string;
}

const MSG_TARGET = 'Bad request: unsupported request target';
const MSG_PATH = 'Bad request: ambiguous request path';
const MSG_QUERY = 'Bad request: ambiguous request query';
const MSG_TOKEN = 'Access tokens are not accepted in the URL';

const SLASH = 0x2f;
const PERCENT = 0x25;
const QMARK = 0x3f;
const DOT = 0x2e;
const SEMI = 0x3b;
const AMP = 0x26;
const EQ = 0x3d;
const HASH = 0x23;

/** Raw characters refused anywhere in the path: controls, space, DEL, '\', '#', non-ASCII. */
const RAW_BAD = new Uint8Array(128);
/** Bytes that must never appear percent-encoded in a canonical path. */
const ENC_BAD = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const unreserved = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39)
    || c === 0x2d || c === DOT || c === 0x5f || c === 0x7e;
  const control = c < 0x20 || c === 0x7f;
  if (control || c === 0x20 || c === 0x5c || c === HASH) RAW_BAD[c] = 1;
  if (control || unreserved || c === SLASH || c === 0x5c) ENC_BAD[c] = 1;
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x57;
  return -1;
}

function badPath(detail: string): never {
  throw new BadRequestError(MSG_PATH, detail, 'ambiguous_path');
}

/** True if s[i..] starts with '%3b'/'%3B' (an encoded ';'). */
function isEncodedSemicolon(s: string, i: number): boolean {
  return s.charCodeAt(i) === PERCENT && s.charCodeAt(i + 1) === 0x33 && (s.charCodeAt(i + 2) | 0x20) === 0x62;
}

/** Refuses `.`, `..`, and either followed by `;…` (or an encoded ';'). Segment is [s, e), non-empty. */
function checkDotSegment(p: string, s: number, e: number): void {
  if (p.charCodeAt(s) !== DOT) return;
  let k = s + 1;
  if (k < e && p.charCodeAt(k) === DOT) k++;
  if (k === e || p.charCodeAt(k) === SEMI || isEncodedSemicolon(p, k)) badPath('dot segment');
}

const ACCESS_TOKEN = 'access_token';

/**
 * Whether the query parameter name q[s, e) decodes (as URLSearchParams would: '+' is a space,
 * %XX is a byte, malformed escapes stay literal) to `access_token`. Leading '?'s are ignored
 * (a second '?' starts the name for URL.searchParams but not for every parser). No allocation.
 */
function isAccessTokenName(q: string, s: number, e: number): boolean {
  while (s < e && q.charCodeAt(s) === QMARK) s++;
  const len = e - s;
  if (len < ACCESS_TOKEN.length || len > ACCESS_TOKEN.length * 3) return false;
  let j = 0;
  for (let i = s; i < e; i++, j++) {
    if (j >= ACCESS_TOKEN.length) return false;
    let c = q.charCodeAt(i);
    if (c === PERCENT && i + 2 < e) {
      const h = hexVal(q.charCodeAt(i + 1));
      const l = hexVal(q.charCodeAt(i + 2));
      if (h >= 0 && l >= 0) { c = (h << 4) | l; i += 2; }
    }
    // Bytes >= 0x80 decode to non-ASCII (or U+FFFD) and '+' to a space: never a match.
    if (c !== ACCESS_TOKEN.charCodeAt(j)) return false;
  }
  return j === ACCESS_TOKEN.length;
}

/** Scans the raw query (starting at the '?'); refuses '#', controls, space, and access_token. */
function checkQuery(u: string, q: number): void {
  let nameStart = q + 1;
  let inName = true;
  const n = u.length;
  for (let i = q + 1; i <= n; i++) {
    const c = i < n ? u.charCodeAt(i) : AMP;
    if (c <= 0x20 || c === 0x7f || c === HASH) throw new BadRequestError(MSG_QUERY, 'forbidden character in query', 'ambiguous_path');
    // '&' is the URLSearchParams separator; ';' is one for some older parsers: check both.
    if (c === AMP || c === SEMI) {
      if (inName && isAccessTokenName(u, nameStart, i)) break;
      nameStart = i + 1;
      inName = true;
    } else if (c === EQ && inName) {
      if (isAccessTokenName(u, nameStart, i)) break;
      inName = false;
    }
    if (i === n) return;
  }
  throw new InvalidRequestError(MSG_TOKEN, 'access_token query parameter', 'token_in_url');
}

/**
 * Splits Node's raw `req.url` into a canonical path and the raw query, refusing (400) every
 * target that could be read two ways; see DESIGN "Route matching".
 */
export function parseTarget(rawUrl: string): Target {
  const n = rawUrl.length;
  if (n === 0 || rawUrl.charCodeAt(0) !== SLASH) throw new BadRequestError(MSG_TARGET, 'not origin-form', 'ambiguous_path');

  let segStart = 1;
  let need = 0;          // UTF-8 continuation bytes still expected
  let lo = 0x80;         // allowed range of the next continuation byte
  let hi = 0xbf;
  let i = 1;
  for (; i < n; i++) {
    const c = rawUrl.charCodeAt(i);
    if (c === QMARK) break;
    if (c === PERCENT) {
      const h = hexVal(rawUrl.charCodeAt(i + 1));
      const l = hexVal(rawUrl.charCodeAt(i + 2));
      if (h < 0 || l < 0) badPath('malformed percent-encoding');
      const b = (h << 4) | l;
      if (need > 0) {
        if (b < lo || b > hi) badPath('invalid UTF-8');
        need--; lo = 0x80; hi = 0xbf;
      } else if (b < 0x80) {
        if (ENC_BAD[b] === 1) badPath('non-canonical or forbidden percent-encoding');
        if (b === PERCENT && hexVal(rawUrl.charCodeAt(i + 3)) >= 0 && hexVal(rawUrl.charCodeAt(i + 4)) >= 0) {
          badPath('double percent-encoding');
        }
      } else if (b >= 0xc2 && b <= 0xdf) {
        need = 1;
      } else if (b >= 0xe0 && b <= 0xef) {
        need = 2;
        if (b === 0xe0) lo = 0xa0;            // overlong
        else if (b === 0xed) hi = 0x9f;       // UTF-16 surrogates
      } else if (b >= 0xf0 && b <= 0xf4) {
        need = 3;
        if (b === 0xf0) lo = 0x90;            // overlong
        else if (b === 0xf4) hi = 0x8f;       // above U+10FFFF
      } else {
        badPath('invalid UTF-8');             // C0, C1, F5-FF, lone continuation byte
      }
      i += 2;
      continue;
    }
    if (need > 0) badPath('truncated UTF-8');
    if (c > 0x7e || RAW_BAD[c] === 1) badPath('forbidden character in path');
    if (c === SLASH) {
      if (i === segStart) badPath('empty segment');
      checkDotSegment(rawUrl, segStart, i);
      segStart = i + 1;
    }
  }
  if (need > 0) badPath('truncated UTF-8');
  if (i > segStart) checkDotSegment(rawUrl, segStart, i);

  if (i === n) return { path: rawUrl, query: '' };
  checkQuery(rawUrl, i);
  return { path: rawUrl.slice(0, i), query: rawUrl.slice(i) };
}
