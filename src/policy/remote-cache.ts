// Answers from a remote service (CDF token/inspect, Microsoft Graph) kept until they expire, with
// one request in flight per key however many callers wait for it. Failures are not kept: the
// next caller asks again.
import { LRUCache } from 'lru-cache';
import type { Clock } from '../clock.js';

export interface Expiring<V> {
  readonly value: V;
  /** ms since the epoch (the injected clock). */
  readonly expiresAt: number;
}

export class RemoteCache<V extends object> {
  private readonly entries: LRUCache<string, Expiring<V>>;
  private readonly inflight = new Map<string, Promise<V>>();
  private readonly clock: Clock;

  constructor(max: number, clock: Clock) {
    this.entries = new LRUCache({ max });
    this.clock = clock;
  }

  /** The cached value (synchronously), or the one load in flight for `key`, or a new load. */
  get(key: string, load: () => Promise<Expiring<V>>): V | Promise<V> {
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      if (hit.expiresAt > this.clock()) return hit.value;
      this.entries.delete(key);
    }
    const pending = this.inflight.get(key);
    if (pending !== undefined) return pending;
    const p = load().then(
      (e) => {
        this.inflight.delete(key);
        if (e.expiresAt > this.clock()) this.entries.set(key, e);
        return e.value;
      },
      (err: unknown) => {
        this.inflight.delete(key);
        throw err;
      },
    );
    this.inflight.set(key, p);
    return p;
  }

  clear(): void {
    this.entries.clear();
  }
}
