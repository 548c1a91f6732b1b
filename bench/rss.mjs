#!/usr/bin/env node
// Memory bound of the verified-token cache: start the gateway with its default tokens.cacheSize,
// send 100,000 DISTINCT valid tokens (64 in flight, loopback only) and sample the gateway
// process's resident set (VmRSS, and the kernel's high-water mark VmHWM, from /proc/<pid>/status)
// during and after. Passes when the peak stays within the limit (200 MB) and every request was
// answered 200.
//
//   node bench/rss.mjs [--count 100000] [--concurrency 64] [--limit-mb 200] [--after 5] [--max-seconds 300]
import fs from 'node:fs';
import os from 'node:os';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { installCleanup, onCleanup, startHelper, isStopping, runMain } from './lib/proc.mjs';
import { startIssuer } from './lib/issuer.mjs';
import { startGateway, gatewayBuilt, GATEWAY_MAIN, API_PATH } from './lib/gateway.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const { values: argv } = parseArgs({
  options: {
    count: { type: 'string' },
    concurrency: { type: 'string' },
    'limit-mb': { type: 'string' },
    after: { type: 'string' },
    'max-seconds': { type: 'string' },
    'cache-size': { type: 'string' },
    'heap-mb': { type: 'string' },
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (argv.help) {
  console.log(`usage: node bench/rss.mjs [options]
  --count N         distinct valid tokens to send (env RSS_COUNT, default 100000)
  --concurrency N   requests in flight (RSS_CONCURRENCY, default 64)
  --limit-mb N      pass/fail bound on peak RSS in MB of 10^6 bytes (RSS_LIMIT_MB, default 200)
  --after S         seconds to keep sampling after the last response (default 5)
  --max-seconds S   stop sending after this long and fail (default 300)
  --cache-size N    set tokens.cacheSize (default: left out, so the gateway default applies)
  --heap-mb N       run the gateway with --max-old-space-size=N, as the Docker image and the Helm
                    chart do (RSS_HEAP_MB, default 128); 0: V8's default, sized from the host's memory
  --out DIR         results directory (default bench/results)`);
  process.exit(0);
}
const num = (v, env, def, min = 0) => {
  const raw = v ?? process.env[env] ?? def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) { console.error(`bad value ${raw}`); process.exit(2); }
  return n;
};
const COUNT = Math.floor(num(argv.count, 'RSS_COUNT', 100_000, 1));
const CONCURRENCY = Math.floor(num(argv.concurrency, 'RSS_CONCURRENCY', 64, 1));
const LIMIT_MB = num(argv['limit-mb'], 'RSS_LIMIT_MB', 200, 1);
const AFTER_SEC = num(argv.after, 'RSS_AFTER', 5, 0);
const MAX_SEC = num(argv['max-seconds'], 'RSS_MAX_SECONDS', 300, 1);
const CACHE_SIZE = argv['cache-size'] === undefined ? undefined : Math.floor(num(argv['cache-size'], '', 0, 0));
const HEAP_MB = Math.floor(num(argv['heap-mb'], 'RSS_HEAP_MB', 128, 0));
const OUT_DIR = path.resolve(argv.out ?? path.join(HERE, 'results'));

const MB = 1e6;
const mb = (bytes) => (bytes / MB).toFixed(1);

/** VmRSS and VmHWM of `pid` in bytes, or null once the process is gone. */
function readMem(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch { return null; }
}

