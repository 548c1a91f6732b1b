// Admission to the verified-token cache: a token is cached the second time it verifies, not the
// first. A bearer token is used again and again for its lifetime, so real clients pay one more
// RSA check per token; a token seen once (a client minting one per call, a flood of distinct
// valid tokens) is never inserted, so it evicts nothing, and costs no insertion, eviction or
// old-generation garbage (a cached entry outlives many scavenges). The doorkeeper of W-TinyLFU
// (Caffeine), in its simplest form: one direct-mapped table of fingerprints of the token digest.
// It holds no token and no key: a colliding token overwrites the slot, so a token can be admitted
// late (a third sighting) or early (a 31-bit fingerprint match), never wrongly verified.

/** Slots: a power of two, four per cache entry, 1 Ki to 1 Mi (4 KB to 4 MB). */
export function doorkeeperSlots(cacheEntries: number): number {
  const want = Math.min(Math.max(cacheEntries * 4, 1024), 1 << 20);
  return 2 ** Math.ceil(Math.log2(want));
}

export class Doorkeeper {
  private readonly slots: Int32Array;
  private readonly mask: number;

  constructor(cacheEntries: number) {
    const n = doorkeeperSlots(cacheEntries);
    this.slots = new Int32Array(n);
    this.mask = n - 1;
  }

  /**
   * True when the token whose digest is `key` (a one-byte string of uniformly random chars, at
   * least 7 long) was marked before and its slot not taken since; false: it is marked now.
   */
  seenBefore(key: string): boolean {
    const slot = (key.charCodeAt(0) | (key.charCodeAt(1) << 8) | (key.charCodeAt(2) << 16)) & this.mask;
    // Never 0, the empty slot.
    const print = key.charCodeAt(3) | (key.charCodeAt(4) << 8) | (key.charCodeAt(5) << 16) | (key.charCodeAt(6) << 24) | 1;
    if (this.slots[slot] === print) return true;
    this.slots[slot] = print;
    return false;
  }

  clear(): void {
    this.slots.fill(0);
  }
}
