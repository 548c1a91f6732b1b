// Where to send the browser after login or logout, given an untrusted `redirect` parameter.
// The answer is built from WHATWG URL parsing (what the browser will do with our Location
// header), plus a few conservative refusals on the raw text so that no other parser (an app's
// router, a proxy, an older browser) can read the same string as a different place. Anything
// doubtful falls back to '/': a lost deep link is cheap, an open redirect is not.

import { trustedOrigins } from './origin.js';

const FALLBACK = '/';
/** Longer values are not legitimate deep links; refusing them also bounds the work below. */
const MAX_LENGTH = 2048;
/** Rounds of percent-decoding before we give up on a value as deliberately nested. */
const MAX_DECODE_ROUNDS = 4;

/**
 * Only printable ASCII without space, and no '\'. A serialised URL (location.href, or a path
 * cut from one) always passes; raw whitespace and controls are stripped or folded differently
 * by different parsers, non-ASCII hosts are where IDN look-alikes live, and browsers read '\'
 * as '/' in http(s) URLs while many server-side parsers do not.
 */
function isPlainAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 0x5c) return false;
  }
  return true;
}

/** One round of %XX decoding to Latin-1 code units (bytes); malformed escapes stay literal. */
function decodeOnce(s: string): string {
  return s.replace(/%([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/** s decoded until it stops changing, or null if it is still changing after MAX_DECODE_ROUNDS. */
function decodeFully(s: string): string | null {
  let cur = s;
  for (let i = 0; i < MAX_DECODE_ROUNDS; i++) {
    const next = decodeOnce(cur);
    if (next === cur) return cur;
    cur = next;
  }
  return null;
}

/** C0 controls, DEL, and C1 controls (U+0080–U+009F, i.e. UTF-8 bytes C2 80–C2 9F). */
function hasControl(bytes: string): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
    if (c === 0xc2) {
      const d = bytes.charCodeAt(i + 1);
      if (d >= 0x80 && d <= 0x9f) return true;
    }
  }
  return false;
}

/** `scheme://` with scheme http or https, any case: the only absolute form we accept. */
const ABSOLUTE_HTTP = /^https?:\/\//i;

/**
 * The post-login (or post-logout) destination for an untrusted `redirect` parameter. Returns a same-origin
 * relative reference ("/path?query#frag", always starting with exactly one '/') or an absolute URL whose origin
 * is publicUrl's origin or exactly one of allowedOrigins; anything else → '/'. Built on WHATWG URL parsing
 * (resolve against publicUrl, compare origins), not string checks.
 *
 * Accepted inputs are either a path starting with a single '/', or an absolute `http(s)://` URL.
 * Results are WHATWG serialisations (dot segments resolved, default port dropped, host lower-cased):
 * - a path, or an absolute URL on publicUrl's origin → relative reference (path, query and fragment
 *   kept, so one form means "ours" and the result never depends on how publicUrl is spelt);
 * - an absolute URL on one of allowedOrigins (compared as serialised origins) → absolute URL.
 * Refused besides foreign origins: scheme-relative and path-relative references; other schemes;
 * userinfo, '@' or '%' in the authority, a trailing dot on the host; raw '\', whitespace,
 * controls or non-ASCII anywhere; controls percent-encoded at any depth (more than three levels
 * of encoding is refused outright); a path whose decoded form starts with '//' or '/\' or that
 * holds an encoded '/' or '\' (the gateway refuses those paths anyway, see request/target.ts).
 * Throws TypeError when publicUrl is not an http(s) URL (validated config never is).
 */
export function safeRedirect(raw: string | undefined | null, publicUrl: string, allowedOrigins: readonly string[]): string {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > MAX_LENGTH) return FALLBACK;
  if (!isPlainAscii(raw)) return FALLBACK;
  const decoded = decodeFully(raw);
  if (decoded === null || hasControl(decoded)) return FALLBACK;
  // Scheme-relative (`//evil`), raw or encoded (`/%2f`, `/%5c`): another host, to some parser.
  if (decoded.startsWith('//') || decoded.startsWith('/\\')) return FALLBACK;

  const trusted = trustedOrigins(publicUrl, allowedOrigins);
  const publicOrigin = new URL(publicUrl).origin;
  let url: URL;
  try {
    if (raw.charCodeAt(0) === 0x2f /* / */) {
      url = new URL(raw, publicOrigin);
    } else if (ABSOLUTE_HTTP.test(raw)) {
      const rest = raw.slice(raw.indexOf('//') + 2);
      const end = rest.search(/[/?#]/);
      const authority = end === -1 ? rest : rest.slice(0, end);
      // '@' hides userinfo (even when empty: `https://:@host`); '%' in a host is decoded by the
      // URL parser, so the text a person reads is not the host a browser visits.
      if (authority.includes('@') || authority.includes('%')) return FALLBACK;
      // A trailing dot names a different origin for a domain, and the same one for an IPv4
      // address: refused either way, as no legitimate link spells it.
      if (/\.(?::\d*)?$/.test(authority)) return FALLBACK;
      url = new URL(raw);
    } else {
      return FALLBACK;                                      // javascript:, data:, `evil.com`, `?x`, …
    }
  } catch {
    return FALLBACK;
  }

  // The checks above already imply these two; they state the invariant on the parsed URL.
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return FALLBACK;
  if (url.username !== '' || url.password !== '') return FALLBACK;
  if (/%(?:25)*(?:2f|5c)/i.test(url.pathname)) return FALLBACK;
  const path = decodeFully(url.pathname);
  // Dot segments can resolve to a leading '//' (`/a/..//evil.com`), which as a relative
  // Location is scheme-relative: another host.
  if (path === null || path.startsWith('//') || path.startsWith('/\\')) return FALLBACK;

  // href is origin + path + query + fragment (no userinfo, checked above); slicing keeps an
  // empty '?' or '#' exactly as the browser would see it.
  if (url.origin === publicOrigin) return url.href.slice(url.origin.length);
  if (trusted.has(url.origin)) return url.href;
  return FALLBACK;
}
