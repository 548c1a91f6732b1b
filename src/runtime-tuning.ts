// V8 settings the gateway process runs best with, applied by the CLI before the gateway is built
// (a library user's process is left alone). Both flags are read by V8 at every collection, so
// setting them at start-up takes effect; a flag the operator gave on the command line or in
// NODE_OPTIONS (in either spelling, `--x`/`--no-x`, dashes or underscores) is left as given.
//
// Allocation-site pretenuring off: under steady proxy load V8 decided that a dozen per-request
// object literals on the forwarding path "survive" (at 50 requests in flight a scavenge always
// finds some alive) and began allocating them straight into old space, where they die at once:
// about 1 MB of garbage promoted per scavenge and a mark-compact every ~0.5 s (`--trace-gc`,
// `--trace-pretenuring-statistics`: 80 sites tenured in 5 s). Off, the old generation stays flat
// and a pinned core serves ~13 % more requests (bench/README.md, "Where the time goes").
//
// Heap growing 10 %: without a heap cap V8 sizes its limits from the host's memory and lets the
// old generation grow by up to 4× its live size between full collections; the verified-token
// cache's evictions (large Entra tokens) then pile up as garbage: RSS peak 224 MB under 100,000
// distinct tokens, +118 MB under 6,000 ~10 KB tokens (Node 20, no flags). With the next limit
// set 10 % above what survived: 139 MB and +49 MB, at no measurable cost in throughput
// (README, Performance). With the image's 128 MB cap it changes little; without one it is what
// bounds the heap.
//
// Young generation held at 4 MB semi-spaces when the command line sets no size: Node 24 sizes it
// from the host's memory (64 MB semi-spaces here), and RSS grew 175 MB under 6,000 ~10 KB tokens
// (Node 20: 16 MB). Held at 8 MB (the image's `--max-semi-space-size=8`, which comes with its heap
// cap) Node 24 still grew 64–67 MB; at 4 MB 51–59 MB (README, Performance). Its maximum is fixed
// when the heap is set up; only the growth factor is read at run time (see holdYoungGeneration).
//
// glibc's trim threshold fixed at 128 KB (MALLOC_TRIM_THRESHOLD_, as the Docker image sets it):
// by default glibc raises the threshold to twice the largest mmap'd block freed so far (V8's
// compiler threads free blocks of 300-650 KB), and each thread's arena then keeps that much free
// memory and more. Without a heap cap the RSS of 6,000 distinct 10 KB tokens grew 62-71 MB with
// glibc's default and 54-61 MB with it fixed (bench/rss.mjs). glibc reads it only at start, so
// the CLI re-executes itself with it, in place (process.execve: same pid, same arguments), where
// Node has execve (22.15+, 23.11+) and the operator has not set it.
import v8 from 'node:v8';
import { PerformanceObserver } from 'node:perf_hooks';
import { nodeFlags } from './request/context.js';

export const V8_FLAGS = ['--no-allocation-site-pretenuring', '--heap-growing-percent=10'] as const;

/** `--no-x`, `--x=v`, `--x` → `x`, with underscores read as dashes (V8 accepts both). */
function flagName(arg: string): string {
  let name = arg.replace(/^--/, '');
  const eq = name.indexOf('=');
  if (eq !== -1) name = name.slice(0, eq);
  name = name.replace(/_/g, '-');
  return name.startsWith('no-') ? name.slice(3) : name;
}

/** The flags of V8_FLAGS to apply: those the operator did not set themselves (`given`: nodeFlags()). */
export function tuningFlags(given: readonly string[]): string[] {
  const named = new Set(given.filter((a) => a.startsWith('--')).map(flagName));
  return V8_FLAGS.filter((f) => !named.has(flagName(f)));
}

/** The semi-space size the CLI holds the young generation to (MB) when the operator sets none. */
export const SEMI_SPACE_MB = 4;
const YOUNG_FLAGS = new Set(['max-semi-space-size', 'semi-space-growth-factor']);

/** Whether the CLI holds the young generation itself: the operator set neither of its flags. */
export function holdsYoungGeneration(given: readonly string[]): boolean {
  return !given.some((a) => a.startsWith('--') && YOUNG_FLAGS.has(flagName(a)));
}

const newSpaceBytes = (): number => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;

/**
 * Growth off (factor 1), and after every collection on again (factor 2, one doubling) only while
 * the doubled young generation fits under `semiSpaceMb` semi-spaces. Collections are reported
 * between event-loop turns, so a synchronous burst of allocation could double it more than once
 * while growth is on: call this before the gateway's modules load. Returns the observer
 * (it does not keep the process alive).
 */
export function holdYoungGeneration(semiSpaceMb = SEMI_SPACE_MB): PerformanceObserver {
  const ceiling = 2 * semiSpaceMb * 1024 * 1024; // both semi-spaces: what V8 reports as new_space
  let factor = 0;
  const set = (f: number) => {
    if (f !== factor) v8.setFlagsFromString(`--semi-space-growth-factor=${f}`);
    factor = f;
  };
  set(1);
  const observer = new PerformanceObserver(() => set(newSpaceBytes() * 2 <= ceiling ? 2 : 1));
  observer.observe({ entryTypes: ['gc'] });
  return observer;
}

/** glibc's trim threshold the CLI runs with (bytes), when the environment sets none. */
export const MALLOC_TRIM_THRESHOLD = '131072';

/**
 * The environment to re-execute with, or null: not Linux, the operator set the threshold (in
 * either of glibc's ways, any value), or a debugger is attached by a flag (its port would be
 * opened twice).
 */
export function mallocTuningEnv(env: NodeJS.ProcessEnv, platform: string = process.platform, given: readonly string[] = nodeFlags()): NodeJS.ProcessEnv | null {
  if (platform !== 'linux') return null;
  if (env.MALLOC_TRIM_THRESHOLD_ !== undefined || (env.GLIBC_TUNABLES ?? '').includes('glibc.malloc.trim_threshold')) return null;
  if (given.some((a) => /^--(inspect|debug)/.test(a))) return null;
  return { ...env, MALLOC_TRIM_THRESHOLD_: MALLOC_TRIM_THRESHOLD };
}

/**
 * Re-executes this process with glibc's trim threshold set (mallocTuningEnv), in place; returns
 * only when it does not (no execve in this Node, nothing to set, or execve failed). Call first
 * in the executable, before anything else is done.
 */
export function reexecWithMallocTuning(): void {
  const execve = (process as { execve?: (file: string, args: string[], env: NodeJS.ProcessEnv) => never }).execve;
  if (typeof execve !== 'function') return;
  const env = mallocTuningEnv(process.env);
  if (env === null) return;
  try {
    execve.call(process, process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)], env);
  } catch {
    // Not replaced (an odd filesystem, a sandbox): run on with glibc's default.
  }
}

/** Call first, before the gateway's modules load (src/main.ts). */
export function applyRuntimeTuning(): void {
  const given = nodeFlags();
  for (const flag of tuningFlags(given)) v8.setFlagsFromString(flag);
  if (holdsYoungGeneration(given)) holdYoungGeneration();
}
