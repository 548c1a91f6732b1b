#!/usr/bin/env node
// Load benchmark of the gateway against a bare Fastify + @fastify/http-proxy, in one run, on one
// pinned core: the process under test (gateway or bare proxy) runs alone on CPU 0 (`taskset`),
// the load generator, the upstream and this runner on CPU 1. See bench/README.md.
//
//   node bench/run.mjs [--quick] [--duration 10] [--rounds 3] [--warmup 2] [--connections 50]
//                      [--pool 100000] [--only id,id] [--no-memory] [--no-pin] [--no-pair] [--check-goals]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { NODE, SHIPPED_NODE, SHIPPED_NODE_VERSION, affinityOf, canPin, cpuSeconds, installCleanup, isRunning, isStopping, memoryDir, nodeVersion, onCleanup, pinSelf, runMain, startHelper, stopChild } from './lib/proc.mjs';
import { startIssuer } from './lib/issuer.mjs';
import { API_PATH, API_PREFIX, GATEWAY_MAIN, SHIPPED_HEAP_MB, gatewayBuilt, startGateway } from './lib/gateway.mjs';
import { chooseTool, runLoad } from './lib/load.mjs';
import { SENDS, measureRss, mb } from './lib/memory.mjs';
import { GATEWAYS, fmt, fmtInt, headline, median, resultsTable } from './lib/report.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const { values: argv } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    connections: { type: 'string' }, duration: { type: 'string' }, warmup: { type: 'string' },
    rounds: { type: 'string' }, pool: { type: 'string' }, threads: { type: 'string' },
    tool: { type: 'string' }, only: { type: 'string' }, out: { type: 'string' }, cpus: { type: 'string' },
    'big-count': { type: 'string' }, 'big-groups': { type: 'string' }, 'rss-count': { type: 'string' },
    'no-memory': { type: 'boolean', default: false }, 'no-pin': { type: 'boolean', default: false }, 'no-pair': { type: 'boolean', default: false },
    'check-goals': { type: 'boolean', default: false }, 'keep-tmp': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (argv.help) {
  console.log(`usage: node bench/run.mjs [options]          (npm run bench = build, then this)
  --quick            1 round, 3 s per target, 1 s warm-up (about 4 minutes with the memory rows)
  --duration S       measured seconds per target and round (BENCH_DURATION, default 10)
  --warmup S         unmeasured seconds before each measurement, four times that for a fresh process's first (BENCH_WARMUP, default 2)
  --rounds N         rounds, targets in rotating order (BENCH_ROUNDS, default 3)
  --connections N    keep-alive connections (BENCH_CONNECTIONS, default 50)
  --pool N           distinct tokens for the first-seen rows and the RSS rows (BENCH_POOL, default 100000)
  --rss-count N      distinct tokens sent in the RSS-peak rows (default 100000; at most --pool)
  --big-count N      distinct large tokens for the RSS-growth rows (default 6000)
  --big-groups N     groups per large token (default 185: about 10 KB of token)
  --threads N        wrk threads (default 1)
  --tool T           auto | wrk | autocannon (default auto: wrk if installed)
  --only a,b         only these targets (ids in the table, or "memory" for the RSS rows; bare always runs)
  --cpus A,B         CPU for the process under test, CPU for everything else (default 0,1)
  --no-pin           do not pin (figures are labelled UNPINNED)
  --no-memory        skip the RSS rows
  --no-pair          do not measure each target's baseline again just before it (faster; unpaired ratios)
  --check-goals      exit 1 when a goal of the headline table is missed
  --out DIR          results directory (default bench/results)
  --keep-tmp         keep the temp dir (configs, gateway logs)`);
  process.exit(0);
}
const quick = argv.quick || process.env.BENCH_QUICK === '1';
const int = (flag, env, quickDefault, def, min = 0) => {
  const raw = argv[flag] ?? process.env[env] ?? (quick ? quickDefault : def);
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) { console.error(`--${flag}: expected an integer >= ${min}, got ${raw}`); process.exit(2); }
  return n;
};
const opts = {
  quick,
  connections: int('connections', 'BENCH_CONNECTIONS', 50, 50, 1),
  durationSec: int('duration', 'BENCH_DURATION', 3, 10, 1),
  warmupSec: int('warmup', 'BENCH_WARMUP', 1, 2, 0),
  rounds: int('rounds', 'BENCH_ROUNDS', 1, 3, 1),
  pool: int('pool', 'BENCH_POOL', 100_000, 100_000, 2),
  rssCount: int('rss-count', 'BENCH_RSS_COUNT', 100_000, 100_000, 1),
  bigCount: int('big-count', 'BENCH_BIG_COUNT', 6000, 6000, 1),
  bigGroups: int('big-groups', 'BENCH_BIG_GROUPS', 185, 185, 1),
  threads: int('threads', 'BENCH_THREADS', 1, 1, 1),
  tool: argv.tool ?? process.env.BENCH_TOOL ?? 'auto',
  only: (argv.only ?? process.env.BENCH_ONLY ?? '').split(',').map((s) => s.trim()).filter(Boolean),
  cpus: (argv.cpus ?? '0,1').split(',').map((s) => s.trim()),
  memory: !argv['no-memory'],
  paired: !argv['no-pair'],
  outDir: path.resolve(argv.out ?? path.join(HERE, 'results')),
};

