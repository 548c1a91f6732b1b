#!/usr/bin/env node
// Soak: mixed traffic against two gateway replicas sharing Redis while things break.
//
//   node bench/soak.mjs [--minutes 10] [--quick] [--concurrency 8] [--report-every 60]
//
// Traffic (closed loop, `concurrency` workers, replicas alternating): valid bearer tokens (cached),
// first-seen tokens, expired and forged tokens (401), browser sessions logged in through the real
// login flow (development IdP, sessions in Redis, used on both replicas), 256 KB uploads, and
// WebSocket echoes when the build tunnels upgrades. Faults, as shares of the run: the issuer's JWKS
// endpoint refuses connections from 20 % to 35 %, Redis restarts at 45 %, the upstream resets every
// third connection from 60 % to 70 %, and at 80 % both replicas get SIGHUP (a config reload) when
// the build handles it. Every `report-every` seconds: requests, errors by kind, p99, each
// replica's RSS. A request is lost when the contract says it succeeds and it did not; the run
// exits 1 if any was lost or RSS grew by more than 25 % after the first window.
// `--quick`: one minute, reports every 10 s (for checking the soak itself).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { installCleanup, onCleanup, runMain, startProcess, stopChild, freePort, waitForHttp200, isRunning, NODE } from './lib/proc.mjs';
import { GATEWAY_MAIN, REPO, gatewayBuilt } from './lib/gateway.mjs';
import { AUDIENCE, startIssuer, startRedis, startUpstream } from './soak/parts.mjs';
import { login } from './soak/browser.mjs';
import { faultWindows, Recorder } from './soak/report.mjs';

const { values: argv } = parseArgs({ options: {
  minutes: { type: 'string' }, quick: { type: 'boolean', default: false },
  concurrency: { type: 'string', default: '8' }, 'report-every': { type: 'string' }, help: { type: 'boolean', short: 'h', default: false },
} });
if (argv.help) { console.log('usage: node bench/soak.mjs [--minutes N (default 10)] [--quick] [--concurrency 8] [--report-every S]'); process.exit(0); }
const minutes = Number(argv.minutes ?? (argv.quick ? 1 : 10));
const reportEvery = Number(argv['report-every'] ?? (argv.quick || minutes <= 2 ? 10 : 60));
const concurrency = Number(argv.concurrency);
if (!(minutes > 0) || !(reportEvery > 0) || !(concurrency >= 1)) { console.error('bad arguments'); process.exit(2); }

const UPLOAD = randomBytes(256 * 1024);
const PROJECT = 'demo';
const API = '/api/v1/assets';

function gatewayYaml({ port, adminPort, publicUrl, issuer, idpPort, redisUrl, upstreamUrl, secrets }) {
  return `server: { host: 127.0.0.1, port: ${port}, publicUrl: "${publicUrl}", shutdownTimeoutMs: 3000 }
admin: { host: 127.0.0.1, port: ${adminPort} }
log: { level: info, accessLog: false }
issuers:
  - { issuer: "${issuer.issuer}", jwksUri: "${issuer.jwksUri}", audiences: ["${AUDIENCE}"] }
  - { issuer: "http://localhost:${idpPort}", jwksUri: "http://127.0.0.1:${idpPort}/jwks", audiences: ["https://cdf.example"] }
tokens: { jwksCooldownMs: 5000 }
login:
  cookieSecret: "${secrets.cookie}"
  sessionStore: redis
  redis: { url: "${redisUrl}" }
  projects:
    ${PROJECT}:
      issuer: "http://localhost:${idpPort}"
      clientId: gateway
      clientSecret: "${secrets.login}"
      scopes: [openid, profile, email, offline_access, user_impersonation]
      resource: "https://cdf.example"
      authorizationParams: { prompt: consent }
upstreams:
  app: { url: "${upstreamUrl}", credentials: { type: user-token } }
routes:
  - { prefix: /api/, upstream: app, login: ${PROJECT}, allow: [{ groups: [readers] }] }
`;
}

