import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const workload = join(process.cwd(), 'test/fixtures/tenure-workload.mjs');
const tuning = pathToFileURL(join(process.cwd(), 'dist/runtime-tuning.js')).href;

/**
 * Pretenuring decisions V8 made about the workload's allocation sites (each "AllocationSite(…)"
 * line of the statistics). Whether a site ends up tenured depends on when scavenges fall (Node 24
 * tenured this workload's site in 7 runs of 10); that sites are judged at all does not, and with
 * pretenuring off none is.
 */
function weighedSites(mode: 'default' | 'tuned'): number {
  const r = spawnSync(process.execPath, ['--trace-pretenuring-statistics', workload, tuning, mode], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`workload failed: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l.includes('pretenuring: AllocationSite(')).length;
}

t.test('the CLI turns allocation-site pretenuring off', async (t) => {
  t.ok(weighedSites('default') > 0, 'V8 weighs the workload\'s sites for pretenuring by default (the test can see it)');
  t.equal(weighedSites('tuned'), 0, 'after applyRuntimeTuning() no site is weighed (or pretenured)');
});

/** The largest old space the workload saw (bytes): it promotes garbage as cache evictions do. */
function oldSpacePeak(mode: 'pretenuring-off' | 'tuned'): number {
  // The young generation at the image's size: otherwise Node 24's (64 MB semi-spaces) absorbs the workload.
  const r = spawnSync(process.execPath, ['--max-semi-space-size=8', join(process.cwd(), 'test/fixtures/old-space-workload.mjs'), tuning, mode], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`workload failed: ${r.stderr}`);
  return Number(r.stdout.trim());
}

t.test('without a heap cap the old generation grows 10 % past what survived, not up to 4×', async (t) => {
  const before = oldSpacePeak('pretenuring-off'); // the tuning before the heap growing flag
  const tuned = oldSpacePeak('tuned');
  // Measured: 187–196 MB against 71 MB (Node 20), 186–195 against 70 MB (Node 24).
  t.ok(tuned < before * 0.6, `old space peak ${Math.round(tuned / 1048576)} MB tuned against ${Math.round(before / 1048576)} MB without the flag`);
});

t.test('a flag the operator set is left as given', async (t) => {
  const { V8_FLAGS, tuningFlags: applied } = await import('../src/runtime-tuning.js');
  const { nodeFlags } = await import('../src/request/context.js');
  const tuningFlags = (execArgv: string[], nodeOptions: string) => applied(nodeFlags(execArgv, nodeOptions));
  t.same(tuningFlags([], ''), [...V8_FLAGS], 'nothing given: all applied');
  t.same(tuningFlags(['--heap-growing-percent=50'], ''), ['--no-allocation-site-pretenuring']);
  t.same(tuningFlags([], '--max-old-space-size=128  --heap_growing_percent=25'), ['--no-allocation-site-pretenuring'], 'NODE_OPTIONS, underscores');
  t.same(tuningFlags(['--allocation-site-pretenuring'], ''), ['--heap-growing-percent=10'], 'the positive form of a --no- flag');
  t.same(tuningFlags(['--max-old-space-size=128', '--max-semi-space-size=8'], ''), [...V8_FLAGS], 'heap flags do not count');
});

t.test('main.ts applies the tuning before building the gateway', async (t) => {
  const { readFileSync } = await import('node:fs');
  const main = readFileSync(join(process.cwd(), 'src/main.ts'), 'utf8');
  t.ok(main.indexOf('applyRuntimeTuning()') > 0 && main.indexOf('applyRuntimeTuning()') < main.indexOf('createGateway(config)'));
});