async function main() {
  installCleanup();
  if (!fs.existsSync('/proc/self/status')) throw new Error('needs Linux /proc to read VmRSS');
  if (!gatewayBuilt()) throw new Error(`gateway not built: ${GATEWAY_MAIN} is missing (run \`npm run build\`)`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cdf-gw-rss-'));
  onCleanup(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const issuer = await startIssuer();
  onCleanup(() => issuer.close());
  const upstream = await startHelper(path.join(HERE, 'upstream.mjs'));
  const gw = await startGateway({
    name: 'gw-rss', dir: tmp, issuer: issuer.issuer, jwksUri: issuer.jwksUri,
    upstreamUrl: `http://127.0.0.1:${upstream.port}`, cacheSize: CACHE_SIZE,
    nodeArgs: HEAP_MB > 0 ? [`--max-old-space-size=${HEAP_MB}`] : [],
  });
  console.log(`gateway heap: ${HEAP_MB > 0 ? `--max-old-space-size=${HEAP_MB}` : "V8's default (from the host's memory)"}`);
  const pid = gw.pid;

  // Sampler: every 100 ms, bounded by the run (cleared below).
  const samples = [];
  let peakRss = 0;
  const t0 = Date.now();
  const sample = () => {
    const m = readMem(pid);
    if (!m) return;
    samples.push({ t: (Date.now() - t0) / 1000, rss: m.rss });
    if (m.rss > peakRss) peakRss = m.rss;
  };
  sample();
  const startRss = samples[0]?.rss ?? NaN;
  const sampler = setInterval(sample, 100);
  onCleanup(() => clearInterval(sampler));

  console.log(`gateway pid ${pid} ready; RSS at start ${mb(startRss)} MB; tokens.cacheSize ${CACHE_SIZE ?? '(gateway default)'}`);
  console.log(`sending ${COUNT.toLocaleString('en-US')} distinct valid RS256 tokens, ${CONCURRENCY} in flight, to ${gw.url}${API_PATH}`);

  // Sender: tokens are minted lazily (jose signs on libuv's thread pool) so minting overlaps sending.
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  onCleanup(() => agent.destroy());
  const statuses = {};
  let errors = 0;
  let firstError = null;
  let next = 0;
  let done = 0;
  const deadline = Date.now() + MAX_SEC * 1000;
  const get = (token) => new Promise((resolve) => {
    const req = http.get({
      host: '127.0.0.1', port: gw.port, path: API_PATH, agent,
      headers: { authorization: `Bearer ${token}` }, timeout: 10_000,
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
      res.on('error', (e) => resolve(e));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve(e));
  });
  async function worker() {
    while (next < COUNT && Date.now() < deadline && !isStopping()) {
      const i = next++;
      const token = await issuer.mint(i);
      const r = await get(token);
      if (typeof r === 'number') statuses[r] = (statuses[r] ?? 0) + 1;
      else { errors++; firstError ??= r.message; }
      if (++done % 10_000 === 0) {
        const m = readMem(pid);
        console.log(`  ${done.toLocaleString('en-US').padStart(7)} sent, ${((Date.now() - t0) / 1000).toFixed(0).padStart(3)} s, RSS ${m ? mb(m.rss) : '—'} MB, peak so far ${mb(Math.max(peakRss, m?.rss ?? 0))} MB`);
      }
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  if (isStopping()) throw new Error('interrupted: no results written');
  const sendSec = (Date.now() - t0) / 1000;
  const rssAtEnd = readMem(pid)?.rss ?? NaN;

  // After: idle sampling, then one collection-friendly pause, bounded by AFTER_SEC.
  await sleep(AFTER_SEC * 1000);
  clearInterval(sampler);
  sample();
  const mem = readMem(pid);
  const alive = gw.running() && mem !== null;
  const hwm = mem?.hwm ?? NaN;
  const peak = Math.max(peakRss, Number.isFinite(hwm) ? hwm : 0);

  const ok = statuses[200] ?? 0;
  const complete = done === COUNT;
  const reasons = [];
  if (!alive) reasons.push('the gateway exited during the run');
  if (!complete) reasons.push(`only ${done} of ${COUNT} requests sent within ${MAX_SEC} s`);
  if (ok !== COUNT) reasons.push(`${COUNT - ok} requests not answered 200 (statuses ${JSON.stringify(statuses)}, errors ${errors}${firstError ? `, first: ${firstError}` : ''})`);
  if (!(peak <= LIMIT_MB * MB)) reasons.push(`peak RSS ${mb(peak)} MB exceeds ${LIMIT_MB} MB`);
  const pass = reasons.length === 0;

  console.log('');
  console.log(`requests: ${done.toLocaleString('en-US')} in ${sendSec.toFixed(1)} s (${(done / sendSec).toFixed(0)} req/s incl. minting); statuses ${JSON.stringify(statuses)}; errors ${errors}`);
  console.log(`RSS: start ${mb(startRss)} MB, end of sending ${mb(rssAtEnd)} MB, after ${AFTER_SEC} s idle ${mem ? mb(mem.rss) : '—'} MB`);
  console.log(`peak RSS: ${mb(peak)} MB (${(peak / 2 ** 20).toFixed(1)} MiB; sampled max ${mb(peakRss)} MB, VmHWM ${mb(hwm)} MB) — limit ${LIMIT_MB} MB`);
  console.log(pass ? `PASS: peak RSS ${mb(peak)} MB ≤ ${LIMIT_MB} MB` : `FAIL: ${reasons.join('; ')}`);
  if (!alive || errors) {
    const tail = gw.tail(1500);
    if (tail) console.log(`--- gateway output (tail) ---\n${tail}`);
  }

  fs.mkdirSync(OUT_DIR, { recursive: true });
  const file = path.join(OUT_DIR, `rss-${new Date(t0).toISOString().replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, JSON.stringify({
    startedAt: new Date(t0).toISOString(), node: process.version, cpus: os.cpus().length,
    count: COUNT, concurrency: CONCURRENCY, cacheSize: CACHE_SIZE ?? 'default', heapMB: HEAP_MB || 'default', limitMB: LIMIT_MB,
    sent: done, sendSeconds: sendSec, statuses, errors, firstError,
    rssBytes: { start: startRss, endOfSending: rssAtEnd, afterIdle: mem?.rss ?? null, sampledPeak: peakRss, vmHWM: hwm, peak },
    pass, reasons,
    samples: samples.filter((_, i) => i % 10 === 0), // one per second
  }, null, 2) + '\n');
  console.log(`JSON: ${path.relative(process.cwd(), file) || file}`);
  return pass ? 0 : 1;
}

await runMain(main);
