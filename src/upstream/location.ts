// Upstream redirects seen by clients (nginx `proxy_redirect default`): a Location that points at
// the upstream's own origin and base path (the internal host:port a client cannot reach, and
// should not learn) becomes the same place under the gateway's publicUrl and the route's
// prefix. Every other Location (relative, another host, outside the base path) passes unchanged.
import type { CompiledRoute } from '../policy/rules.js';

/** Where a route's requests go upstream, and where the same paths are on the gateway. */
export interface RedirectBases {
  /** The upstream's origin, e.g. `http://10.0.0.5:5000`. */
  readonly upstreamOrigin: string;
  /** Path prefix the route's requests get upstream (base path + rewritePrefix or prefix); '' for the root. */
  readonly upstreamPath: string;
  /** The gateway's publicUrl (an origin). */
  readonly publicOrigin: string;
  /** The route's prefix, without a trailing '/'; '' for the root. */
  readonly prefix: string;
}

const bases = new WeakMap<CompiledRoute, { readonly publicUrl: string; readonly bases: RedirectBases }>();

/** The bases of `route` (computed once per route and publicUrl: this runs for every response). */
export function redirectBases(route: CompiledRoute, publicUrl: string): RedirectBases {
  const known = bases.get(route);
  if (known !== undefined && known.publicUrl === publicUrl) return known.bases;
  const mapped = route.upstreamPath(route.prefix);
  const b: RedirectBases = Object.freeze({
    upstreamOrigin: new URL(route.upstream.url).origin,
    upstreamPath: mapped === '/' ? '' : mapped,
    publicOrigin: new URL(publicUrl).origin,
    prefix: route.prefix,
  });
  bases.set(route, { publicUrl, bases: b });
  return b;
}

/** `location` with the upstream's origin + base path replaced by the gateway's; others unchanged. */
export function rewriteLocation(location: string, b: RedirectBases): string {
  let u: URL;
  try {
    // Protocol-relative (`//host:port/…`) resolves against the upstream's scheme; other relative forms stay as they are.
    u = location.startsWith('//') ? new URL(location, b.upstreamOrigin) : new URL(location);
  } catch {
    return location;
  }
  if (u.origin !== b.upstreamOrigin || (u.protocol !== 'http:' && u.protocol !== 'https:')) return location;
  const path = u.pathname;
  const base = b.upstreamPath;
  if (base !== '' && path !== base && !path.startsWith(`${base}/`)) return location;
  const rest = path.slice(base.length);
  return `${b.publicOrigin}${b.prefix + rest || '/'}${u.search}${u.hash}`;
}
