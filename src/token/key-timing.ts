// The key-set timing policy, as one pure function on an injected clock: when a cached key set may
// be used, when to refresh it in the background, and when a request must wait for a fetch (or
// answer at once, in the cooldown). src/token/keys.ts applies it to each issuer's key set.

/** What decide() needs to know about an issuer's key set. Times are clock milliseconds. */
export interface KeyState {
  /** Completion time of the last successful fetch; null: never fetched successfully. */
  readonly lastSuccessAt: number | null;
  /**
   * Start time of the last fetch that started the cooldown: one an unknown kid triggered, or one
   * that failed. A successful routine fetch (start-up, stale set, background) does not count,
   * so a key rotated in right after it is picked up at once. null: none yet.
   */
  readonly cooldownFrom: number | null;
  /** A fetch is in flight (joining it costs the IdP nothing). */
  readonly fetching: boolean;
}

export interface TimingPolicy {
  /** A key set older than this is refreshed in the background (ms). */
  readonly cacheMaxAgeMs: number;
  /** A key set older than this is not used at all (ms). */
  readonly maxStaleMs: number;
  /** At most one fetch per this period, counted from `cooldownFrom` (ms). */
  readonly cooldownMs: number;
}

export interface Decision {
  /** The current key set may be used to verify signatures. */
  readonly usable: boolean;
  /** none: use what we have. background: start a refresh, do not wait. await: fetch (or join the fetch in flight) and wait for it. */
  readonly refresh: 'none' | 'background' | 'await';
}

/**
 * The key-set timing policy. `kidFound`: the token's key is in the current set; false means the
 * request can only succeed after a refetch (unknown kid, rotation).
 *
 * - usable ⇔ fetched successfully and age ≤ maxStaleMs (exactly at maxStale: still usable).
 * - A fetch may start when no cooldown was started or it started ≥ cooldownMs ago; joining a
 *   fetch already in flight is always allowed.
 * - Not usable, or kid not found: await a fetch if one may start/is running, else answer now
 *   (503 or 401 unknown_kid) without touching the IdP.
 * - Usable and found: when age > cacheMaxAgeMs refresh in the background (subject to the same
 *   cooldown, so a down IdP is not hammered by background refreshes either).
 */
export function decide(state: KeyState, now: number, policy: TimingPolicy, kidFound: boolean): Decision {
  const age = state.lastSuccessAt === null ? null : now - state.lastSuccessAt;
  const usable = age !== null && age <= policy.maxStaleMs;
  const mayStart = state.cooldownFrom === null || now - state.cooldownFrom >= policy.cooldownMs;
  if (!usable || !kidFound) {
    return { usable, refresh: state.fetching || mayStart ? 'await' : 'none' };
  }
  if (age !== null && age > policy.cacheMaxAgeMs && mayStart && !state.fetching) {
    return { usable, refresh: 'background' };
  }
  return { usable, refresh: 'none' };
}
