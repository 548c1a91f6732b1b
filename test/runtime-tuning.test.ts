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

t.test('main.ts applies the tuning before building the gateway', async (t) => {
  const { readFileSync } = await import('node:fs');
  const main = readFileSync(join(process.cwd(), 'src/main.ts'), 'utf8');
  t.ok(main.indexOf('applyRuntimeTuning()') > 0 && main.indexOf('applyRuntimeTuning()') < main.indexOf('createGateway(config)'));
});
