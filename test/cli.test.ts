// The CLI as a user runs it: the built dist/main.js (npm test builds first).
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, constants, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startUpstream } from './fixtures/upstream.js';
import { startJwksServer } from './fixtures/jwks-server.js';
import { claims, generateKey, mint } from './fixtures/tokens.js';

const CLI = join(process.cwd(), 'dist/main.js');
const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', ...env } });

const good = {
  issuers: [{ issuer: 'http://127.0.0.1:4000', jwksUri: 'http://127.0.0.1:4000/jwks', audiences: ['https://cdf.example'] }],
  upstreams: { cdf: { url: 'http://127.0.0.1:5000', credentials: { type: 'api-key', value: '${LEGACY_KEY}' } } },
  routes: [{ prefix: '/api/', upstream: 'cdf', allow: [{ groups: ['readers'] }] }],
};

t.test('check accepts a valid config and names every bad key of an invalid one', async (t) => {
  const dir = t.testdir({ 'good.yaml': stringify(good) });
  let r = run(['check', '--config', join(dir, 'good.yaml')], { LEGACY_KEY: 'k'.repeat(20) });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /ok/);
  r = run(['check', '--config', join(dir, 'good.yaml')]);
  t.equal(r.status, 1, 'a missing environment variable is an error');
  t.match(r.stderr, /upstreams\.cdf\.credentials\.value: .*LEGACY_KEY/);
  const bad = {
    ...good,
    tokens: { jwksTimeoutMs: -1 },
    routes: [{ prefix: 'api', upstream: 'nope', alow: [] }],
  };
  writeFileSync(join(dir, 'bad.yaml'), stringify(bad));
  r = run(['check', '-c', join(dir, 'bad.yaml')], { LEGACY_KEY: 'k'.repeat(20) });
  t.equal(r.status, 1);
  for (const path of ['tokens.jwksTimeoutMs', 'routes[0].prefix', 'routes[0].upstream', 'routes[0].alow']) {
    t.match(r.stderr, path, `names ${path}`);
  }
  r = run(['--config', join(dir, 'bad.yaml')], { LEGACY_KEY: 'k'.repeat(20) });
  t.equal(r.status, 1, 'the server refuses to start on a bad config');
  t.match(r.stderr, /routes\[0\]\.upstream/);
  r = run(['check', '--config', join(dir, 'missing.yaml')]);
  t.not(r.status, 0);
  r = run(['frobnicate']);
  t.equal(r.status, 2);
});

t.test('runs, serves, and drains in-flight requests on SIGTERM', async (t) => {
  const key = await generateKey('RS256', 'k1');
  const jwks = await startJwksServer({ keys: [key.jwk] });
  // The upstream holds its answer until the gateway has begun draining: the request is in flight
  // at SIGTERM by construction, not by timing.
  let arrived!: () => void;
  const inUpstream = new Promise<void>((r) => { arrived = r; });
  let draining!: () => void;
  const drainStarted = new Promise<void>((r) => { draining = r; });
  const up = await startUpstream(async (_req, res) => {
    arrived();
    await drainStarted;
    res.writeHead(200);
    res.end('done');
  });
  t.teardown(async () => { await up.close(); await jwks.close(); });
  const dir = t.testdir({});
  const cfg = {
    server: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    issuers: [{ issuer: jwks.issuer, jwksUri: jwks.jwksUri, audiences: ['https://cdf.test'] }],
    upstreams: { app: { url: up.url, credentials: { type: 'user-token' } } },
    routes: [{ prefix: '/', upstream: 'app', allow: [{}] }],
  };
  writeFileSync(join(dir, 'gw.yaml'), stringify(cfg));
  const child = spawn(process.execPath, [CLI, '--config', join(dir, 'gw.yaml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => { child.kill('SIGKILL'); });
  let out = '';
  const listening = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out);
      if (m) resolve(m[1]!);
      if (out.includes('shutting down: draining in-flight requests')) draining();
    });
    child.on('exit', () => { draining(); reject(new Error('exited early: ' + out)); });
  });
  const url = await listening;
  // The CLI re-executed itself with glibc's trim threshold (src/runtime-tuning.ts), in place: the
  // pid this test signals below is the gateway's.
  if (process.platform === 'linux' && typeof (process as { execve?: unknown }).execve === 'function' && process.env.MALLOC_TRIM_THRESHOLD_ === undefined) {
    const environ = readFileSync(`/proc/${child.pid}/environ`, 'latin1').split('\0');
    t.ok(environ.includes('MALLOC_TRIM_THRESHOLD_=131072'), 'the running gateway has the threshold');
  }
  const token = await mint(claims(jwks.issuer, 'https://cdf.test', Date.now()), { key });
  const inflight = fetch(url + '/slow', { headers: { authorization: `Bearer ${token}` } });
  await inUpstream;
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  child.kill('SIGTERM');
  const res = await inflight;
  t.equal(res.status, 200, 'the in-flight request completed');
  t.equal(await res.text(), 'done');
  t.equal(await exited, 0, 'clean exit after draining');
  t.notMatch(out, token, 'the token never reached the log');
  // Access lines are buffered (4 KiB / 1 s); the one written while draining is flushed at exit.
  const access = out.split('\n').filter((l) => l.includes('"msg":"request"')).map((l) => JSON.parse(l) as { path: string; status: number });
  t.same(access.map((a) => [a.path, a.status]), [['/slow', 200]], 'the access line of the drained request was flushed on shutdown');
});

