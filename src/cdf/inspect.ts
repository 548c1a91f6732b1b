// What CDF itself says a token may do: `GET <baseUrl>/api/v1/token/inspect` with the caller's own
// token, answered as {subject, projects[{projectUrlName, groups}], capabilities[{<acl>: {actions,
// scope}, projectScope}]}. Rules `project:` and `capabilities:` are decided on this answer, so an
// app can follow the access people already have in CDF.
//
// Kept per token (by its SHA-256, never the token itself) until the earlier of the token's `exp`
// and inspectTtlMs; one request per token however many wait. CDF unreachable, slow, 5xx or
// answering nonsense → CdfUnavailableError (503: never allow on a guess). 401/403 → the token
// has no grants (rules naming a project do not hold).
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { CdfConfig } from '../config/types.js';
import type { Clock } from '../clock.js';
import { CdfUnavailableError } from '../errors.js';
import { RemoteCache } from '../policy/remote-cache.js';
import type { Principal } from '../token/principal.js';

export interface CdfGrants {
  /** Projects the token may use (`projects[].projectUrlName`). */
  readonly projects: ReadonlySet<string>;
  /** Whether `acl:ACTION` (e.g. timeSeriesAcl:WRITE) is granted in `project`, at any scope. */
  has(project: string, capability: string): boolean;
}

/** `acl:ACTION` → the projects it is granted in; ALL for `projectScope: {allProjects: {}}`. */
type CapabilityTable = ReadonlyMap<string, ReadonlySet<string> | typeof ALL>;
const ALL = Symbol('allProjects');

function grantsOf(projects: ReadonlySet<string>, table: CapabilityTable): CdfGrants {
  return Object.freeze({
    projects,
    has(project: string, capability: string): boolean {
      const where = table.get(capability);
      return where !== undefined && (where === ALL || where.has(project));
    },
  });
}

export const NO_GRANTS: CdfGrants = grantsOf(new Set(), new Map());

class MalformedAnswer extends Error {}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** CDF's documented inspect answer → grants. Throws MalformedAnswer on anything else. */
export function parseInspect(body: unknown): CdfGrants {
  if (!isObject(body) || !Array.isArray(body.projects) || !Array.isArray(body.capabilities)) {
    throw new MalformedAnswer('token/inspect answer lacks projects or capabilities');
  }
  const projects = new Set<string>();
  for (const p of body.projects) {
    if (isObject(p) && typeof p.projectUrlName === 'string') projects.add(p.projectUrlName);
  }
  const table = new Map<string, Set<string> | typeof ALL>();
  for (const cap of body.capabilities) {
    if (!isObject(cap) || !isObject(cap.projectScope)) continue;
    const scope = cap.projectScope;
    const where: Set<string> | typeof ALL | null = isObject(scope.allProjects) ? ALL
      : Array.isArray(scope.projects) ? new Set(scope.projects.filter((x): x is string => typeof x === 'string')) : null;
    if (where === null) continue;
    for (const [acl, grant] of Object.entries(cap)) {
      if (acl === 'projectScope' || !isObject(grant) || !Array.isArray(grant.actions)) continue;
      for (const action of grant.actions) {
        if (typeof action !== 'string') continue;
        const key = `${acl}:${action}`;
        const have = table.get(key);
        if (have === ALL || where === ALL) table.set(key, ALL);
        else table.set(key, have === undefined ? new Set(where) : new Set([...have, ...where]));
      }
    }
  }
  return grantsOf(projects, table);
}

export interface InspectDeps {
  clock: Clock;
  fetch?: typeof fetch;
  logger?: Logger;
}

export class CdfInspector {
  private readonly url: string;
  private readonly cfg: CdfConfig;
  private readonly clock: Clock;
  private readonly fetch: typeof fetch;
  private readonly logger: Logger | undefined;
  private readonly cache: RemoteCache<CdfGrants>;
  /** token/inspect requests made (for tests and the log). */
  requests = 0;

  constructor(cfg: CdfConfig, deps: InspectDeps) {
    this.cfg = cfg;
    this.url = `${cfg.baseUrl}/api/v1/token/inspect`;
    this.clock = deps.clock;
    this.fetch = deps.fetch ?? fetch;
    this.logger = deps.logger;
    this.cache = new RemoteCache(cfg.cacheSize, deps.clock);
  }

  /** The grants of `token` (the principal's verified token): synchronous when known, else one shared request. */
  grants(principal: Principal, token: string): CdfGrants | Promise<CdfGrants> {
    const key = createHash('sha256').update(token).digest('base64url');
    return this.cache.get(key, async () => {
      const value = await this.ask(token);
      return { value, expiresAt: Math.min(principal.expiresAt, this.clock() + this.cfg.inspectTtlMs) };
    });
  }

  private async ask(token: string): Promise<CdfGrants> {
    this.requests++;
    let res: Response;
    try {
      res = await this.fetch(this.url, {
        headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
        signal: AbortSignal.timeout(this.cfg.timeoutMs),
        redirect: 'error',
      });
    } catch (err) {
      throw this.unavailable(err instanceof Error && err.name === 'TimeoutError' ? `timeout after ${this.cfg.timeoutMs} ms` : networkReason(err));
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      this.logger?.info({ status: res.status }, 'CDF refused token/inspect: no CDF grants for this token');
      return NO_GRANTS;
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      throw this.unavailable(`HTTP ${res.status}`);
    }
    try {
      return parseInspect(await res.json());
    } catch (err) {
      throw this.unavailable(err instanceof MalformedAnswer ? err.message : 'answer is not JSON');
    }
  }

  private unavailable(why: string): CdfUnavailableError {
    const detail = `token/inspect at ${this.cfg.baseUrl}: ${why}`;
    this.logger?.warn({ detail }, 'CDF token/inspect failed');
    return new CdfUnavailableError(detail);
  }

  close(): void {
    this.cache.clear();
  }
}

/** fetch's network failure as its socket error code (ECONNREFUSED, ENOTFOUND, …). */
export function networkReason(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } })?.cause;
  if (cause !== undefined && typeof cause.code === 'string') return cause.code;
  return err instanceof Error ? err.message : 'network error';
}
