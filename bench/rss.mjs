#!/usr/bin/env node
// Memory bound of the verified-token cache, on its own (bench/run.mjs runs the same rows): start
// the gateway (pinned to one CPU, the runner on another), send --count DISTINCT valid tokens, each twice
// (64 in flight, loopback only) and sample the gateway's resident set (VmRSS, and the kernel's
// high-water mark VmHWM). Passes when the peak stays within --limit-mb (and, with --growth-mb,
// the growth over the RSS at start within that) and every request was answered 200.
//
//   node bench/rss.mjs [--count 100000] [--groups 1] [--heap-mb 128] [--limit-mb 160] [--growth-mb N]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { canPin, installCleanup, memoryDir, onCleanup, pinSelf, runMain, startHelper } from './lib/proc.mjs';
import { startIssuer } from './lib/issuer.mjs';
import { API_PATH, GATEWAY_MAIN, SHIPPED_HEAP_MB, gatewayBuilt, startGateway } from './lib/gateway.mjs';
import { MB, SENDS, mb, measureRss } from './lib/memory.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const { values: argv } = parseArgs({
  options: {
    count: { type: 'string' }, groups: { type: 'string' }, concurrency: { type: 'string' },
    'limit-mb': { type: 'string' }, 'growth-mb': { type: 'string' }, after: { type: 'string' },
    'max-seconds': { type: 'string' }, 'cache-size': { type: 'string' }, 'heap-mb': { type: 'string' },
    cpus: { type: 'string' }, 'no-pin': { type: 'boolean', default: false }, out: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (argv.help) {
  console.log(`usage: node bench/rss.mjs [options]
  --count N         distinct valid tokens to send, each twice in a row (RSS_COUNT, default 100000)
  --groups N        groups per token (default 1; 185 makes ~10 KB tokens, as Entra issues with many groups)
  --concurrency N   requests in flight (default 64)
  --heap-mb N       gateway --max-old-space-size (default 128, as shipped; 0: V8's default, from the host's memory)
  --limit-mb N      pass/fail bound on peak RSS, MB of 10^6 bytes (default 160 with the cap, 200 without)
  --growth-mb N     pass/fail bound on peak RSS minus RSS at start (default: none)
  --cache-size N    tokens.cacheSize (default: the gateway's default)
  --after S         seconds of sampling after the last response (default 5)
  --max-seconds S   stop sending after this long and fail (default 300)
  --cpus A,B        CPU for the gateway, CPU for the runner and upstream (default 0,1)
  --no-pin          do not pin
  --out DIR         results directory (default bench/results)`);
  process.exit(0);
}
const num = (v, env, def, min = 0) => {
  const raw = v ?? (env ? process.env[env] : undefined) ?? def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) { console.error(`bad value ${raw}`); process.exit(2); }
  return Math.floor(n);
};
const COUNT = num(argv.count, 'RSS_COUNT', 100_000, 1);
const GROUPS = num(argv.groups, '', 1, 1);
const HEAP_MB = num(argv['heap-mb'], 'RSS_HEAP_MB', SHIPPED_HEAP_MB, 0);
const LIMIT_MB = num(argv['limit-mb'], 'RSS_LIMIT_MB', HEAP_MB > 0 ? 160 : 200, 1);
const GROWTH_MB = argv['growth-mb'] === undefined ? null : num(argv['growth-mb'], '', 0, 1);
const CACHE_SIZE = argv['cache-size'] === undefined ? undefined : num(argv['cache-size'], '', 0, 0);
const CPUS = (argv.cpus ?? '0,1').split(',');
const OUT_DIR = path.resolve(argv.out ?? path.join(HERE, 'results'));

