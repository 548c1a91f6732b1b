// How many CPUs this process may really use: the CPUs it may run on (affinity, e.g. taskset)
// capped by a cgroup v2 CPU quota (a container's CPU limit), which Node's
// os.availableParallelism() does not see. Read once at start; decides where RSA checks run.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** `cpu.max` of cgroup v2 ("<quota> <period>" or "max <period>") → whole CPUs, or null (no quota). */
export function quotaCpus(cpuMax: string): number | null {
  const [quota, period] = cpuMax.trim().split(/\s+/);
  const q = Number(quota);
  const p = Number(period);
  if (quota === 'max' || !Number.isFinite(q) || !Number.isFinite(p) || q <= 0 || p <= 0) return null;
  return Math.max(1, Math.ceil(q / p));
}

export function cpuBudget(cgroupCpuMax = '/sys/fs/cgroup/cpu.max'): number {
  let cpus = availableParallelism();
  try {
    const quota = quotaCpus(readFileSync(cgroupCpuMax, 'utf8'));
    if (quota !== null) cpus = Math.min(cpus, quota);
  } catch {
    // No cgroup v2 CPU controller visible: affinity alone.
  }
  return cpus;
}
