// The gateway's own per-request work on the repeated-token path, each piece timed alone in a
// tight loop (process CPU per call): what the request path would cost if nothing else competed
// for the caches. Set against the bench's in-place figures (bench/README.md, "Where the time
// goes"), it shows how much more the same code costs inside a proxied request.
//
//   taskset -c 0 node bench/pieces.mjs [--calls 200000]
//
// Uses the built gateway (dist/) and the bench issuer's cached token (bench/results/.tokens).
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startIssuer } from './lib/issuer.mjs';
import { gatewayConfigYaml, API_PATH } from './lib/gateway.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const dist = (p) => import(pathToFileURL(path.join(HERE, '..', 'dist', p)).href);
const { values: argv } = parseArgs({ options: { calls: { type: 'string', default: '200000' } } });
const CALLS = Number(argv.calls);

const { parseConfig } = await dist('config/load.js');
const { buildState } = await dist('state.js');
const { digest } = await dist('token/digest.js');
const { decide } = await dist('pipeline/decide.js');
const { createMetrics } = await dist('metrics.js');
const { createLoggers, accessLineJson } = await dist('log.js');
const { upstreamRequestHeaders, clientResponseHeaders } = await dist('upstream/headers.js');
const { requestId } = await dist('request/id.js');
const { systemClock } = await dist('clock.js');

const issuer = await startIssuer({ cacheDir: path.join(HERE, 'results', '.tokens') });
try {
  const token = await issuer.mint(0);
  const cfg = parseConfig(gatewayConfigYaml({ port: 1, adminPort: 2, issuer: issuer.issuer, jwksUri: issuer.jwksUri, upstreamUrl: 'http://127.0.0.1:9' }), { env: {} });
  const metrics = createMetrics();
  const { logger } = createLoggers({ level: 'warn' });
  const state = buildState(cfg, { clock: systemClock, logger, metrics });
  const headers = { host: '127.0.0.1:8080', authorization: `Bearer ${token}` };
  const rawHeaders = ['Host', '127.0.0.1:8080', 'Authorization', `Bearer ${token}`];
  const ask = { entry: 'proxy', method: 'GET', target: API_PATH, headers, rawHeaders, httpVersion: '1.1', loginReturn: API_PATH };
  let d = decide(state, ask); // the first decision fetches the keys and verifies the token
  if (d instanceof Promise) d = await d;
  if (!d.ok) throw new Error(`the bench token was refused: ${d.error.message}`);

  const forward = { peer: '127.0.0.1', proto: 'http', fromTrustedProxy: false, principal: d.principal, credential: d.credential, upstreamHost: '127.0.0.1:9' };
  const upstreamResponse = { 'content-type': 'application/json', 'content-length': '391', date: 'Sat, 05 Dec 2026 03:00:00 GMT', connection: 'keep-alive', 'keep-alive': 'timeout=72' };
  const line = { requestId: requestId({ headers: {} }), ip: '127.0.0.1', method: 'GET', path: API_PATH, route: 'r0', decision: 'allow', reason: null, sub: d.principal.sub, status: 200, ms: 1.23 };
  const pieces = [
    ['decision (cached token: host, target, route, bearer, digest, cache, policy, credential)', () => decide(state, ask)],
    ['  of which: SHA-256 of the token (cache key)', () => digest(token)],
    ['upstream request headers', () => upstreamRequestHeaders(headers, forward)],
    ['client response headers', () => clientResponseHeaders({ ...upstreamResponse }, null, { redirect: [], session: false })],
    ['request id (made)', () => requestId({ headers: {} })],
    ['metrics (request, duration, upstream latency, in flight ±1)', () => {
      metrics.request('r0', 200, 'allow'); metrics.requestDuration('r0', 200, 0.003); metrics.upstreamLatency('cdf', 200, 0.003);
      metrics.inFlight(1); metrics.inFlight(-1);
    }],
    ['access line (formatted only: joining and writing a batch adds ~0.8 µs a line)', () => accessLineJson(line)],
  ];
  let sink = 0;
  console.log(`node ${process.version}; ${CALLS.toLocaleString('en-US')} calls per piece, after ${(CALLS / 10).toLocaleString('en-US')} unmeasured\n`);
  console.log('| piece | µs per call |\n|---|---:|');
  let total = 0;
  for (const [name, fn] of pieces) {
    for (let i = 0; i < CALLS / 10; i++) sink ^= fn() === undefined ? 0 : 1;
    const before = process.cpuUsage();
    for (let i = 0; i < CALLS; i++) sink ^= fn() === undefined ? 0 : 1;
    const used = process.cpuUsage(before);
    const us = (used.user + used.system) / CALLS;
    if (!name.startsWith(' ')) total += us;
    console.log(`| ${name} | ${us.toFixed(2)} |`);
  }
  console.log(`| **sum** | **${total.toFixed(2)}** |`);
  if (sink === -1) console.log(sink); // keeps the results alive for the optimiser
} finally {
  await issuer.close();
}
process.exit(0);
