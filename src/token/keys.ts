// One IssuerKeys per trusted issuer: its JWKS as cached node:crypto KeyObjects, plus the timing
// policy (background refresh, riding out an IdP outage, cooldown on unknown kids) that jose's
// createRemoteJWKSet does not implement on its own.
//
// jose does the fetching: single-flight reload(), the timeout as a typed error (JWKSTimeout),
// `redirect: manual`, and JWKS shape validation. It is configured so that it never decides on
// its own (cacheMaxAge Infinity, cooldown 0) and we only ever call its reload() and jwks(); all
// timing decisions are made by decide() (key-timing.ts), on our injected clock.
import { performance } from 'node:perf_hooks';
import { createRemoteJWKSet, customFetch, errors as joseErrors, type JWK } from 'jose';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { IssuerConfig, TokensConfig } from '../config/types.js';
import { boundedFetch } from '../bounded-fetch.js';
import { describeError } from '../log.js';
import { activeSpan, failSpan, withSpan } from '../tracing.js';
import { InvalidTokenError, KeysUnavailableError, ResponseTooLargeError } from '../errors.js';
import type { FetchOutcome, Metrics } from '../metrics.js';
import { jwkToEntry, keyFitsAlg, type KeyEntry } from './jwk.js';

import { decide, type KeyState, type TimingPolicy } from './key-timing.js';

export { decide, type Decision, type KeyState, type TimingPolicy } from './key-timing.js';

// ---------------------------------------------------------------------------------------------

export interface IssuerKeysDeps {
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly logger?: Logger | undefined;
  readonly fetch?: typeof fetch | undefined;
}

export interface IssuerStatus {
  issuer: string;
  ready: boolean;
  keys: number;
  ageMs: number | null;
  lastError: string | null;
}

type RemoteSet = ReturnType<typeof createRemoteJWKSet>;

export class IssuerKeys {
  readonly issuer: string;
  private readonly timeoutMs: number;
  private readonly policy: TimingPolicy;
  private readonly deps: IssuerKeysDeps;
  private readonly fetchBounded: typeof fetch;

  private jwksUri: string | null;
  private remote: RemoteSet | null = null;
  /** Current usable keys. Replaced as a whole on every successful fetch that changes the set. */
  private entries: readonly KeyEntry[] = [];
  private current: ReadonlySet<KeyEntry> = new Set();
  private byFingerprint: ReadonlyMap<string, KeyEntry> = new Map();
  private lastSetText: string | null = null;

  private lastSuccessAt: number | null = null;
  private cooldownFrom: number | null = null;
  private lastError: string | null = null;
  private pending: Promise<void> | null = null;
  private closed = false;

  constructor(config: IssuerConfig, tokens: TokensConfig, deps: IssuerKeysDeps) {
    this.issuer = config.issuer;
    this.jwksUri = config.jwksUri;
    this.timeoutMs = Math.max(0, Math.ceil(tokens.jwksTimeoutMs)); // jose wants an integer
    // Key set and discovery bodies are cut off at jwksMaxBytes while they are read.
    this.fetchBounded = boundedFetch(tokens.jwksMaxBytes, deps.fetch ?? ((input, init) => fetch(input, init)));
    this.policy = {
      cacheMaxAgeMs: tokens.jwksCacheMaxAgeMs,
      maxStaleMs: tokens.jwksMaxStaleMs,
      cooldownMs: tokens.jwksCooldownMs,
    };
    this.deps = deps;
  }

  private state(): KeyState {
    return { lastSuccessAt: this.lastSuccessAt, cooldownFrom: this.cooldownFrom, fetching: this.pending !== null };
  }

  /** The keys of the current set that can verify `alg` with this `kid` (undefined: token has no kid). */
  private candidates(alg: string, kid: string | undefined): KeyEntry[] {
    const out: KeyEntry[] = [];
    for (const e of this.entries) {
      if ((kid === undefined || e.kid === kid) && keyFitsAlg(e, alg)) out.push(e);
    }
    return out;
  }

