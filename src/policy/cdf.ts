// What a request does on the CDF API, as allow rules' `cdf: { access, resources }` see it.
// On CDF both reads and writes are POSTs (`/assets/list` reads, `/assets/delete` writes), so the
// method alone cannot tell them apart: the last path segment does. Pure and table-driven; checked
// against every call @cognite/sdk 10 makes in test/policy/cdf-sdk.test.ts.
//
//   /api/v1/projects/<project>/<resource>/…/<action>
//   read:  GET, HEAD, and POST whose last segment is in READ_ACTIONS
//   write: everything else (other POSTs, PUT, PATCH, DELETE, …/delete, …/update, OPTIONS)

export type CdfAccess = 'read' | 'write';

/** POST actions that only read (DESIGN.md "CDF-aware rules"); compared case-sensitively, as CDF routes. */
export const READ_ACTIONS: ReadonlySet<string> = new Set([
  'list', 'byids', 'byExternalIds', 'search', 'aggregate', 'filter', 'query', 'sync', 'latest',
  'downloadlink', 'retrieve',
]);

/** Methods that read whatever the path. */
export const READ_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD']);

export const CDF_API_PREFIX = '/api/v1/projects/';
const P = CDF_API_PREFIX.length;

/** READ_ACTIONS by length: the last segment is compared in place, never sliced out. */
const READ_BY_LENGTH: ReadonlyArray<readonly string[]> = (() => {
  const byLen: string[][] = [];
  for (const a of READ_ACTIONS) (byLen[a.length] ??= []).push(a);
  return byLen.map((l) => l ?? []);
})();

/** Whether the segment after `slash` (to the end of `path`) is a read action. */
function isReadAction(path: string, slash: number): boolean {
  const candidates = READ_BY_LENGTH[path.length - slash - 1];
  if (candidates === undefined) return false;
  for (let i = 0; i < candidates.length; i++) if (path.startsWith(candidates[i]!, slash + 1)) return true;
  return false;
}

/**
 * `read` or `write` for a request on the CDF API; null when `path` (canonical, no query) is not
 * below `/api/v1/projects/<project>`. A path that names no resource (the project itself) is
 * classified by method alone.
 */
export function cdfAccess(method: string, path: string): CdfAccess | null {
  if (!path.startsWith(CDF_API_PREFIX) || path.length === P || path.charCodeAt(P) === 0x2f) return null;
  if (READ_METHODS.has(method)) return 'read';
  if (method !== 'POST') return 'write';
  const last = path.lastIndexOf('/');
  if (last < P) return 'write';                       // POST on the project itself
  return isReadAction(path, last) ? 'read' : 'write';
}

/** The project segment of a CDF API path, or null. */
export function cdfProject(path: string): string | null {
  if (!path.startsWith(CDF_API_PREFIX)) return null;
  const end = path.indexOf('/', P);
  const project = end < 0 ? path.slice(P) : path.slice(P, end);
  return project === '' ? null : project;
}

/**
 * Whether the first segment after the project is exactly `resource`, without slicing: the hot
 * path of a `resources` condition. `path` must already be a CDF API path (cdfAccess ≠ null).
 */
export function cdfResourceIs(path: string, resource: string): boolean {
  const end = path.indexOf('/', P);
  if (end < 0) return false;
  const start = end + 1;
  if (!path.startsWith(resource, start)) return false;
  const after = start + resource.length;
  return after === path.length || path.charCodeAt(after) === 0x2f;
}

/** The first segment after the project, or null (for logs and tests). */
export function cdfResource(path: string): string | null {
  if (cdfAccess('GET', path) === null) return null;
  const end = path.indexOf('/', P);
  if (end < 0) return null;
  const next = path.indexOf('/', end + 1);
  return next < 0 ? path.slice(end + 1) : path.slice(end + 1, next);
}

export interface CdfCondition {
  readonly access: CdfAccess;
  /** null: any resource. */
  readonly resources: readonly string[] | null;
}

/**
 * Whether a request satisfies a rule's `cdf` condition. `access: read` holds for reads only;
 * `access: write` holds for reads and writes (who may change data may also look at it, so a
 * writers' rule needs no read twin). A request that is not on the CDF API never satisfies it.
 */
export function cdfConditionHolds(cond: CdfCondition, method: string, path: string): boolean {
  const access = cdfAccess(method, path);
  if (access === null) return false;
  if (access === 'write' && cond.access === 'read') return false;
  const resources = cond.resources;
  if (resources === null) return true;
  for (let i = 0; i < resources.length; i++) {
    if (cdfResourceIs(path, resources[i]!)) return true;
  }
  return false;
}