async function main() {
  installCleanup();
  const { tool, version: toolVersion } = chooseTool(opts.tool);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cdf-gw-bench-'));
  if (!argv['keep-tmp']) onCleanup(() => fs.rmSync(tmp, { recursive: true, force: true }));
  // Access logs on tmpfs, each removed with its gateway (see logSink in lib/gateway.mjs).
  const logDir = memoryDir('cdf-gw-bench-logs-', argv['keep-tmp']);
  if (!gatewayBuilt()) throw new Error(`gateway not built: ${GATEWAY_MAIN} is missing (run \`npm run build\`)`);
  const problems = [];
  const startedAt = new Date();
  // With fewer tokens than twice the default cache (10,000), a pool walked in order would come
  // round to tokens still cached: the first-seen rows would measure hits.
  if (opts.pool < 20_000) problems.push(`--pool ${opts.pool} is below 20,000: after one pass the first-seen rows hit the gateway's cache (10,000 entries)`);
  const pinned = !argv['no-pin'] && canPin(opts.cpus);
  if (!argv['no-pin'] && !pinned) problems.push(`cannot pin to CPUs ${opts.cpus.join(',')} (taskset missing or CPUs absent): figures are UNPINNED`);
  const [sutCpu, otherCpu] = pinned ? opts.cpus : [undefined, undefined];

  console.log(`# cdf-auth-gateway benchmark${quick ? ' (quick)' : ''}${pinned ? '' : ' — UNPINNED'}`);
  const nodeUnderTest = nodeVersion();
  console.log(`processes under test on node ${nodeUnderTest} (${NODE === SHIPPED_NODE ? 'the image\'s runtime, from .ci/node24' : process.env.BENCH_NODE ? 'BENCH_NODE' : 'this runner\'s node'}), runner on ${process.version}`);
  if (nodeUnderTest !== `v${SHIPPED_NODE_VERSION}`) {
    problems.push(`the processes under test ran on node ${nodeUnderTest}, not the image's ${SHIPPED_NODE_VERSION} (npm ci --prefix .ci/node24 installs it): not "as shipped"`);
  }
  console.log(`${os.cpus().length} CPU(s) ${os.cpus()[0]?.model ?? ''}, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  if (os.loadavg()[0] > 0.5) console.log(`warning: the machine is busy (1-min load ${os.loadavg()[0].toFixed(2)}): absolute figures are noisy, compare ratios, and re-run on a quiet machine`);

  // Tokens first (minting uses every core), then this runner moves to the other CPU.
  const issuer = await startIssuer({ cacheDir: path.join(opts.outDir, '.tokens') });
  onCleanup(() => issuer.close());
  let t0 = Date.now();
  const token = await issuer.mint(0);
  const badToken = await issuer.badSignature();
  const pool = await issuer.mintMany(opts.pool, { offset: 1_000_000 });
  const big = opts.memory && (!opts.only.length || opts.only.includes('memory')) ? await issuer.mintMany(opts.bigCount, { offset: 5_000_000, groups: opts.bigGroups, label: 'big' }) : null;
  console.log(`tokens: ${opts.pool.toLocaleString('en-US')} distinct (${pool.cached ? 'cached' : 'minted'}), ` +
    `${big ? `${opts.bigCount.toLocaleString('en-US')} large of ${big.tokens[0].length} bytes (${big.cached ? 'cached' : 'minted'}), ` : ''}` +
    `in ${((Date.now() - t0) / 1000).toFixed(1)} s; one token is ${token.length} bytes`);
  if (pinned) pinSelf(otherCpu);
  console.log(pinned
    ? `pinned: the process under test on CPU ${sutCpu}; load generator (${toolVersion}), upstream and runner on CPU ${otherCpu}`
    : `UNPINNED: every process may use every CPU (ratios are not one-core ratios)`);

  const upstream = await startHelper(path.join(HERE, 'upstream.mjs'));
  const upstreamUrl = `http://127.0.0.1:${upstream.port}`;
  const expectedBody = await (await fetch(`${upstreamUrl}${API_PATH}`)).text();
  const helperEnv = { UPSTREAM_URL: upstreamUrl, PROXY_PREFIX: API_PREFIX.replace(/\/$/, '') };
  const want = (id) => !opts.only.length || opts.only.includes(id) || id === 'bare' || (id === 'bare-pool' && opts.only.some((o) => o.endsWith(':first')));
  /**
   * The processes under test, started afresh for every round: V8's optimisation decisions differ
   * from one process to the next (measured: ~3 % of one process's CPU in the runtime's slow paths
   * where another's had none, same build, same load), so rounds of one process would carry its luck.
   */
  async function startProcs(r) {
    const procs = { bare: await startHelper(path.join(HERE, 'bare-proxy.mjs'), helperEnv, { cpu: sutCpu }) };
    if (want('engine')) procs.engine = await startHelper(path.join(HERE, 'bare-undici.mjs'), helperEnv, { cpu: sutCpu });
    for (const g of GATEWAYS) {
      if (!['cached', 'first', '401'].some((p) => want(`${g.id}:${p}`))) continue;
      try {
        procs[g.id] = await startGateway({
          name: `${g.id}-r${r + 1}`, dir: tmp, logDir, keepLog: argv['keep-tmp'], issuer: issuer.issuer, jwksUri: issuer.jwksUri, upstreamUrl,
          heapMb: g.heapMb, accessLog: g.accessLog, cpu: sutCpu,
        });
      } catch (err) { problems.push(`${g.id}, round ${r + 1}: ${err.message}`); }
    }
    for (const p of Object.values(procs)) {
      if (pinned && affinityOf(p.pid) !== String(sutCpu)) problems.push(`pid ${p.pid} runs on CPUs ${affinityOf(p.pid)}, not ${sutCpu}`);
    }
    return procs;
  }
  async function stopProcs(procs) {
    for (const [id, p] of Object.entries(procs)) {
      if (!GATEWAYS.some((g) => g.id === id)) { await stopChild(p.child); continue; }
      const err = fs.existsSync(p.errPath) ? fs.statSync(p.errPath).size : 0;
      if (!p.running()) problems.push(`${p.name} exited during the run:\n${p.tail()}`);
      else if (err) problems.push(`${p.name} wrote ${err} bytes to stderr:\n${p.tail(1000)}`);
      await p.stop();
    }
  }
  let procs = await startProcs(0);
  /** Points each target at its process of the current round. */
  const attach = (t) => {
    if (t.procId === undefined) return;
    t.proc = procs[t.procId];
    t.url = t.proc && `${t.proc.url ?? `http://127.0.0.1:${t.proc.port}`}${API_PATH}`;
  };

  const gw = (g, p, label, extra) => ({ id: `${g.id}:${p}`, label: `${g.label}: ${label}`, procId: g.id, ...extra });
  const targets = [
    { id: 'upstream', label: 'upstream alone (node:http), on the load generator\'s CPU', proc: upstream, url: `${upstreamUrl}${API_PATH}`, expect: 200 },
    // The baselines get the gateway rows' request, Authorization header included (forwarded,
    // never checked): a ~700-byte header costs a proxy ~4-8 % to parse and forward.
    { id: 'bare', label: 'bare proxy: Fastify + @fastify/http-proxy, no auth, the same request (one token, forwarded)', procId: 'bare', token, expect: 200 },
    { id: 'bare-pool', label: `bare proxy, same ${opts.pool.toLocaleString('en-US')}-token rotation as the first-seen rows`, procId: 'bare', tokens: pool.tokens, expect: 200 },
    { id: 'engine', label: 'bare Fastify + the gateway\'s undici engine, no auth, the same request', procId: 'engine', token, expect: 200 },
    ...GATEWAYS.flatMap((g) => [
      gw(g, 'cached', 'one repeated valid token', { token, expect: 200 }),
      gw(g, 'first', `${opts.pool.toLocaleString('en-US')} distinct tokens, each first-seen`, { tokens: pool.tokens, expect: 200, baseline: 'bare-pool' }),
      gw(g, '401', 'bad signature → 401', { token: badToken, expect: 401 }),
    ]),
  ].filter((t) => t && want(t.id));
  for (const t of targets) { t.runs = []; t.pairs = []; t.problems = []; t.offset = 1; t.baseline ??= 'bare'; attach(t); if (!t.proc) t.skip = 'process did not start'; }

  for (const t of targets.filter((x) => !x.skip)) await preflight(t, expectedBody);
  const live = targets.filter((t) => !t.skip);
  for (const t of targets.filter((x) => x.skip)) problems.push(`${t.id}: ${t.skip}`);
  const perRun = opts.warmupSec + opts.durationSec + 1.5;
  // Every non-baseline target is paired with a run of its baseline (paired mode); fresh processes start each round.
  const runsPerRound = live.length + (opts.paired ? live.filter((t) => t.id !== 'upstream' && !live.some((x) => x.baseline === t.id)).length : 0);
  console.log(`throughput: ${live.length} targets × ${opts.rounds} round(s) (${runsPerRound} runs a round), ${opts.connections} connections, ${opts.durationSec} s after ${opts.warmupSec} s warm-up: ~${Math.ceil((opts.rounds * (runsPerRound * perRun + 30)) / 60)} min\n`);

  const byId = Object.fromEntries(live.map((t) => [t.id, t]));
  const isBaseline = (t) => t.id === 'upstream' || live.some((x) => x.baseline === t.id);
  /** Processes already warmed up (each is fresh for its round). */
  const warmed = new Set();
  for (let r = 0; r < opts.rounds; r++) {
    if (r > 0) {
      await stopProcs(procs);
      procs = await startProcs(r);
      for (const t of live) {
        attach(t);
        if (t.procId !== undefined && t.proc) await preflight(t, expectedBody);
      }
    }
    for (const t of live.slice(r % live.length).concat(live.slice(0, r % live.length))) {
      if (!t.proc || t.skip) { t.problems.push(`round ${r + 1}: not measured (${t.skip ?? 'process did not start'})`); continue; }
      // Paired: every other target's baseline is measured again just before it, so the pair's
      // ratio shares the host's state of that minute (a shared host can swing 2× between minutes).
      const base = isBaseline(t) || !opts.paired ? null : byId[t.baseline];
      const before = base ? await measure(base, r) : null;
      const res = await measure(t, r);
      if (before && res) t.pairs.push({ rps: res.rps / before.rps, cpu: before.cpuUsPerReq && res.cpuUsPerReq ? before.cpuUsPerReq / res.cpuUsPerReq : null });
    }
  }

  /** One measured run of a target (after its warm-up), recorded with it; null when it failed. */
  async function measure(t, r) {
      if (isStopping()) throw new Error('interrupted: no results written');
      if (!isRunning(t.proc.child)) { t.problems.push(`round ${r + 1}: process exited`); return null; }
      const load = { tool, url: t.url, connections: opts.connections, threads: opts.threads, token: t.token, tokens: t.tokens, workDir: tmp };
      try {
        // A process's first run of the round warms it four times as long (its JIT starts cold).
        const warm = warmed.has(t.proc) ? opts.warmupSec : opts.warmupSec * 4;
        warmed.add(t.proc);
        if (warm > 0) t.offset += (await runLoad({ ...load, offset: t.offset, durationSec: warm })).requests + opts.connections;
        const cpu0 = cpuSeconds(t.proc.pid);
        const res = await runLoad({ ...load, offset: t.offset, durationSec: opts.durationSec });
        const cpu1 = cpuSeconds(t.proc.pid);
        // CPU time of the process under test per response: robust to other load on the machine.
        res.cpuUsPerReq = cpu0 !== null && cpu1 !== null && res.requests ? ((cpu1 - cpu0) * 1e6) / res.requests : null;
        t.offset += res.requests + opts.connections;
        const errs = Object.values(res.errors).reduce((a, b) => a + (b || 0), 0);
        const badStatus = t.expect === 200 ? res.statusErrors : res.requests - res.statusErrors;
        t.runs.push({ ...res, round: r + 1 });
        if (badStatus) t.problems.push(`round ${r + 1}: ${badStatus} of ${res.requests} responses had an unexpected status`);
        if (errs) t.problems.push(`round ${r + 1}: socket errors ${JSON.stringify(res.errors)}`);
        console.log(`round ${r + 1}/${opts.rounds}  ${t.id.padEnd(14)} ${fmtInt(res.rps).padStart(8)} req/s  ${fmt(res.cpuUsPerReq, 0).padStart(5)} µs CPU/req  p50 ${fmt(res.p50Ms).padStart(6)} ms  p99 ${fmt(res.p99Ms).padStart(6)} ms${badStatus || errs ? '  (!)' : ''}`);
        return res;
      } catch (err) {
        t.problems.push(`round ${r + 1}: ${err.message}`);
        return null;
      }
  }
  for (const t of targets) {
    const cpu = t.runs.map((x) => x.cpuUsPerReq).filter((x) => x !== null);
    t.median = t.runs.length ? {
      rps: median(t.runs.map((x) => x.rps)), p50Ms: median(t.runs.map((x) => x.p50Ms)), p99Ms: median(t.runs.map((x) => x.p99Ms)),
      cpuUsPerReq: cpu.length ? median(cpu) : null,
    } : null;
    const pairCpu = t.pairs.map((x) => x.cpu).filter((x) => x !== null);
    t.paired = t.pairs.length ? { rps: median(t.pairs.map((x) => x.rps)), cpu: pairCpu.length ? median(pairCpu) : null } : null;
    for (const p of t.problems) problems.push(`${t.id}: ${p}`);
  }
  await stopProcs(procs);

  // Memory: a fresh gateway per row, every token sent twice in a row (cached on its second verification), 64 in flight.
  const memory = {};
  if (opts.memory && (!opts.only.length || opts.only.includes('memory'))) {
    console.log('\nmemory (fresh gateway per row, 64 in flight):');
    const rows = [
      { id: 'rss-shipped', heapMb: SHIPPED_HEAP_MB, tokens: pool.tokens.slice(0, opts.rssCount) },
      { id: 'rss-nocap', heapMb: 0, tokens: pool.tokens.slice(0, opts.rssCount) },
      { id: 'big-shipped', heapMb: SHIPPED_HEAP_MB, tokens: big.tokens },
      { id: 'big-nocap', heapMb: 0, tokens: big.tokens },
    ];
    for (const row of rows) {
      if (isStopping()) throw new Error('interrupted: no results written');
      const g = await startGateway({ name: row.id, dir: tmp, logDir, keepLog: argv['keep-tmp'], issuer: issuer.issuer, jwksUri: issuer.jwksUri, upstreamUrl, heapMb: row.heapMb, cpu: sutCpu });
      try {
        const m = await measureRss({ gw: g, path: API_PATH, tokens: row.tokens });
        memory[row.id] = m;
        if (m.ok !== SENDS * row.tokens.length) problems.push(`${row.id}: ${SENDS * row.tokens.length - m.ok} of ${SENDS * row.tokens.length} not answered 200 (${JSON.stringify(m.statuses)}${m.firstError ? `, first error ${m.firstError}` : ''})`);
        console.log(`  ${row.id.padEnd(12)} ${row.tokens.length.toLocaleString('en-US').padStart(7)} tokens, each sent ${SENDS}×, in ${m.seconds.toFixed(1)} s: RSS start ${mb(m.startRss)} MB, peak ${mb(m.peak)} MB, growth ${mb(m.growth)} MB`);
      } finally { await g.stop(); }
    }
  }

  const table = resultsTable(targets);
  const head = headline({ targets, memory, opts, pinned });
  console.log(`\n## Results: medians of ${opts.rounds} round(s)${pinned ? `, process under test pinned to CPU ${sutCpu}` : ', UNPINNED'}\n`);
  console.log(table);
  console.log(`\n## Headline (ratios to the bare proxy of the same run${pinned ? ', same pinned core' : ', UNPINNED'})\n`);
  console.log(head.text);
  if (problems.length) { console.log('\n## Problems'); for (const p of problems) console.log(`- ${p}`); }

  const result = {
    startedAt: startedAt.toISOString(), finishedAt: new Date().toISOString(), pinned, cpus: pinned ? { underTest: sutCpu, rest: otherCpu } : null,
    tool: { name: tool, version: toolVersion }, options: { ...opts, outDir: undefined },
    machine: { node: nodeUnderTest, runnerNode: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? null, loadavgAtEnd: os.loadavg() },
    targets: targets.map(({ proc, tokens, token, ...t }) => t), memory, headline: head.rows, problems,
  };
  fs.mkdirSync(opts.outDir, { recursive: true });
  const file = path.join(opts.outDir, `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, JSON.stringify(result, (k, v) => (k === 'samples' ? undefined : v), 2) + '\n');
  console.log(`\nJSON: ${path.relative(process.cwd(), file) || file}`);
  if (argv['keep-tmp']) console.log(`temp dir kept: ${tmp}`);
  const failed = targets.some((t) => t.skip || !t.runs.length);
  return failed || (argv['check-goals'] && head.missed) ? 1 : 0;
}

/** One request per target before any load: a target answering the wrong thing is not measured. */
async function preflight(t, expectedBody) {
  const auth = t.token ?? t.tokens?.[0];
  try {
    const res = await fetch(t.url, { headers: auth ? { authorization: `Bearer ${auth}` } : {}, signal: AbortSignal.timeout(5000) });
    const body = await res.text();
    if (res.status !== t.expect) t.skip = `preflight: expected ${t.expect}, got ${res.status} ${body.slice(0, 200)}`;
    else if (t.expect === 200 && body !== expectedBody) t.problems.push(`preflight: body differs from the upstream's (${body.length} vs ${expectedBody.length} bytes)`);
    else if (t.expect === 401) {
      if (!/^Bearer\b.*invalid_token/i.test(res.headers.get('www-authenticate') ?? '')) t.problems.push('preflight: 401 without WWW-Authenticate: Bearer error="invalid_token"');
      if (JSON.parse(body)?.error?.code !== 401) t.problems.push(`preflight: 401 body is not CDF-shaped: ${body.slice(0, 200)}`);
    }
  } catch (err) {
    t.skip = `preflight failed: ${err?.cause?.code ?? err.message}`;
  }
}

await runMain(main);