  /**
   * The keys to try for a token (usually exactly one): at once from a current key set, or the
   * promise of them when the policy makes this token wait for a fetch. Throws (or rejects with)
   * KeysUnavailableError when the issuer has no usable key set, InvalidTokenError('unknown_kid')
   * when no key matches even after the refetch the policy allows.
   */
  keysFor(alg: string, kid: string | undefined): readonly KeyEntry[] | Promise<readonly KeyEntry[]> {
    const found = this.candidates(alg, kid);
    const { usable, refresh } = decide(this.state(), this.deps.clock(), this.policy, found.length > 0);
    if (refresh === 'await') {
      // A kid missing from a usable set is what the cooldown guards against (a flood of made-up kids).
      // Judged again after the fetch, but never a second fetch for one request.
      return this.refresh(usable ? 'unknown-kid' : 'routine').then(() => this.chosen(alg, kid, this.candidates(alg, kid), this.isUsable()));
    }
    if (refresh === 'background') void this.refresh();
    return this.chosen(alg, kid, found, usable);
  }

  private chosen(alg: string, kid: string | undefined, found: KeyEntry[], usable: boolean): readonly KeyEntry[] {
    if (!usable) {
      throw new KeysUnavailableError(`${this.issuer}: no usable key set (${this.lastError ?? 'never fetched'})`);
    }
    if (found.length === 0) {
      throw new InvalidTokenError('unknown_kid', kid === undefined ? `no ${alg} key without kid` : `unknown kid for ${alg}`);
    }
    if (kid === undefined && found.length > 1) {
      throw new InvalidTokenError('unknown_kid', `token without kid and ${found.length} ${alg} keys`);
    }
    return found;
  }

  private isUsable(): boolean {
    return decide(this.state(), this.deps.clock(), this.policy, true).usable;
  }

  /** The current key set's identity: a new object whenever a fetch installs different keys. */
  get generation(): object {
    return this.current;
  }

  /**
   * For a verified-token cache hit: true when `entry` is still in the current key set and the
   * set is usable. Starts a background refresh when the policy says so (so an issuer whose
   * tokens are all served from cache still gets its keys refreshed).
   */
  stillValid(entry: KeyEntry): boolean {
    if (!this.current.has(entry)) return false;
    const d = decide(this.state(), this.deps.clock(), this.policy, true);
    if (d.refresh === 'background') void this.refresh();
    return d.usable;
  }

  /**
   * Fetch the key set if the timing policy allows it now (joins a fetch in flight; inside the
   * cooldown of a failed fetch, does nothing). For callers anyone can trigger at any rate, such as
   * readiness probes: a failing IdP is asked at most once per cooldown. Never throws.
   */
  refreshIfAllowed(): Promise<void> {
    const { refresh } = decide(this.state(), this.deps.clock(), this.policy, true);
    return refresh === 'none' ? Promise.resolve() : this.refresh();
  }

  /**
   * Fetch the key set now (single-flight; joins a fetch in flight). Never throws. A fetch for an
   * unknown kid starts the cooldown; a routine one only if it fails.
   */
  refresh(trigger: 'routine' | 'unknown-kid' = 'routine'): Promise<void> {
    if (this.pending !== null) return this.pending;
    if (this.closed) return Promise.resolve();
    const startedAt = this.deps.clock();
    if (trigger === 'unknown-kid') this.cooldownFrom = startedAt;
    const p = this.fetchOnce(startedAt).finally(() => { if (this.pending === p) this.pending = null; });
    this.pending = p;
    return p;
  }

  private fetchOnce(startedAt: number): Promise<void> {
    // A span when a request triggered the fetch (the unknown-kid refetch, a due refresh).
    return activeSpan() === null ? this.fetchKeys(startedAt)
      : withSpan('fetch key set', () => this.fetchKeys(startedAt), { 'cdf_gateway.issuer': this.issuer });
  }

