#!/usr/bin/env node
// Load benchmark of the gateway, each figure against its baseline measured in the same run.
//
//   node bench/run.mjs [--quick] [--connections 50] [--duration 10] [--warmup 2] [--rounds 3]
//                      [--pool 5000] [--threads 1] [--tool auto|wrk|autocannon] [--only id,id]
//
// Every target runs in its own process (the load generator is wrk, or autocannon in this
// process); the same load is applied to each, in rotating order over several rounds; the table
// shows per-target medians and their ratios to the bare proxy. See bench/README.md.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { installCleanup, onCleanup, startHelper, isRunning, isStopping, runMain } from './lib/proc.mjs';
import { startIssuer } from './lib/issuer.mjs';
import { startGateway, gatewayBuilt, GATEWAY_MAIN, API_PATH, API_PREFIX } from './lib/gateway.mjs';
import { chooseTool, runLoad } from './lib/load.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));

// ---------------------------------------------------------------------------------------------
// Options: CLI flag > environment variable > --quick preset > default.
const { values: argv } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    connections: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    rounds: { type: 'string' },
    pool: { type: 'string' },
    threads: { type: 'string' },
    tool: { type: 'string' },
    only: { type: 'string' },
    out: { type: 'string' },
    'keep-tmp': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (argv.help) {
  console.log(`usage: node bench/run.mjs [options]
  --quick              smoke run: 1 round, 2 s per target, 1 s warm-up, pool of 500 tokens
  --connections N      concurrent connections (env BENCH_CONNECTIONS, default 50)
  --duration S         measured seconds per target and round (BENCH_DURATION, default 10)
  --warmup S           warm-up seconds before each measurement (BENCH_WARMUP, default 2; 0 = none)
  --rounds N           alternating rounds (BENCH_ROUNDS, default 3)
  --pool N             distinct tokens in the first-seen pool (BENCH_POOL, default 5000)
  --threads N          wrk threads (BENCH_THREADS, default 1)
  --tool T             auto | wrk | autocannon (BENCH_TOOL, default auto: wrk if installed)
  --only a,b           run only these target ids (bare always runs; bare-pool runs with any gw-pool-* row)
  --out DIR            results directory (default bench/results)
  --keep-tmp           keep the temp dir (configs, gateway logs)`);
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
  durationSec: int('duration', 'BENCH_DURATION', 2, 10, 1),
  warmupSec: int('warmup', 'BENCH_WARMUP', 1, 2, 0),
  rounds: int('rounds', 'BENCH_ROUNDS', 1, 3, 1),
  pool: int('pool', 'BENCH_POOL', 500, 5000, 2),
  threads: int('threads', 'BENCH_THREADS', 1, 1, 1),
  tool: argv.tool ?? process.env.BENCH_TOOL ?? 'auto',
  only: (argv.only ?? process.env.BENCH_ONLY ?? '').split(',').map((s) => s.trim()).filter(Boolean),
  outDir: path.resolve(argv.out ?? path.join(HERE, 'results')),
};

// ---------------------------------------------------------------------------------------------
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? '—' : x.toFixed(d));
const fmtInt = (x) => (x === null || x === undefined ? '—' : Math.round(x).toLocaleString('en-US'));
const rotate = (xs, k) => xs.slice(k % xs.length).concat(xs.slice(0, k % xs.length));

