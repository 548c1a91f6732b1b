// Entra groups overage: a user in more groups than fit in a token gets `_claim_names.groups` (or
// `hasgroups: true`) instead of `groups`. The groups are then asked of Microsoft Graph
// (`POST <graphUrl>/v1.0/users/<oid>/getMemberObjects`) with the gateway's own client-credentials
// token (the same source client-credentials upstreams use), following `@odata.nextLink` and
// waiting out 429s as `Retry-After` says (while that fits in timeoutMs). Answers are kept per
// `oid` for cacheTtlMs, one request per user however many wait. Graph failing → 503.
import type { Logger } from 'pino';
import type { GroupsOverageConfig } from '../config/types.js';
import type { Clock } from '../clock.js';
import { GatewayError, GroupsUnavailableError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { RemoteCache } from '../policy/remote-cache.js';
import { createCredentialSource, type CredentialSource } from '../upstream/credentials.js';
import type { Principal } from './principal.js';

export interface OverageDeps {
  clock: Clock;
  fetch?: typeof fetch;
  logger?: Logger;
  metrics?: Metrics;
  /** Waits `ms` (injected by tests to see the Retry-After that was honoured). */
  sleep?: (ms: number) => Promise<void>;
}

/** Pages followed at most (getMemberObjects answers up to thousands of ids per page). */
const MAX_PAGES = 50;
/** 429 answers waited out per page at most. */
const MAX_THROTTLES = 3;

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class GraphGroups {
  private readonly cfg: GroupsOverageConfig;
  private readonly issuer: string;
  private readonly fetch: typeof fetch;
  private readonly logger: Logger | undefined;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly clock: Clock;
  private readonly credentials: CredentialSource;
  private readonly cache: RemoteCache<readonly string[]>;
  /** getMemberObjects requests made, pages and retries included (for tests). */
  requests = 0;

  constructor(issuer: string, cfg: GroupsOverageConfig, deps: OverageDeps) {
    this.cfg = cfg;
    this.issuer = issuer;
    this.clock = deps.clock;
    this.fetch = deps.fetch ?? fetch;
    this.logger = deps.logger;
    this.sleep = deps.sleep ?? delay;
    this.cache = new RemoteCache(10000, deps.clock);
    this.credentials = createCredentialSource({
      name: `graph:${issuer}`, url: cfg.graphUrl, timeoutMs: cfg.timeoutMs,
      credentials: {
        type: 'client-credentials', tokenUrl: cfg.tokenUrl, clientId: cfg.clientId, clientSecret: cfg.clientSecret,
        scopes: cfg.scopes, resource: null, audience: null, tokenEndpointAuthMethod: 'client_secret_basic',
        renewBeforeSec: 60, timeoutMs: cfg.timeoutMs,
      },
    }, { clock: deps.clock, ...(deps.fetch ? { fetch: deps.fetch } : {}), ...(deps.logger ? { logger: deps.logger } : {}), ...(deps.metrics ? { metrics: deps.metrics } : {}) });
  }

  /** Whether this principal's groups can be asked for (Graph needs the user's `oid`). */
  canResolve(principal: Principal): boolean {
    return principal.oid != null;
  }

  /** The user's group object ids: synchronous when known, else one shared Graph request. */
  groups(principal: Principal): readonly string[] | Promise<readonly string[]> {
    const oid = principal.oid;
    if (oid == null) throw new GroupsUnavailableError('overage token without oid');
    return this.cache.get(oid, async () => ({ value: await this.memberObjects(principal, oid), expiresAt: this.clock() + this.cfg.cacheTtlMs }));
  }

  private async memberObjects(principal: Principal, oid: string): Promise<readonly string[]> {
    let credential;
    try {
      credential = await this.credentials.get(principal, '');   // a client-credentials source ignores the caller's token
    } catch (err) {
      throw this.unavailable(err instanceof GatewayError ? (err.detail ?? err.message) : 'client-credentials token unobtainable');
    }
    if (credential === null) throw this.unavailable('no client-credentials token');
    const body = JSON.stringify({ securityEnabledOnly: this.cfg.securityEnabledOnly });
    const out: string[] = [];
    let url: string | null = `${this.cfg.graphUrl}/v1.0/users/${encodeURIComponent(oid)}/getMemberObjects`;
    for (let page = 0; url !== null; page++) {
      if (page === MAX_PAGES) throw this.unavailable(`more than ${MAX_PAGES} pages`);
      const answer = await this.page(url, credential.value, body);
      out.push(...answer.ids);
      url = answer.next;
    }
    return Object.freeze(out);
  }

  /** One page, waiting out throttling. */
  private async page(url: string, authorization: string, body: string): Promise<{ ids: string[]; next: string | null }> {
    for (let attempt = 0; ; attempt++) {
      this.requests++;
      let res: Response;
      try {
        res = await this.fetch(url, {
          method: 'POST', body, redirect: 'error', signal: AbortSignal.timeout(this.cfg.timeoutMs),
          headers: { authorization, 'content-type': 'application/json', accept: 'application/json' },
        });
      } catch (err) {
        throw this.unavailable(err instanceof Error && err.name === 'TimeoutError' ? 'timeout' : 'unreachable');
      }
      if (res.status === 429 && attempt < MAX_THROTTLES) {
        await res.body?.cancel();
        const waitMs = retryAfterMs(res.headers.get('retry-after'));
        if (waitMs > this.cfg.timeoutMs) throw this.unavailable(`throttled for ${waitMs} ms`);
        await this.sleep(waitMs);
        continue;
      }
      if (res.status !== 200) {
        await res.body?.cancel();
        throw this.unavailable(`HTTP ${res.status}`);
      }
      let json: unknown;
      try { json = await res.json(); } catch { throw this.unavailable('answer is not JSON'); }
      const value = (json as { value?: unknown })?.value;
      if (!Array.isArray(value)) throw this.unavailable('answer has no value list');
      const next = (json as Record<string, unknown>)['@odata.nextLink'];
      // The token goes only to the configured Graph: a next link elsewhere is not followed.
      if (next !== undefined && (typeof next !== 'string' || !next.startsWith(`${this.cfg.graphUrl}/`))) {
        throw this.unavailable('@odata.nextLink points outside graphUrl');
      }
      return { ids: value.filter((v): v is string => typeof v === 'string'), next: next ?? null };
    }
  }

  private unavailable(why: string): GroupsUnavailableError {
    const detail = `Graph getMemberObjects for issuer ${this.issuer}: ${why}`;
    this.logger?.warn({ detail }, 'groups overage unresolved');
    return new GroupsUnavailableError(detail);
  }

  close(): void {
    this.credentials.close();
    this.cache.clear();
  }
}

/** Retry-After as delay-seconds (RFC 9110 §10.2.3) or an HTTP date; absent or unreadable: 1 s. */
export function retryAfterMs(value: string | null, now = Date.now()): number {
  if (value === null) return 1000;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? 1000 : Math.max(0, at - now);
}