async function startReplica(name, dir, cfg) {
  const configPath = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(configPath, gatewayYaml(cfg));
  const log = fs.openSync(path.join(dir, `${name}.log`), 'w');
  const child = startProcess(NODE, ['--max-old-space-size=128', GATEWAY_MAIN, '--config', configPath], {
    cwd: REPO, stdio: ['ignore', log, log], env: { ...process.env, NODE_ENV: 'production' },
  });
  fs.closeSync(log);
  await waitForHttp200(`http://127.0.0.1:${cfg.adminPort}/readyz`, { child, timeoutMs: 30000 });
  return { name, child, url: `http://127.0.0.1:${cfg.port}`, logPath: path.join(dir, `${name}.log`) };
}

function rssMb(pid) {
  try { return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024; } catch { return NaN; }
}

async function main() {
  installCleanup();
  if (!gatewayBuilt()) { console.error(`${GATEWAY_MAIN} missing: npm run build`); return 2; }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdf-gw-soak-'));
  const issuer = await startIssuer();
  const upstream = await startUpstream();
  const redis = await startRedis(dir);
  onCleanup(() => { issuer.close(); upstream.close(); return redis.stop(); });
  const [portA, portB, adminA, adminB, idpPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const publicUrl = `http://127.0.0.1:${portA}`;
  const secrets = { cookie: randomBytes(32).toString('base64url'), login: randomBytes(16).toString('hex') };
  const { startIdp } = await import('../demo/idp.mjs');
  const idp = await startIdp({ port: idpPort, redirectUri: `${publicUrl}/auth/callback`, postLogoutRedirectUris: [publicUrl],
    gatewaySecret: secrets.login, svcSecret: randomBytes(16).toString('hex') });
  onCleanup(() => idp.close());
  const common = { publicUrl, issuer, idpPort, redisUrl: redis.url, upstreamUrl: upstream.url, secrets };
  const replicas = [
    await startReplica('gw-a', dir, { ...common, port: portA, adminPort: adminA }),
    await startReplica('gw-b', dir, { ...common, port: portB, adminPort: adminB }),
  ];
  onCleanup(() => Promise.all(replicas.map((r) => stopChild(r.child))));
  const reloadable = fs.readFileSync(GATEWAY_MAIN, 'utf8').includes('SIGHUP');

  // Sessions: logged in through replica A, used on both (the session lives in Redis).
  const sessions = [];
  for (const user of ['alice', 'bob', 'alice', 'bob']) sessions.push(await login(publicUrl, PROJECT, user, API));
  const pool = await Promise.all(Array.from({ length: 200 }, () => issuer.valid()));
  const expired = await Promise.all(Array.from({ length: 20 }, () => issuer.expired()));
  const forged = await Promise.all(Array.from({ length: 20 }, () => issuer.forged()));
  const ws = await webSocketClient(replicas[0].url, pool[0]);

  const totalMs = minutes * 60_000;
  const windows = faultWindows(totalMs);
  const rec = new Recorder(windows);
  const started = Date.now();
  const now = () => Date.now() - started;
  const pick = (a) => a[Math.floor(Math.random() * a.length)];
  console.log(`soak: ${minutes} min, ${concurrency} workers, replicas ${replicas.map((r) => r.url).join(' ')}, redis ${redis.url}, ` +
    `websockets ${ws ? 'on' : 'off (this build does not tunnel upgrades)'}, reload ${reloadable ? 'on' : 'off (SIGHUP not handled by this build)'}; logs in ${dir}`);

  // The kinds of request: what they send and what the contract says they get.
  const kinds = {
    valid: { weight: 40, run: (u) => get(u, { authorization: `Bearer ${pick(pool)}` }), expect: 200 },
    firstSeen: { weight: 10, run: async (u) => get(u, { authorization: `Bearer ${await issuer.valid()}` }), expect: 200 },
    expired: { weight: 8, run: (u) => get(u, { authorization: `Bearer ${pick(expired)}` }), expect: 401 },
    forged: { weight: 8, run: (u) => get(u, { authorization: `Bearer ${pick(forged)}` }), expect: 401 },
    session: { weight: 20, run: (u) => get(u, { cookie: pick(sessions).header(new URL(u)) }), expect: 200 },
    upload: { weight: 8, run: (u) => upload(u, pick(pool)), expect: 200 },
    ...(ws ? { websocket: { weight: 6, run: (u) => ws(u.replace(API, '/api/ws')), expect: 101 } } : {}),
  };
  const table = Object.entries(kinds).flatMap(([k, v]) => Array(v.weight).fill(k));

  // Faults on their schedule.
  const timers = [
    at(windows.jwks[0], () => issuer.down()), at(windows.jwks[1], () => issuer.up()),
    at(windows.redis[0], () => redis.restart()),
    at(windows.resets[0], () => upstream.resets(3)), at(windows.resets[1], () => upstream.resets(0)),
    ...(reloadable ? [at(windows.reload[0], () => replicas.forEach((r) => r.child.kill('SIGHUP')))] : []),
  ];
  let lastReport = 0;
  const reporter = setInterval(() => report(), reportEvery * 1000);
  function report() {
    if (now() - lastReport < 1000) return; // the final call right after a scheduled one
    lastReport = now();
    console.log(rec.window(lastReport, replicas.map((r) => rssMb(r.child.pid))));
  }

  let turn = 0;
  async function worker() {
    while (now() < totalMs) {
      const kind = pick(table);
      const replica = replicas[turn++ % 2];
      if (!isRunning(replica.child)) { rec.result(now(), kind, 'replica-exited', 0, false); await new Promise((r) => setTimeout(r, 100)); continue; }
      const t0 = performance.now();
      let outcome;
      try { outcome = await kinds[kind].run(replica.url + API); } catch (e) { outcome = e.cause?.code ?? e.name ?? 'error'; }
      rec.result(now(), kind, outcome, performance.now() - t0, outcome === kinds[kind].expect);
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  clearInterval(reporter);
  timers.forEach(clearTimeout);
  report();
  const logs = replicas.map((r) => ({ name: r.name, ...countLevels(r.logPath) }));
  const { lost, text } = rec.summary(logs);
  console.log(text);
  return lost ? 1 : 0;
}

function at(ms, fn) { return setTimeout(() => { Promise.resolve(fn()).catch((e) => console.error(`fault: ${e.message}`)); }, ms); }

async function get(url, headers) {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
  await res.arrayBuffer();
  return res.status;
}

async function upload(url, token) {
  const res = await fetch(url, { method: 'POST', body: UPLOAD, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' }, signal: AbortSignal.timeout(10_000) });
  const body = await res.text();
  if (res.status === 200 && JSON.parse(body).bytes !== UPLOAD.length) return 'truncated';
  return res.status;
}

/** A WebSocket round trip through the gateway, or null when this build does not tunnel upgrades. */
async function webSocketClient(base, token) {
  let WebSocket;
  try { ({ WebSocket } = await import('ws')); } catch { return null; }
  const roundTrip = (url) => new Promise((resolve) => {
    const sock = new WebSocket(url.replace(/^http/, 'ws'), { headers: { authorization: `Bearer ${token}` }, handshakeTimeout: 5000 });
    sock.on('open', () => sock.send('ping'));
    sock.on('message', () => { sock.close(); resolve(101); });
    sock.on('unexpected-response', (_req, res) => { res.resume(); resolve(res.statusCode); });
    sock.on('error', (e) => resolve(e.code ?? 'ws-error'));
  });
  return (await roundTrip(`${base}/api/ws`)) === 101 ? roundTrip : null;
}

function countLevels(file) {
  const counts = { warn: 0, error: 0 };
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /"level":(\d+)/.exec(line);
    if (m && Number(m[1]) === 40) counts.warn++;
    if (m && Number(m[1]) >= 50) counts.error++;
  }
  return counts;
}

runMain(main);
