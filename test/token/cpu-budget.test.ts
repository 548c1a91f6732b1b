// The CPU budget that decides where signatures are checked: affinity capped by a cgroup quota.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { cpuBudget, quotaCpus } from '../../src/token/cpu-budget.js';

t.test('cgroup v2 cpu.max → whole CPUs', async (t) => {
  t.equal(quotaCpus('max 100000\n'), null, 'no quota');
  t.equal(quotaCpus('100000 100000\n'), 1);
  t.equal(quotaCpus('50000 100000'), 1, 'half a CPU still runs on one');
  t.equal(quotaCpus('150000 100000'), 2);
  t.equal(quotaCpus('400000 100000'), 4);
  t.equal(quotaCpus(''), null);
  t.equal(quotaCpus('garbage'), null);
  t.equal(quotaCpus('0 100000'), null);
});

t.test('the budget is the affinity, capped by the quota when one is readable', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cpu-budget-'));
  const file = path.join(dir, 'cpu.max');
  writeFileSync(file, '100000 100000\n');
  t.equal(cpuBudget(file), 1);
  writeFileSync(file, 'max 100000\n');
  t.equal(cpuBudget(file), availableParallelism());
  t.equal(cpuBudget(path.join(dir, 'missing')), availableParallelism());
});
