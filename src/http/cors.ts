// CORS per route (routes[].cors). A preflight (OPTIONS + Origin + Access-Control-Request-Method)
// to a route with `cors` is answered here, before any authentication, and never forwarded: a
// listed origin gets the allowed methods and headers, an unlisted one 403 with no
// Access-Control-* header at all. Actual requests from a listed origin get the response headers
// on whatever answers them (upstream or gateway error), and the gateway's CORS headers replace
// the upstream's own. Routes without `cors` treat OPTIONS like any other method.
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CorsConfig } from '../config/types.js';
import { GatewayError } from '../errors.js';
import { hostRefusal } from '../request/host.js';
import { parseTarget } from '../request/target.js';
import type { CompiledRoute, RouteTable } from '../policy/rules.js';
import type { GatewayState } from '../state.js';

export class OriginNotAllowedError extends GatewayError {
  constructor(origin: string) { super(403, 'Forbidden: origin not allowed', { code: 'bad_origin', detail: `CORS origin ${origin.slice(0, 100)} is not listed` }); }
}

const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/** A CORS preflight request (Fetch standard: OPTIONS with Origin and Access-Control-Request-Method). */
export function isPreflight(method: string | undefined, headers: IncomingHttpHeaders): boolean {
  return method === 'OPTIONS' && headers.origin !== undefined && headers['access-control-request-method'] !== undefined;
}

export function originAllowed(cors: CorsConfig, origin: string | undefined): origin is string {
  return origin !== undefined && cors.origins.includes(origin);
}

/** Headers answering a preflight from a listed origin (status 204). */
export function preflightHeaders(cors: CorsConfig, origin: string): Record<string, string> {
  const h: Record<string, string> = {
    'access-control-allow-origin': origin,
    'access-control-allow-methods': cors.methods.join(', '),
    'access-control-allow-headers': cors.headers.join(', '),
    'access-control-max-age': String(cors.maxAgeSec),
    vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
  };
  if (cors.credentials) h['access-control-allow-credentials'] = 'true';
  return h;
}

/** Headers for an actual response on a cors route: only Vary unless the origin is listed. */
export function responseHeaders(cors: CorsConfig, origin: string | undefined): Record<string, string> {
  if (!originAllowed(cors, origin)) return { vary: 'Origin' };
  const h: Record<string, string> = { 'access-control-allow-origin': origin, vary: 'Origin' };
  if (cors.credentials) h['access-control-allow-credentials'] = 'true';
  if (cors.exposeHeaders.length > 0) h['access-control-expose-headers'] = cors.exposeHeaders.join(', ');
  return h;
}

/** `vary` with `add` appended unless already named (case-insensitive; `*` covers all). */
export function mergeVary(vary: string | string[] | number | undefined, add: string): string {
  const cur = vary === undefined ? '' : Array.isArray(vary) ? vary.join(', ') : String(vary);
  const names = cur.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '');
  if (names.includes('*')) return cur;
  const missing = add.split(',').map((s) => s.trim()).filter((s) => !names.includes(s.toLowerCase()));
  return [...(cur.trim() === '' ? [] : [cur.trim()]), ...missing].join(', ');
}

/**
 * An upstream's response headers on a cors route: its own Access-Control-* are dropped (the
 * gateway's, already set on `res`, hold) and Origin is added to its Vary.
 */
export function upstreamCorsHeaders(out: OutgoingHttpHeaders, res: ServerResponse): void {
  for (const name of Object.keys(out)) if (name.startsWith('access-control-')) delete out[name];
  const ours = res.getHeader('vary');
  if (ours !== undefined || out.vary !== undefined) out.vary = mergeVary(out.vary, ours === undefined ? 'Origin' : String(ours));
}

// ---- glue: one onRequest hook (server.ts) ---------------------------------------------------------

/** Whether any route of a configuration has `cors` (cached per configuration). */
const anyCors = new WeakMap<object, boolean>();

function routeOf(routes: RouteTable, url: string): CompiledRoute | null {
  try { return routes.match(parseTarget(url).path); } catch { return null; } // the handler refuses it
}

/**
 * The onRequest hook, reading the current state; it does nothing when no route has `cors`.
 * `mark` records the access-log outcome of a preflight answered here.
 */
export function corsHook(current: () => GatewayState, mark: (request: FastifyRequest, route: string, path: string, decision: string) => void) {
  // A callback hook, not an async function: it runs on every request, and most do nothing here.
  return function cors(request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void): void {
    const state = current();
    let any = anyCors.get(state.config);
    if (any === undefined) anyCors.set(state.config, any = state.config.routes.some((r) => r.cors));
    if (!any) { done(); return; }
    const raw = request.raw;
    if (raw.url!.startsWith('/auth/') || raw.url!.startsWith('/login/')) { done(); return; }
    const route = routeOf(state.routes, raw.url!);
    if (route === null || route.cors === null) { done(); return; }
    const origin = one(raw.headers.origin);
    if (isPreflight(raw.method, raw.headers)) {
      // Answered here, never decided: decide()'s Host check first (two Hosts, a malformed one).
      const badHost = hostRefusal(raw.rawHeaders, raw.httpVersion);
      if (badHost !== null) { done(badHost); return; }
      const allowed = originAllowed(route.cors, origin);
      mark(request, route.id, raw.url!.split('?', 1)[0]!, allowed ? 'preflight' : 'cors_denied');
      if (!allowed) {
        void reply.header('vary', 'Origin');
        done(new OriginNotAllowedError(origin ?? ''));
        return;
      }
      void reply.code(204).headers(preflightHeaders(route.cors, origin!)).send(); // answered: done() is not called
      return;
    }
    // Set on the raw response so both the proxied answer and any gateway error carry them.
    for (const [k, v] of Object.entries(responseHeaders(route.cors, origin))) reply.raw.setHeader(k, v);
    done();
  };
}
