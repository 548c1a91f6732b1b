#!/usr/bin/env node
// What tracing costs, off and on (npm run build first):
//
//   node --expose-gc bench/tracing.mjs [--requests 20000] [--builds dist/main.js,/other/dist/main.js]
//
// 1. In process: the call-site guard every traced call pays when tracing is off (an
//    AsyncLocalStorage read and a null check), in ns per call and bytes allocated per call.
// 2. Gateway CPU per request, read from /proc/<pid>/stat (user + system time of the gateway
//    process alone, so load-generator noise stays out): tracing off, and on with every request
//    sampled (spans exported to a local stand-in collector in its own process). Further builds given with
//    --builds (e.g. one without the observability changes) run tracing off for comparison.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { installCleanup, runMain, startHelper, startProcess, stopChild, freePort, waitForHttp200, NODE } from './lib/proc.mjs';
import { startIssuer } from './lib/issuer.mjs';
import { GATEWAY_MAIN, REPO, gatewayConfigYaml, API_PATH } from './lib/gateway.mjs';

const { values: argv } = parseArgs({ options: { requests: { type: 'string', default: '20000' }, builds: { type: 'string' } } });
const REQUESTS = Number(argv.requests);
const HERE = path.dirname(new URL(import.meta.url).pathname);

async function guardCost() {
  const { activeSpan, withSpan } = await import(path.join(REPO, 'dist/tracing.js'));
  const { runInRequest } = await import(path.join(REPO, 'dist/request/context.js'));
  const N = 2_000_000;
  const work = () => 1;
  let sink = 0;
  return runInRequest({ id: 'bench', span: null, tracing: null }, () => {
    const loop = () => { for (let i = 0; i < N; i++) sink += activeSpan() === null ? work() : 0; };
    loop(); // warm up
    globalThis.gc?.();
    const heap0 = process.memoryUsage().heapUsed;
    const t0 = process.hrtime.bigint();
    loop();
    const ns = Number(process.hrtime.bigint() - t0) / N;
    const bytes = (process.memoryUsage().heapUsed - heap0) / N;
    void withSpan; void sink;
    return { ns, bytes };
  });
}

function cpuSeconds(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in clock ticks (USER_HZ = 100 on Linux)
}

async function gatewayCpu(main, name, extraYaml, issuer, upstreamUrl, tokens) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdf-gw-tracing-'));
  const port = await freePort();
  const adminPort = await freePort();
  const configPath = path.join(dir, 'gw.yaml');
  fs.writeFileSync(configPath, gatewayConfigYaml({ port, adminPort, issuer: issuer.issuer, jwksUri: issuer.jwksUri, upstreamUrl }) + extraYaml);
  const child = startProcess(NODE, ['--max-old-space-size=128', main, '--config', configPath], { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForHttp200(`http://127.0.0.1:${adminPort}/readyz`, { child });
  const url = `http://127.0.0.1:${port}${API_PATH}`;
  const run = (amount) => new Promise((resolve, reject) => {
    let i = 0;
    autocannon({ url, connections: 20, amount, requests: [{ setupRequest: (r) => ({ ...r, headers: { authorization: `Bearer ${tokens[i++ % tokens.length]}` } }) }] },
      (err, res) => (err ? reject(err) : resolve(res)));
  });
  await run(2000); // warm up (JIT, token cache, pools)
  const c0 = cpuSeconds(child.pid);
  const res = await run(REQUESTS);
  const us = ((cpuSeconds(child.pid) - c0) * 1e6) / REQUESTS;
  await stopChild(child);
  return { name, us, non2xx: res.non2xx, errors: res.errors };
}

async function main() {
  installCleanup();
  const guard = await guardCost();
  console.log(`tracing off, call-site guard: ${guard.ns.toFixed(1)} ns/call, ${guard.bytes.toFixed(3)} bytes allocated/call`);
  const issuer = await startIssuer();
  const upstream = await startHelper(path.join(HERE, 'upstream.mjs'));
  const upstreamUrl = `http://127.0.0.1:${upstream.port}`;
  const tokens = await issuer.mintMany(100);
  // Spans go to the upstream helper (its own process; it answers 200 to anything, as a collector would).
  const onYaml = `tracing: ${JSON.stringify({ otlpEndpoint: upstreamUrl, sampleRatio: 1 })}\n`;
  const rows = [];
  for (let round = 0; round < 2; round++) {
    rows.push(await gatewayCpu(GATEWAY_MAIN, 'tracing off', '', issuer, upstreamUrl, tokens));
    rows.push(await gatewayCpu(GATEWAY_MAIN, 'tracing on, all sampled', onYaml, issuer, upstreamUrl, tokens));
    for (const other of (argv.builds ?? '').split(',').filter(Boolean)) rows.push(await gatewayCpu(path.resolve(other), `${other} (tracing off)`, '', issuer, upstreamUrl, tokens));
  }
  await issuer.close?.();
  console.log(`gateway CPU per request (${REQUESTS} requests, 20 connections, one cached token each of 100; two rounds):`);
  for (const r of rows) console.log(`  ${r.name}: ${r.us.toFixed(1)} µs${r.non2xx || r.errors ? ` (non-2xx ${r.non2xx}, errors ${r.errors})` : ''}`);
  return 0;
}

runMain(main);
