// CSRF guard for cookie-authenticated, state-changing requests. SameSite=Lax alone is not
// enough: sites on the same registrable domain (another port or subdomain of the gateway's
// host) are "same-site", so their POSTs carry the cookie. The Origin header (or, when a browser
// omits it, the Referer) tells us who is asking; only the gateway itself and the operator's
// `login.allowedRedirectOrigins` may. Those origins are apps the operator already trusts to
// receive users after login, and they are the apps that call the gateway with credentials
// (`fetch(…, { credentials: 'include' })`) as their backend-for-frontend, so they count here too.

/** Methods that must not change state (RFC 9110 §9.2.1), so they need no origin check. */
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * The serialised origin (`scheme://host[:port]`, default port dropped, host lower-case) of an
 * absolute http(s) URL, or null for anything else: malformed, other schemes, or userinfo
 * (browsers never send it, and `a@b` is the classic way to make one host read as another).
 */
export function httpOrigin(value: string): string | null {
  let url: URL;
  try { url = new URL(value); } catch { return null; }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  if (url.username !== '' || url.password !== '') return null;
  return url.origin;
}

/** publicUrl's origin plus every well-formed http(s) entry of allowedOrigins, normalised. */
export function trustedOrigins(publicUrl: string, allowedOrigins: readonly string[]): ReadonlySet<string> {
  const publicOrigin = httpOrigin(publicUrl);
  // publicUrl comes from validated config: a bad one is a bug, not a request to refuse.
  if (publicOrigin === null) throw new TypeError(`publicUrl is not an http(s) URL: ${publicUrl}`);
  const set = new Set<string>([publicOrigin]);
  for (const o of allowedOrigins) {
    const n = httpOrigin(o);
    if (n !== null) set.add(n);
  }
  return set;
}

/** Printable ASCII without space: a Referer with whitespace or controls is not one URL. */
function isPrintableToken(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return s.length > 0;
}

/**
 * True when a cookie-authenticated request may proceed: safe methods (GET, HEAD, OPTIONS)
 * always; otherwise the Origin header must equal publicUrl's origin or one of allowedOrigins;
 * if Origin is absent, the Referer's origin must; if both are absent → false. `Origin: null` → false.
 *
 * Origin is compared as the exact string a browser sends (its serialised origin), so `null`,
 * several values (Node joins repeated headers with ", "), a path, a trailing '/', userinfo, an
 * explicit default port or upper case never match. A present but empty Origin counts as
 * present (no fallback to Referer). Methods are case-sensitive (RFC 9110): `get` is not safe.
 */
export function sameOriginAllowed(
  method: string,
  origin: string | undefined,
  referer: string | undefined,
  publicUrl: string,
  allowedOrigins: readonly string[],
): boolean {
  if (SAFE_METHODS.has(method)) return true;
  const trusted = trustedOrigins(publicUrl, allowedOrigins);
  if (origin !== undefined) return trusted.has(origin);
  if (referer === undefined || !isPrintableToken(referer)) return false;
  const refererOrigin = httpOrigin(referer);
  return refererOrigin !== null && trusted.has(refererOrigin);
}