  private async fetchKeys(startedAt: number): Promise<void> {
    const started = performance.now();
    let outcome: FetchOutcome = 'ok';
    try {
      const remote = await this.remoteSet();
      await remote.reload();
      this.install(remote.jwks());
      this.lastSuccessAt = this.deps.clock();
      this.lastError = null;
    } catch (err) {
      // The last good keys stay (install() replaces nothing when it throws).
      this.cooldownFrom = startedAt;
      outcome = isTimeout(err) ? 'timeout' : 'error';
      this.lastError = outcome === 'timeout' ? `timeout after ${this.timeoutMs} ms` : fetchError(err);
      this.deps.logger?.warn({ issuer: this.issuer, reason: this.lastError, err }, 'JWKS fetch failed');
      failSpan(err);
    } finally {
      this.deps.metrics.jwksFetch(this.issuer, outcome, (performance.now() - started) / 1000);
    }
  }

  private async remoteSet(): Promise<RemoteSet> {
    if (this.remote !== null) return this.remote;
    // Discovery runs inside fetchOnce, so it is single-flight with the JWKS fetch and counts as
    // part of the same attempt (metrics, cooldown). The discovered URI is kept for good.
    this.jwksUri ??= await this.discover();
    const opts: Parameters<typeof createRemoteJWKSet>[1] = {
      timeoutDuration: this.timeoutMs,
      cooldownDuration: 0,
      cacheMaxAge: Infinity,
    };
    (opts as Record<symbol, unknown>)[customFetch] = this.fetchBounded;
    this.remote = createRemoteJWKSet(new URL(this.jwksUri), opts);
    return this.remote;
  }

  private async discover(): Promise<string> {
    const url = `${this.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    const res = await this.fetchBounded(url, {
      method: 'GET', redirect: 'manual', signal: AbortSignal.timeout(this.timeoutMs),
      headers: { accept: 'application/json' },
    });
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => {});
      throw new Error(`discovery: expected 200 OK, got ${res.status}`);
    }
    let meta: unknown;
    try {
      meta = await res.json();
    } catch (cause) {
      if (isTimeout(cause)) throw cause;
      throw new Error('discovery: response is not JSON', { cause });
    }
    if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) throw new Error('discovery: metadata is not an object');
    const m = meta as Record<string, unknown>;
    if (m.issuer !== this.issuer) throw new Error('discovery: metadata issuer does not match the configured issuer');
    const jwksUri = m.jwks_uri;
    if (typeof jwksUri !== 'string' || !URL.canParse(jwksUri) || !/^https?:$/.test(new URL(jwksUri).protocol)) {
      throw new Error('discovery: metadata has no usable jwks_uri');
    }
    return jwksUri;
  }

  /**
   * Replace the key set. JWKs whose material is unchanged keep their KeyEntry (and KeyObject).
   * A set without one usable key is a failed fetch (throws): the last good keys stay.
   */
  private install(jwks: { keys: JWK[] } | undefined): void {
    if (jwks === undefined) throw new Error('JWKS missing after reload');
    const text = JSON.stringify(jwks.keys);
    if (text === this.lastSetText) return;
    const entries: KeyEntry[] = [];
    const byFingerprint = new Map<string, KeyEntry>();
    for (const jwk of jwks.keys) {
      const e = jwkToEntry(jwk, this.byFingerprint);
      if (e !== null && !byFingerprint.has(e.fingerprint)) {
        entries.push(e);
        byFingerprint.set(e.fingerprint, e);
      }
    }
    if (entries.length === 0) throw new Error(`key set has no usable key (${jwks.keys.length} keys)`);
    this.entries = entries;
    this.current = new Set(entries);
    this.byFingerprint = byFingerprint;
    this.lastSetText = text;
  }

  status(): IssuerStatus {
    const now = this.deps.clock();
    return {
      issuer: this.issuer,
      ready: this.isUsable() && this.entries.length > 0,
      keys: this.entries.length,
      ageMs: this.lastSuccessAt === null ? null : now - this.lastSuccessAt,
      lastError: this.lastError,
    };
  }

  close(): void {
    this.closed = true;
  }
}

function isTimeout(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (e instanceof joseErrors.JWKSTimeout || e.name === 'TimeoutError') return true;
  }
  return false;
}

/** Why a fetch failed: an oversized answer by name (jose wraps it), else the cause chain. */
function fetchError(err: unknown): string {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (e instanceof ResponseTooLargeError) return `key set or discovery document too large (over tokens.jwksMaxBytes = ${e.limit})`;
  }
  return describeError(err);
}
