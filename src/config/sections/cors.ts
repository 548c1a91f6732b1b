// routes[].cors: which other origins' pages may call a route from the browser (http/cors.ts).

import { array, bool, httpUrl, int, isToken, object, refine, required, str, strings, withDefault } from '../schema.js';

export const DEFAULT_CORS_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];
/** What CDF's SDKs send besides the simple headers. */
export const DEFAULT_CORS_HEADERS = ['authorization', 'content-type', 'x-cdp-sdk', 'x-cdp-app', 'cdf-version'];

const origin = refine(httpUrl({ path: false }), (s) => new URL(s).origin);
const headerNames = refine(strings((s) => (isToken(s) ? undefined : 'must be a header name')), (h) => h.map((s) => s.toLowerCase()));

export const corsSchema = object({
  /** Serialised origins (scheme://host[:port]), compared exactly with the request's Origin. */
  origins: required(array(origin, { min: 1 })),
  /** Upper-cased; sent as Access-Control-Allow-Methods. */
  methods: withDefault(refine(array(str((s) => (isToken(s) ? undefined : 'must be an HTTP method name')), { min: 1 }), (m) => m.map((s) => s.toUpperCase())), DEFAULT_CORS_METHODS),
  /** Lower-cased; sent as Access-Control-Allow-Headers. */
  headers: withDefault(headerNames, DEFAULT_CORS_HEADERS),
  /** Response headers the page may read (Access-Control-Expose-Headers). */
  exposeHeaders: withDefault(headerNames, [] as string[]),
  /** true: Access-Control-Allow-Credentials (cookies, with credentials: 'include'). */
  credentials: withDefault(bool(), false),
  maxAgeSec: withDefault(int({ min: 0, max: 86400 }), 600),
});
