// Routes compiled once from configuration into an immutable table. Router and policy share
// this one matcher, so they can never disagree about a path. Input paths are canonical
// (src/request/target.ts): no dot segments, no empty segments, no encoded '/'.

import type { AllowRule, CorsConfig, RouteConfig, UpstreamConfig } from '../config/types.js';
import { parseTarget } from '../request/target.js';
import type { CdfCondition } from './cdf.js';

export interface CompiledRule {
  readonly methods: ReadonlySet<string> | null;
  readonly groups: ReadonlySet<string> | null;
  readonly scopes: readonly string[] | null;
  readonly subjects: ReadonlySet<string> | null;
  /** CDF API access condition (policy/cdf.ts), or null. */
  readonly cdf: CdfCondition | null;
  /** CDF project the caller's token/inspect must list, or null. */
  readonly project: string | null;
  /** `acl:ACTION`s granted in `project`, or null. */
  readonly capabilities: readonly string[] | null;
}

export interface CompiledRoute {
  /** The prefix as configured: used as the metrics/log label. */
  readonly id: string;
  /** Normalised: no trailing '/', '' for '/'. */
  readonly prefix: string;
  readonly upstream: UpstreamConfig;
  readonly isPublic: boolean;
  readonly websockets: boolean;
  readonly rules: readonly CompiledRule[];
  /** Login project whose sessions this route accepts (browsers without one are sent to log in). */
  readonly login: string | null;
  /** Cross-origin browser calls allowed on this route (routes[].cors), or null. */
  readonly cors: CorsConfig | null;
  /** Path the upstream receives: upstream URL's base path + (rewritePrefix ?? prefix) + rest of path. */
  upstreamPath(path: string): string;
  /** The path as the upstream API sees it, without its base path: (rewritePrefix ?? prefix) + rest. */
  apiPath(path: string): string;
}

export interface RouteTable {
  match(path: string): CompiledRoute | null;
}

/** Strips trailing '/'s: '/a/' → '/a', '/' → ''. The one prefix comparison (config checks use it too). */
export function normalisePrefix(p: string): string {
  let e = p.length;
  while (e > 0 && p.charCodeAt(e - 1) === 0x2f) e--;
  return p.slice(0, e);
}

/** A configured path must be canonical, or no canonical request path could ever match it. */
function assertCanonical(what: string, p: string): void {
  if (p === '') return;
  let ok = false;
  try { ok = parseTarget(p).query === ''; } catch { ok = false; }
  if (!ok) throw new Error(`${what} ${JSON.stringify(p)} is not a canonical path`);
}

function toSet(list: readonly string[] | null): ReadonlySet<string> | null {
  return list === null ? null : new Set(list);
}

function compileRule(r: AllowRule): CompiledRule {
  return Object.freeze({
    methods: toSet(r.methods),
    groups: toSet(r.groups),
    scopes: r.scopes === null ? null : Object.freeze([...r.scopes]),
    subjects: toSet(r.subjects),
    cdf: r.cdf == null ? null : Object.freeze({ access: r.cdf.access, resources: r.cdf.resources === null ? null : Object.freeze([...r.cdf.resources]) }),
    project: r.project ?? null,
    capabilities: r.capabilities == null ? null : Object.freeze([...r.capabilities]),
  });
}

function compileRoute(r: RouteConfig, upstream: UpstreamConfig): CompiledRoute {
  const prefix = normalisePrefix(r.prefix);
  const rewrite = r.rewritePrefix === null ? null : normalisePrefix(r.rewritePrefix);
  const basePath = normalisePrefix(new URL(upstream.url).pathname);
  assertCanonical('route prefix', prefix);
  if (rewrite !== null) assertCanonical('rewritePrefix', rewrite);
  assertCanonical(`upstream ${upstream.name} base path`, basePath);
  const head = basePath + (rewrite ?? prefix);
  const plen = prefix.length;

  return Object.freeze({
    id: r.prefix,
    prefix,
    upstream,
    isPublic: r.public,
    websockets: r.websockets,
    rules: Object.freeze(r.allow.map(compileRule)),
    login: r.login ?? null,
    cors: r.cors ?? null,
    upstreamPath(path: string): string {
      // Guard against misuse: only a path this route matched may be mapped.
      if (!path.startsWith(prefix) || (path.length > plen && path.charCodeAt(plen) !== 0x2f)) {
        throw new Error(`path does not belong to route ${r.prefix}`);
      }
      const out = plen === path.length ? head : head + path.slice(plen);
      return out === '' ? '/' : out;
    },
    apiPath(path: string): string {
      if (rewrite === null) return path;
      const out = rewrite + path.slice(plen);
      return out === '' ? '/' : out;
    },
  });
}

export function compileRoutes(
  routes: readonly RouteConfig[],
  upstreams: Readonly<Record<string, UpstreamConfig>>,
): RouteTable {
  const byPrefix = new Map<string, CompiledRoute>();
  let maxLen = 0;
  for (const r of routes) {
    const upstream = Object.hasOwn(upstreams, r.upstream) ? upstreams[r.upstream] : undefined;
    if (upstream === undefined) throw new Error(`route ${r.prefix}: unknown upstream ${JSON.stringify(r.upstream)}`);
    const route = compileRoute(r, upstream);
    if (byPrefix.has(route.prefix)) throw new Error(`duplicate route prefix ${JSON.stringify(r.prefix)}`);
    byPrefix.set(route.prefix, route);
    if (route.prefix.length > maxLen) maxLen = route.prefix.length;
  }
  // Which prefix lengths exist: a candidate is only sliced and hashed when a route that long exists.
  const hasLen = new Uint8Array(maxLen + 1);
  for (const p of byPrefix.keys()) hasLen[p.length] = 1;

  // Map probed from the longest candidate prefix downwards, walking back over '/' positions:
  // at most one lookup per path segment (fewer with hasLen), independent of the number of
  // routes, and the first hit is by construction the longest segment-boundary match.
  return Object.freeze({
    match(path: string): CompiledRoute | null {
      const n = path.length;
      if (n === 0 || path.charCodeAt(0) !== 0x2f) return null;
      let i = n <= maxLen ? n : path.lastIndexOf('/', maxLen);
      while (i >= 0) {
        if (hasLen[i] === 1) {
          const r = byPrefix.get(i === n ? path : path.slice(0, i));
          if (r !== undefined) return r;
        }
        if (i === 0) break;
        i = path.lastIndexOf('/', i - 1);
      }
      return null;
    },
  });
}