async function main() {
  installCleanup();
  if (!fs.existsSync('/proc/self/status')) throw new Error('needs Linux /proc to read VmRSS');
  if (!gatewayBuilt()) throw new Error(`gateway not built: ${GATEWAY_MAIN} is missing (run \`npm run build\`)`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cdf-gw-rss-'));
  onCleanup(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const pinned = !argv['no-pin'] && canPin(CPUS);

  const issuer = await startIssuer({ cacheDir: path.join(OUT_DIR, '.tokens') });
  onCleanup(() => issuer.close());
  const t0 = Date.now();
  const { tokens, cached } = await issuer.mintMany(COUNT, GROUPS > 1 ? { offset: 5_000_000, groups: GROUPS, label: 'big' } : { offset: 1_000_000 });
  console.log(`${COUNT.toLocaleString('en-US')} tokens of ${tokens[0].length} bytes ${cached ? 'from the cache' : 'minted'} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  if (pinned) pinSelf(CPUS[1]);
  const upstream = await startHelper(path.join(HERE, 'upstream.mjs'));
  const gw = await startGateway({
    name: 'gw-rss', dir: tmp, logDir: memoryDir('cdf-gw-rss-logs-'), issuer: issuer.issuer, jwksUri: issuer.jwksUri, cpu: pinned ? CPUS[0] : undefined,
    upstreamUrl: `http://127.0.0.1:${upstream.port}`, cacheSize: CACHE_SIZE, heapMb: HEAP_MB,
  });
  console.log(`gateway pid ${gw.pid}${pinned ? ` on CPU ${CPUS[0]}` : ' (UNPINNED)'}, heap ${HEAP_MB > 0 ? `--max-old-space-size=${HEAP_MB}` : "V8's default"}, tokens.cacheSize ${CACHE_SIZE ?? '(default)'}`);
  const m = await measureRss({
    gw, path: API_PATH, tokens, concurrency: num(argv.concurrency, 'RSS_CONCURRENCY', 64, 1),
    afterSec: num(argv.after, '', 5, 0), maxSec: num(argv['max-seconds'], '', 300, 1), progress: (l) => console.log(`  ${l}`),
  });
  const reasons = [];
  if (!gw.running()) reasons.push('the gateway exited during the run');
  if (m.ok !== SENDS * COUNT) reasons.push(`${SENDS * COUNT - m.ok} requests not answered 200 (statuses ${JSON.stringify(m.statuses)}, errors ${m.errors}${m.firstError ? `, first: ${m.firstError}` : ''})`);
  if (!(m.peak <= LIMIT_MB * MB)) reasons.push(`peak RSS ${mb(m.peak)} MB exceeds ${LIMIT_MB} MB`);
  if (GROWTH_MB !== null && !(m.growth <= GROWTH_MB * MB)) reasons.push(`RSS growth ${mb(m.growth)} MB exceeds ${GROWTH_MB} MB`);
  console.log(`\nrequests: ${m.sent.toLocaleString('en-US')} in ${m.seconds.toFixed(1)} s; statuses ${JSON.stringify(m.statuses)}; errors ${m.errors}`);
  console.log(`RSS: start ${mb(m.startRss)} MB, end of sending ${mb(m.endRss)} MB, after idle ${m.afterRss === null ? '—' : mb(m.afterRss)} MB`);
  console.log(`peak RSS ${mb(m.peak)} MB (VmHWM ${mb(m.hwm)} MB), growth ${mb(m.growth)} MB — limit ${LIMIT_MB} MB${GROWTH_MB !== null ? `, growth limit ${GROWTH_MB} MB` : ''}`);
  console.log(reasons.length ? `FAIL: ${reasons.join('; ')}` : 'PASS');
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const file = path.join(OUT_DIR, `rss-${new Date(t0).toISOString().replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, JSON.stringify({ count: COUNT, groups: GROUPS, tokenBytes: tokens[0].length, heapMB: HEAP_MB || 'default', pinned, limitMB: LIMIT_MB, growthMB: GROWTH_MB, ...m, pass: !reasons.length, reasons }, null, 2) + '\n');
  console.log(`JSON: ${path.relative(process.cwd(), file) || file}`);
  return reasons.length ? 1 : 0;
}

await runMain(main);