t.test('collected access lines reach stdout whole and in order: the periodic write, then the rest when the process dies of an uncaught exception', async (t) => {
  const script = `
    import { createLoggers } from ${JSON.stringify(join(process.cwd(), 'dist/log.js'))};
    const { writeAccess } = createLoggers({ level: 'info' });
    const line = (path) => ({ method: 'GET', path, route: '-', decision: 'allow', reason: null, sub: null, status: 200, ms: 1 });
    writeAccess(line('/written-within-a-second'));
    setTimeout(() => { writeAccess(line('/before-the-crash')); setImmediate(() => { throw new Error('boom'); }); }, 1500);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  t.not(r.status, 0, 'the process failed');
  const paths = r.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { path: string }).path);
  t.same(paths, ['/written-within-a-second', '/before-the-crash'], 'both lines, in order, each whole');
});

t.test('a collected access line keeps the time its request ended, not the time it was written', async (t) => {
  const script = `
    import { createLoggers } from ${JSON.stringify(join(process.cwd(), 'dist/log.js'))};
    const { writeAccess } = createLoggers({ level: 'info' });
    Date.now = () => Date.UTC(2026, 0, 2, 3, 4, 5, 678);
    writeAccess({ method: 'GET', path: '/ended-then', route: '-', decision: 'allow', reason: null, sub: null, status: 200, ms: 1 });
    Date.now = () => Date.UTC(2026, 0, 2, 3, 9, 0, 0); // written at exit, five minutes "later"
    process.exit(0);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  const line = JSON.parse(r.stdout.trim()) as { time: string; path: string };
  t.same([line.path, line.time], ['/ended-then', '2026-01-02T03:04:05.678Z']);
});

t.test('buffered log lines are written out when the process dies of an uncaught exception', async (t) => {
  const script = `
    import { createLoggers } from ${JSON.stringify(join(process.cwd(), 'dist/log.js'))};
    const { access } = createLoggers({ level: 'info' });
    access.info({ path: '/before-the-crash', status: 200 }, 'request');
    setImmediate(() => { throw new Error('boom'); });`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  t.not(r.status, 0, 'the process failed');
  t.match(r.stderr, /boom/);
  t.match(r.stdout, /"path":"\/before-the-crash"/, 'the buffered line reached stdout');
});

t.test('a stdout nobody reads never stops the gateway; what waited is written once it is read', async (t) => {
  const jwks = await startJwksServer({ keys: [(await generateKey('RS256', 'k1')).jwk] });
  t.teardown(() => jwks.close());
  const dir = t.testdir({});
  writeFileSync(join(dir, 'gw.yaml'), stringify({
    server: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    issuers: [{ issuer: jwks.issuer, jwksUri: jwks.jwksUri, audiences: ['https://cdf.test'] }],
    upstreams: { app: { url: 'http://127.0.0.1:9', credentials: { type: 'user-token' } } },
    routes: [{ prefix: '/app', upstream: 'app', allow: [{}] }],
  }));
  // stdout is a FIFO opened blocking, as a container runtime hands it over; this test holds the
  // read end and reads it only when it says so.
  const fifo = join(dir, 'stdout');
  spawnSync('mkfifo', [fifo]);
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const writer = openSync(fifo, constants.O_WRONLY);
  t.teardown(() => closeSync(reader));
  // env -i: the test runner's loaders, added to every spawned node, would open stdout themselves.
  const child = spawn('env', ['-i', `PATH=${process.env.PATH ?? ''}`, process.execPath, CLI, '--config', join(dir, 'gw.yaml')], { stdio: ['ignore', writer, 'pipe'] });
  closeSync(writer);
  t.teardown(() => { child.kill('SIGKILL'); });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  let out = '';
  const read = (): void => {
    const buf = Buffer.alloc(65536);
    for (;;) {
      try {
        const n = readSync(reader, buf);
        if (n === 0) return;
        out += buf.toString('utf8', 0, n);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return;
        throw err;
      }
    }
  };
  let url: string | undefined;
  for (let i = 0; i < 1000 && url === undefined; i++) {
    read();
    url = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out)?.[1];
    if (url === undefined) await sleep(10);
  }
  t.ok(url, 'listening');
  // ~2,000 access lines of ~250 bytes: eight times what the FIFO holds, and nobody reads.
  let answered = 0;
  for (let i = 0; i < 2000; i++) {
    const res = await fetch(`${url}/nothing/${i}`, { signal: AbortSignal.timeout(5000) });
    await res.arrayBuffer();
    if (res.status === 404) answered++;
  }
  t.equal(answered, 2000, 'every request answered while stdout was full');
  const lines = () => out.split('\n').filter((l) => l.includes('"msg":"request"'));
  for (let i = 0; i < 1000 && lines().length < 2000; i++) { read(); await sleep(10); }
  const paths = lines().map((l) => (JSON.parse(l) as { path: string }).path);
  t.same(paths, Array.from({ length: 2000 }, (_, i) => `/nothing/${i}`), 'then every access line, once, in order');
  t.notMatch(out, 'log lines dropped', 'nothing dropped (far below the 8 MiB that may wait)');
  child.kill('SIGTERM');
  t.equal(await exited, 0);
  read();
  t.match(out, /"msg":"stopped"/, 'the shutdown line too');
});
