// V8 settings the gateway process runs best with, applied by the CLI before the gateway is built
// (a library user's process is left alone).
//
// Allocation-site pretenuring: under steady proxy load V8 decided that a dozen per-request object
// literals on the forwarding path "survive" (at 50 requests in flight a scavenge always finds
// some alive) and began allocating them straight into old space, where they die at once: about
// 1 MB of garbage promoted per scavenge and a mark-compact every ~0.5 s (`--trace-gc`,
// `--trace-pretenuring-statistics`: 80 sites tenured in 5 s). Off, the old generation stays flat
// and a pinned core serves ~13 % more requests (bench/README.md, "Where the time goes").
// The flag is read at every scavenge, so setting it at start-up takes effect.
import v8 from 'node:v8';

export const V8_FLAGS = ['--no-allocation-site-pretenuring'] as const;

export function applyRuntimeTuning(): void {
  for (const flag of V8_FLAGS) v8.setFlagsFromString(flag);
}
