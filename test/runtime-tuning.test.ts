import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const workload = join(process.cwd(), 'test/fixtures/tenure-workload.mjs');
const tuning = pathToFileURL(join(process.cwd(), 'dist/runtime-tuning.js')).href;

/** Allocation sites V8 switched to old-space allocation while the workload ran. */
function tenuredSites(mode: 'default' | 'tuned'): number {
  const r = spawnSync(process.execPath, ['--trace-pretenuring-statistics', workload, tuning, mode], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`workload failed: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l.includes('=> tenure')).length;
}

t.test('the CLI turns allocation-site pretenuring off', async (t) => {
  t.ok(tenuredSites('default') > 0, 'V8 pretenures the workload by default (the test can see it)');
  t.equal(tenuredSites('tuned'), 0, 'after applyRuntimeTuning() no site is pretenured');
});

t.test('main.ts applies the tuning before building the gateway', async (t) => {
  const { readFileSync } = await import('node:fs');
  const main = readFileSync(join(process.cwd(), 'src/main.ts'), 'utf8');
  t.ok(main.indexOf('applyRuntimeTuning()') > 0 && main.indexOf('applyRuntimeTuning()') < main.indexOf('createGateway(config)'));
});