async function main() {
  installCleanup();
  const { tool, version: toolVersion } = chooseTool(opts.tool);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cdf-gw-bench-'));
  if (!argv['keep-tmp']) onCleanup(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const problems = [];
  const startedAt = new Date();
  const loadavgAtStart = os.loadavg();

  console.log(`# cdf-auth-gateway benchmark${quick ? ' (quick)' : ''}`);
  console.log(`load tool: ${toolVersion}${tool === 'wrk' ? ` (${opts.threads} thread${opts.threads > 1 ? 's' : ''})` : ' (in the runner process)'}; ` +
    `${opts.connections} connections, ${opts.durationSec} s per run after ${opts.warmupSec} s warm-up, ${opts.rounds} round(s)`);
  console.log(`node ${process.version}, ${os.cpus().length} CPU(s) ${os.cpus()[0]?.model ?? ''}, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  if (os.loadavg()[0] > os.cpus().length * 0.5) {
    console.log(`warning: the machine is busy (1-min load ${os.loadavg()[0].toFixed(2)} on ${os.cpus().length} CPUs): absolute figures will be noisy; compare the ratios`);
  }
  if (tool !== 'wrk') console.log('note: autocannon records latency in whole milliseconds; install wrk for microsecond percentiles');

  // Issuer (JWKS served from this process: the gateway fetches it once) and tokens.
  const issuer = await startIssuer();
  onCleanup(() => issuer.close());
  const t0 = Date.now();
  const token = await issuer.mint(0);
  const badToken = await issuer.badSignature();
  const pool = await issuer.mintMany(opts.pool, { offset: 1_000_000 });
  console.log(`minted ${opts.pool + 2} RS256 tokens in ${((Date.now() - t0) / 1000).toFixed(1)} s (token ${token.length} bytes)`);

  // Baselines.
  const upstream = await startHelper(path.join(HERE, 'upstream.mjs'));
  const upstreamUrl = `http://127.0.0.1:${upstream.port}`;
  const bare = await startHelper(path.join(HERE, 'bare-proxy.mjs'), { UPSTREAM_URL: upstreamUrl, PROXY_PREFIX: API_PREFIX.replace(/\/$/, '') });
  const expectedBody = await (await fetch(`${upstreamUrl}${API_PATH}`)).text();

  // Gateways under test, one process per configuration.
  // `bare` always runs; `bare-pool` (the same-load baseline of the pool rows) runs whenever a
  // pool row does.
  const POOL_ROWS = ['gw-pool-nocache', 'gw-pool-cache', 'gw-pool-churn'];
  const want = (id) => !opts.only.length || opts.only.includes(id) || id === 'bare' ||
    (id === 'bare-pool' && POOL_ROWS.some((r) => opts.only.includes(r)));
  const gwSpecs = [
    { name: 'gw-cache', cacheSize: 10000, for: ['gw-cached', 'gw-pool-cache', 'gw-401'] },
    { name: 'gw-nocache', cacheSize: 0, for: ['gw-nocache', 'gw-pool-nocache'] },
    { name: 'gw-churn', cacheSize: Math.max(1, Math.floor(opts.pool / 2)), for: ['gw-pool-churn'] },
    { name: 'gw-accesslog', cacheSize: 10000, logLevel: 'info', accessLog: true, discardStdout: true, for: ['gw-cached-accesslog'] },
  ];
  const gateways = {};
  const gwErrors = {};
  const built = gatewayBuilt();
  if (!built) problems.push(`gateway not built: ${path.relative(process.cwd(), GATEWAY_MAIN)} is missing (run \`npm run build\`); gateway rows skipped`);
  for (const spec of gwSpecs) {
    if (!built || !spec.for.some(want)) continue;
    try {
      gateways[spec.name] = await startGateway({
        name: spec.name, dir: tmp, issuer: issuer.issuer, jwksUri: issuer.jwksUri, upstreamUrl,
        cacheSize: spec.cacheSize, logLevel: spec.logLevel, accessLog: spec.accessLog, discardStdout: spec.discardStdout,
        // As shipped (Dockerfile, Helm chart, deploy/): the V8 heap capped at 128 MB.
        nodeArgs: ['--max-old-space-size=128'],
      });
    } catch (err) {
      gwErrors[spec.name] = err.message;
      problems.push(`${spec.name}: ${err.message}`);
    }
  }

  const gwTarget = (id, gwName, label, extra) => ({
    id, label, proc: gateways[gwName], gwName,
    url: gateways[gwName] ? `${gateways[gwName].url}${API_PATH}` : null,
    skip: !built ? 'gateway not built' : gwErrors[gwName] ? `${gwName} did not start` : null,
    ...extra,
  });
  const half = Math.max(1, Math.floor(opts.pool / 2));
  let targets = [
    { id: 'upstream', label: 'upstream direct (node:http)', proc: upstream, url: `${upstreamUrl}${API_PATH}`, expect: 200 },
    { id: 'bare', label: 'bare proxy (Fastify + @fastify/http-proxy, no auth)', proc: bare, url: `http://127.0.0.1:${bare.port}${API_PATH}`, expect: 200 },
    // The pool rows' same-load baseline: the bare proxy driven by the same token-rotating load
    // (the per-request Lua / setupRequest work of the load generator, and the same request
    // bytes); the bare proxy ignores the Authorization header.
    { id: 'bare-pool', label: `bare proxy, same ${opts.pool}-token rotation as the pool rows (header ignored)`, proc: bare, url: `http://127.0.0.1:${bare.port}${API_PATH}`, tokens: pool, expect: 200 },
    gwTarget('gw-cached', 'gw-cache', 'gateway, one valid token, cache on', { token, expect: 200 }),
    gwTarget('gw-nocache', 'gw-nocache', 'gateway, one valid token, cache off (every request fully verified)', { token, expect: 200 }),
    gwTarget('gw-pool-nocache', 'gw-nocache', `gateway, ${opts.pool} distinct tokens, cache off (every request verified)`, { tokens: pool, expect: 200, baseline: 'bare-pool' }),
    gwTarget('gw-pool-cache', 'gw-cache', `gateway, same ${opts.pool} tokens, cache on (hits after first pass)`, { tokens: pool, expect: 200, baseline: 'bare-pool' }),
    gwTarget('gw-pool-churn', 'gw-churn', `gateway, same ${opts.pool} tokens, cacheSize ${half} (every lookup misses)`, { tokens: pool, expect: 200, baseline: 'bare-pool' }),
    gwTarget('gw-401', 'gw-cache', 'gateway, bad signature → 401', { token: badToken, expect: 401 }),
    gwTarget('gw-cached-accesslog', 'gw-accesslog', 'gateway, one valid token, cache on, access log on (info → /dev/null)', { token, expect: 200 }),
  ].filter((t) => want(t.id));
  for (const t of targets) { t.runs = []; t.problems = []; }

  // Preflight: one request per target; a target answering the wrong thing is not measured.
  for (const t of targets) {
    if (t.skip) continue;
    const auth = t.token ?? t.tokens?.[0];
    try {
      const res = await fetch(t.url, { headers: auth ? { authorization: `Bearer ${auth}` } : {}, signal: AbortSignal.timeout(5000) });
      const body = await res.text();
      if (res.status !== t.expect) {
        t.skip = `preflight: expected ${t.expect}, got ${res.status} ${body.slice(0, 200)}`;
      } else if (t.expect === 200 && body !== expectedBody) {
        t.problems.push(`preflight: body differs from the upstream's (${body.length} vs ${expectedBody.length} bytes)`);
      } else if (t.expect === 401) {
        const www = res.headers.get('www-authenticate') ?? '';
        if (!/^Bearer\b/i.test(www) || !/invalid_token/.test(www)) t.problems.push(`preflight: 401 without WWW-Authenticate: Bearer error="invalid_token" (got ${JSON.stringify(www)})`);
        try {
          const j = JSON.parse(body);
          if (j?.error?.code !== 401 || typeof j?.error?.message !== 'string') throw new Error();
        } catch { t.problems.push(`preflight: 401 body is not CDF-shaped: ${body.slice(0, 200)}`); }
      }
    } catch (err) {
      t.skip = `preflight failed: ${err?.cause?.code ?? err.message}`;
    }
    if (t.skip) problems.push(`${t.id}: ${t.skip}`);
    for (const p of t.problems) problems.push(`${t.id}: ${p}`);
  }

  const live = targets.filter((t) => !t.skip);
  const perRun = opts.warmupSec + opts.durationSec + 0.5;
  console.log(`targets: ${live.map((t) => t.id).join(', ')}${targets.length > live.length ? ` (skipped: ${targets.filter((t) => t.skip).map((t) => t.id).join(', ')})` : ''}`);
  console.log(`estimated time: ~${Math.ceil((live.length * opts.rounds * perRun) / 60)} min\n`);

  // Rounds in rotating order: round r starts at target r.
  for (let r = 0; r < opts.rounds; r++) {
    for (const t of rotate(live, r)) {
      if (isStopping()) throw new Error('interrupted: no results written');
      if (!isRunning(t.proc.child)) {
        const msg = `round ${r + 1}: process of ${t.id} has exited (${t.proc.child.exitCode ?? t.proc.child.signalCode})`;
        t.problems.push(msg);
        continue;
      }
      const load = {
        tool, url: t.url, connections: opts.connections, threads: opts.threads,
        token: t.token, tokens: t.tokens, workDir: tmp,
      };
      try {
        if (opts.warmupSec > 0) await runLoad({ ...load, durationSec: opts.warmupSec });
        const res = await runLoad({ ...load, durationSec: opts.durationSec });
        const errs = Object.values(res.errors).reduce((a, b) => a + (b || 0), 0);
        const badStatus = t.expect === 200 ? res.statusErrors : res.requests - res.statusErrors;
        res.round = r + 1;
        t.runs.push(res);
        if (badStatus) t.problems.push(`round ${r + 1}: ${badStatus} of ${res.requests} responses had an unexpected status`);
        if (errs) t.problems.push(`round ${r + 1}: socket errors ${JSON.stringify(res.errors)}`);
        console.log(`round ${r + 1}/${opts.rounds}  ${t.id.padEnd(20)} ${fmtInt(res.rps).padStart(8)} req/s  p50 ${fmt(res.p50Ms).padStart(7)} ms  p99 ${fmt(res.p99Ms).padStart(7)} ms${badStatus || errs ? '  (!)' : ''}`);
      } catch (err) {
        t.problems.push(`round ${r + 1}: ${err.message}`);
        console.log(`round ${r + 1}/${opts.rounds}  ${t.id.padEnd(20)} failed: ${err.message}`);
      }
    }
  }

  if (isStopping()) throw new Error('interrupted: no results written');

  // Medians and ratios to the bare proxy of the same run.
  for (const t of targets) {
    if (!t.runs.length) { t.median = null; continue; }
    t.median = {
      rps: median(t.runs.map((x) => x.rps)),
      p50Ms: median(t.runs.map((x) => x.p50Ms)),
      p99Ms: median(t.runs.map((x) => x.p99Ms)),
    };
  }
  // Every row against `bare` (the fixed-request bare proxy), and against its same-load
  // baseline: `bare-pool` for the token-rotating rows, `bare` for the others.
  const ratioTo = (m, b) => (m && b ? { rps: m.rps / b.rps, p50: m.p50Ms / b.p50Ms, p99: m.p99Ms / b.p99Ms } : null);
  const medianOf = (id) => targets.find((t) => t.id === id)?.median ?? null;
  for (const t of targets) {
    t.baseline = t.baseline ?? 'bare';
    t.ratio = ratioTo(t.median, medianOf('bare'));
    t.ratioBase = ratioTo(t.median, medianOf(t.baseline));
  }
  for (const t of targets) for (const p of t.problems) if (!problems.includes(`${t.id}: ${p}`)) problems.push(`${t.id}: ${p}`);

  // Gateway-side observations worth reporting (log volume, crashes).
  const gwInfo = {};
  for (const [name, gw] of Object.entries(gateways)) {
    let outBytes = null;
    try { outBytes = gw.outPath === '/dev/null' ? null : fs.statSync(gw.outPath).size; } catch { /* none */ }
    let errBytes = null;
    try { errBytes = fs.statSync(gw.errPath).size; } catch { /* none */ }
    gwInfo[name] = { pid: gw.pid, running: gw.running(), stdoutBytes: outBytes, stderrBytes: errBytes };
    if (!gw.running()) problems.push(`${name} exited during the run:\n${gw.tail()}`);
    else if (errBytes) problems.push(`${name} wrote ${errBytes} bytes to stderr:\n${gw.tail(1000)}`);
  }

  // Report.
  const lines = [];
  lines.push(`| target | req/s | × bare | same-load baseline | × baseline | p50 ms | × baseline | p99 ms | × baseline | runs |`);
  lines.push(`|---|---:|---:|---|---:|---:|---:|---:|---:|---:|`);
  for (const t of targets) {
    const m = t.median;
    const x = t.ratio;
    const y = t.ratioBase;
    lines.push(`| ${t.id}: ${t.label} | ${m ? fmtInt(m.rps) : '—'} | ${x ? fmt(x.rps) : '—'} | ${t.baseline} | ${y ? fmt(y.rps) : '—'} | ${m ? fmt(m.p50Ms) : '—'} | ${y ? fmt(y.p50) : '—'} | ${m ? fmt(m.p99Ms) : '—'} | ${y ? fmt(y.p99) : '—'} | ${t.runs.length}${t.skip ? ` (skipped: ${t.skip.split('\n')[0].slice(0, 80)})` : ''} |`);
  }
  console.log(`\n## Results: medians of ${opts.rounds} round(s); ratios are target ÷ baseline (req/s: higher is better; latency: lower is better)\n`);
  console.log('× bare: against the bare proxy driven with one fixed request. × baseline: against the bare proxy under the same load');
  console.log('(bare-pool, driven with the same token rotation, for the gw-pool-* rows; bare for the others). See bench/README.md.\n');
  console.log(`load tool: ${toolVersion}, ${opts.connections} connections, ${opts.durationSec} s per run\n`);
  console.log(lines.join('\n'));
  if (problems.length) {
    console.log('\n## Problems');
    for (const p of problems) console.log(`- ${p}`);
  }

  const finishedAt = new Date();
  const result = {
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    tool: { name: tool, version: toolVersion, threads: tool === 'wrk' ? opts.threads : null },
    options: { ...opts, outDir: undefined },
    machine: { node: process.version, loadavgAtStart, platform: `${os.platform()} ${os.release()}`, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? null, loadavgAtEnd: os.loadavg() },
    issuer: { jwksFetches: issuer.jwksHits(), tokenBytes: token.length },
    gateways: gwInfo,
    baseline: 'bare',
    targets: targets.map((t) => ({
      id: t.id, label: t.label, expectStatus: t.expect, process: t.gwName ?? (t.id === 'bare-pool' ? 'bare' : t.id),
      skipped: t.skip ?? null, median: t.median, ratioToBare: t.ratio,
      baseline: t.baseline, ratioToBaseline: t.ratioBase, runs: t.runs, problems: t.problems,
    })),
    problems,
  };
  fs.mkdirSync(opts.outDir, { recursive: true });
  const file = path.join(opts.outDir, `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  console.log(`\nJSON: ${path.relative(process.cwd(), file) || file}`);
  if (argv['keep-tmp']) console.log(`temp dir kept: ${tmp}`);

  const failed = targets.some((t) => t.skip || !t.runs.length);
  return failed ? 1 : 0;
}

await runMain(main);
