#!/usr/bin/env node
// What the access log costs, measured inside one gateway process: the log is turned on and off
// by configuration reloads (`log.accessLog`) between short windows of the repeated-token load,
// in alternating order, and each window's CPU per request is read from /proc (`--path 401`: a
// token with a bad signature instead, the refusal path). Both settings then
// share the process's JIT state and the same minutes of the host, which separate processes
// (`npm run bench`'s log pair) do not: there, per-process differences are as large as the cost.
//
//   node bench/log-toggle.mjs [--pairs 8] [--duration 2] [--processes 2] [--heap-mb 128] [--path cached|401]
//
// The gateway is pinned to CPU 0 with the shipped heap flags; wrk, the upstream and this runner
// on CPU 1. Prints each pair and the median of (CPU per request, log off) ÷ (log on): the req/s
// ratio of log on to log off that a CPU-bound gateway reaches (goal ≥ 0.95).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { canPin, cpuSeconds, installCleanup, memoryDir, onCleanup, pinSelf, runMain, startHelper, stopChild, nodeVersion } from './lib/proc.mjs';
import { startIssuer } from './lib/issuer.mjs';
import { API_PATH, SHIPPED_HEAP_MB, gatewayBuilt, gatewayConfigYaml, startGateway } from './lib/gateway.mjs';
import { chooseTool, runLoad } from './lib/load.mjs';
import { median } from './lib/report.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const { values: argv } = parseArgs({
  options: {
    pairs: { type: 'string', default: '8' }, duration: { type: 'string', default: '2' },
    processes: { type: 'string', default: '2' }, 'heap-mb': { type: 'string', default: String(SHIPPED_HEAP_MB) },
    path: { type: 'string', default: 'cached' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (argv.path !== 'cached' && argv.path !== '401') {
  console.error(`--path: cached or 401, not ${argv.path}`);
  process.exit(2);
}
if (argv.help) {
  console.log('usage: node bench/log-toggle.mjs [--pairs 8] [--duration 2] [--processes 2] [--heap-mb 128] [--path cached|401]');
  process.exit(0);
}

/** The gateway's count of applied reloads (its admin metrics). */
async function reloads(gw) {
  const text = await (await fetch(`http://127.0.0.1:${gw.adminPort}/metrics`)).text();
  const m = /^cdf_gateway_config_reloads_total\{outcome="ok"\} (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

/** Rewrites the config with the access log on or off and waits until the gateway applied it. */
async function setAccessLog(gw, yaml, on) {
  if (gw.accessLog === on) return;
  gw.accessLog = on;
  const before = await reloads(gw);
  fs.writeFileSync(gw.configPath, yaml(on));
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 50));
    if (await reloads(gw) > before) return;
  }
  throw new Error('the gateway did not apply the reload within 5 s');
}

async function main() {
  installCleanup();
  if (!gatewayBuilt()) throw new Error('dist/ is missing: npm run build');
  const pairs = Number(argv.pairs);
  const durationSec = Number(argv.duration);
  const { tool, version } = chooseTool('auto');
  if (tool !== 'wrk') console.log('warning: wrk not found; the load generator is autocannon (it needs more of CPU 1)');
  const pinned = canPin(['0', '1']);
  if (!pinned) console.log('warning: UNPINNED (taskset or a second CPU is missing): figures are not per core');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cdf-gw-logtoggle-'));
  onCleanup(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const logDir = memoryDir('cdf-gw-logtoggle-logs-');
  const issuer = await startIssuer({ cacheDir: path.join(HERE, 'results', '.tokens') });
  onCleanup(() => issuer.close());
  const token = argv.path === '401' ? await issuer.badSignature() : await issuer.mint(0);
  if (pinned) pinSelf('1');
  const upstream = await startHelper(path.join(HERE, 'upstream.mjs'));
  onCleanup(() => stopChild(upstream.child));
  const upstreamUrl = `http://127.0.0.1:${upstream.port}`;
  console.log(`# access log on against off, one process each time; node ${nodeVersion()}, ${pinned ? 'gateway pinned to CPU 0' : 'UNPINNED'}, ${tool} ${version}`);
  console.log(`${argv.processes} process(es) × ${pairs} pairs of ${durationSec} s windows (after 1 s unmeasured), order alternating\n`);
  console.log('| process | pair | log on, CPU µs/req | log off, CPU µs/req | off ÷ on |\n|---:|---:|---:|---:|---:|');
  const ratios = [];
  const on = [];
  const off = [];
  for (let p = 0; p < Number(argv.processes); p++) {
    const gw = await startGateway({ name: `logtoggle-${p}`, dir: tmp, logDir, keepLog: false, issuer: issuer.issuer, jwksUri: issuer.jwksUri, upstreamUrl, cpu: pinned ? '0' : undefined, heapMb: Number(argv['heap-mb']), accessLog: true });
    try {
      const yaml = (accessLog) => gatewayConfigYaml({ port: gw.port, adminPort: gw.adminPort, issuer: issuer.issuer, jwksUri: issuer.jwksUri, upstreamUrl, accessLog });
      const load = (sec) => runLoad({ tool, url: `${gw.url}${API_PATH}`, connections: 50, durationSec: sec, workDir: tmp, token });
      gw.accessLog = true;
      await load(3); // warm-up
      for (let i = 0; i < pairs; i++) {
        const us = {};
        for (const mode of i % 2 === 0 ? ['on', 'off'] : ['off', 'on']) {
          await setAccessLog(gw, yaml, mode === 'on');
          await load(1); // settles
          const c0 = cpuSeconds(gw.pid);
          const r = await load(durationSec);
          us[mode] = ((cpuSeconds(gw.pid) - c0) * 1e6) / (r.rps * durationSec);
        }
        on.push(us.on);
        off.push(us.off);
        ratios.push(us.off / us.on);
        console.log(`| ${p + 1} | ${i + 1} | ${us.on.toFixed(1)} | ${us.off.toFixed(1)} | ${(us.off / us.on).toFixed(3)} |`);
      }
    } finally {
      await gw.stop();
    }
  }
  console.log(`\nmedian: log on ${median(on).toFixed(1)} µs, log off ${median(off).toFixed(1)} µs per request; off ÷ on ${median(ratios).toFixed(3)} (goal ≥ 0.95)`);
  return 0;
}

await runMain(main);
