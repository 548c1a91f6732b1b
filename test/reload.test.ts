// Reload without a restart: in process (Gateway.reload) and as an operator does it (SIGHUP, an
// edited file, a Kubernetes ConfigMap symlink swap) against the built CLI.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { stringify } from 'yaml';
import { parseConfig } from '../src/config/load.js';
import { startUpstream, type Upstream } from './fixtures/upstream.js';
import { startGateway, secret } from './fixtures/gateway.js';
import { startJwksServer, type JwksServer } from './fixtures/jwks-server.js';
import { AUDIENCE, claims, generateKey, mint, waitFor, type TestKey } from './fixtures/tokens.js';

const CLI = join(process.cwd(), 'dist/main.js');
let key: TestKey;
let jwks: JwksServer;
let up: Upstream;
let reader: string;
let writer: string;

t.before(async () => {
  key = await generateKey('RS256', 'k1');
  jwks = await startJwksServer({ keys: [key.jwk] });
  up = await startUpstream();
  reader = secret(await mint(claims(jwks.issuer, AUDIENCE, Date.now(), { sub: 'r', groups: ['readers'] }), { key }));
  writer = secret(await mint(claims(jwks.issuer, AUDIENCE, Date.now(), { sub: 'w', groups: ['writers'] }), { key }));
});
t.teardown(async () => { await up.close(); await jwks.close(); });

function config(routes: Array<Record<string, unknown>>, extra: Record<string, unknown> = {}) {
  return {
    issuers: [{ issuer: jwks.issuer, jwksUri: jwks.jwksUri, audiences: [AUDIENCE] }],
    upstreams: {
      app: { url: up.url, credentials: { type: 'user-token' } },
      keyed: { url: up.url, credentials: { type: 'api-key', value: secret('reload-api-key-0123456789') } },
    },
    routes,
    ...extra,
  };
}
const toConfig = (c: Record<string, unknown>) => parseConfig(stringify({ server: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0 }, ...c }), { env: {}, baseDir: '.' });

t.test('in process: a changed allow applies to the next request, a removed route stops matching at once, unchanged parts carry over', async (t) => {
  const readers = [{ prefix: '/a', upstream: 'app', allow: [{ groups: ['readers'] }] }, { prefix: '/b', upstream: 'keyed', allow: [{}] }];
  const gw = await startGateway(t, config(readers));
  const get = (path: string, token: string) => fetch(gw.url + path, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
  t.equal(await get('/a/x', reader), 200);
  t.equal(await get('/a/x', writer), 403);
  const before = gw.gateway.state;

  await gw.gateway.reload(toConfig(config([{ prefix: '/a', upstream: 'app', allow: [{ groups: ['writers'] }] }, readers[1]!])));
  t.equal(await get('/a/x', reader), 403, 'the new allow rules apply to the next request');
  t.equal(await get('/a/x', writer), 200);
  const after = gw.gateway.state;
  t.not(after, before, 'a new state');
  t.equal(after.verifier, before.verifier, 'key sets carry over when issuers and tokens are unchanged');
  t.equal(after.credentials.get('keyed'), before.credentials.get('keyed'), 'an unchanged upstream keeps its credential source');
  t.equal(after.proxy, before.proxy, 'and its pools');

  await gw.gateway.reload(toConfig(config([readers[1]!])));
  t.equal(await get('/a/x', writer), 404, 'a removed route stops matching at once');
  t.equal(await get('/b/x', writer), 200);

  const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  t.match(text, /cdf_gateway_config_reloads_total\{outcome="ok"\} 2/);
});

t.test('in process: a reload whose redis cannot be reached is refused and the running configuration keeps serving', async (t) => {
  const routes = [{ prefix: '/a', upstream: 'app', allow: [{ groups: ['readers'] }] }];
  const gw = await startGateway(t, config(routes));
  const get = (path: string) => fetch(gw.url + path, { headers: { authorization: `Bearer ${reader}` } }).then((r) => r.status);
  // Answered once before (keys fetched, token verified): what follows depends on the reload only,
  // not on a JWKS fetch made on a busy machine.
  t.equal(await get('/a/x'), 200, 'allowed before the reload');
  const before = gw.gateway.state;
  const closed = await new Promise<number>((resolve) => {
    const s = createServer(); s.listen(0, '127.0.0.1', () => { const { port } = s.address() as AddressInfo; s.close(() => resolve(port)); });
  });
  const next = toConfig(config([{ prefix: '/a', upstream: 'app', allow: [{ groups: ['writers'] }] }], { redis: { url: `redis://127.0.0.1:${closed}` } }));
  await t.rejects(gw.gateway.reload(next), { status: 503, message: /shared state cannot be reached/ }, 'the reload fails with the reason');
  t.equal(gw.gateway.state, before, 'the running state is kept');
  t.equal(await get('/a/x'), 200, 'and keeps deciding by the old rules');
});

t.test('in process: reloads under concurrent traffic lose no request', async (t) => {
  const routes = (group: string) => [{ prefix: '/a', upstream: 'app', allow: [{ groups: ['readers', group] }] }];
  const gw = await startGateway(t, config(routes('x0')));
  up.respond = (_req, res) => { setTimeout(() => { res.writeHead(200); res.end('ok'); }, 5); };
  t.teardown(() => { up.respond = (_req, res) => { res.writeHead(200); res.end('ok'); }; });
  let stop = false;
  const statuses: number[] = [];
  const worker = async () => {
    while (!stop) {
      const res = await fetch(`${gw.url}/a/x`, { headers: { authorization: `Bearer ${reader}` } });
      await res.arrayBuffer();
      statuses.push(res.status);
    }
  };
  const workers = Array.from({ length: 8 }, worker);
  for (let i = 1; i <= 10; i++) {
    const seen = statuses.length;
    await waitFor(() => statuses.length >= seen + 8, 20_000); // traffic in flight across every swap
    await gw.gateway.reload(toConfig(config(routes(`x${i}`), { server: { host: '127.0.0.1', port: 0, maxBodyBytes: 1000 + i } })));
  }
  stop = true;
  await Promise.all(workers);
  t.ok(statuses.length >= 80, `${statuses.length} requests across 10 reloads`);
  t.same([...new Set(statuses)], [200], 'every request succeeded');
});

/** A port nothing listens on (bound, then released). */
function freePort(): Promise<number> {
  return new Promise<number>((resolve) => {
    const s = createServer(); s.listen(0, '127.0.0.1', () => { const { port } = s.address() as AddressInfo; s.close(() => resolve(port)); });
  });
}

t.test('in process: a reload that changes server.port keeps the listener, and a derived publicUrl stays on the running port', async (t) => {
  const port = await freePort();
  const routes = [{ prefix: '/a', upstream: 'app', allow: [{ groups: ['readers'] }] }];
  const gw = await startGateway(t, config(routes, { server: { host: '127.0.0.1', port } }));
  t.equal(gw.gateway.state.config.server.publicUrl, `http://127.0.0.1:${port}`);
  up.respond = (req, res) => { res.writeHead(302, { location: `${up.url}/a/next` }); res.end(); };
  t.teardown(() => { up.respond = (_req, res) => { res.writeHead(200); res.end('ok'); }; });
  const location = async () => {
    const res = await fetch(`${gw.url}/a/x`, { headers: { authorization: `Bearer ${reader}` }, redirect: 'manual' });
    await res.arrayBuffer();
    return res.headers.get('location');
  };
  t.equal(await location(), `http://127.0.0.1:${port}/a/next`, 'an upstream redirect is rewritten onto publicUrl');

  const other = await freePort();
  await gw.gateway.reload(toConfig(config([...routes, { prefix: '/b', upstream: 'app', allow: [{}] }], { server: { host: '127.0.0.1', port: other } })));
  t.ok(gw.entries().some((e) => e.key === 'server.port' && /needs a restart/.test(String(e.msg))), 'the port change is warned about');
  const server = gw.gateway.state.config.server;
  t.equal(server.port, port, 'the new state records the port the gateway listens on');
  t.equal(server.publicUrl, `http://127.0.0.1:${port}`, 'publicUrl is derived from the running listener, not the new file');
  t.equal(await location(), `http://127.0.0.1:${port}/a/next`, 'redirects still point where the gateway listens');
  t.equal((await fetch(`${gw.url}/b/x`, { headers: { authorization: `Bearer ${reader}` }, redirect: 'manual' })).status, 302, 'the rest of the file is applied');

  // A publicUrl the file does set is taken as written, whatever the listener.
  await gw.gateway.reload(toConfig(config(routes, { server: { host: '127.0.0.1', port: other, publicUrl: 'https://gw.example' } })));
  t.equal(gw.gateway.state.config.server.publicUrl, 'https://gw.example');
  t.equal(await location(), 'https://gw.example/a/next');
  t.equal(gw.gateway.state.config.server.port, port);
});

/** A reader's token of `bytes` bytes or up to three more (base64url grows in steps of four). */
async function readerTokenOf(bytes: number): Promise<string> {
  const withPad = (pad: number) => mint(claims(jwks.issuer, AUDIENCE, Date.now(), { sub: 'r', groups: ['readers'], pad: 'x'.repeat(pad) }), { key });
  let pad = Math.max(0, Math.floor(((bytes - (await withPad(0)).length) * 3) / 4));
  let token = await withPad(pad);
  while (token.length < bytes) token = await withPad(++pad);
  return secret(token);
}

t.test('in process: a reload that changes only server.maxHeaderBytes keeps the token limit derived from the running listener', async (t) => {
  const routes = [{ prefix: '/a', upstream: 'app', allow: [{ groups: ['readers'] }] }];
  const server = (maxHeaderBytes: number) => ({ server: { host: '127.0.0.1', port: 0, maxHeaderBytes } });
  const gw = await startGateway(t, config(routes, server(8192)));
  t.equal(gw.gateway.state.config.tokens.maxTokenBytes, 6144, 'three quarters of the listener\'s 8192');
  const get = async (token: string) => {
    const res = await fetch(`${gw.url}/a/x`, { headers: { authorization: `Bearer ${token}` } });
    await res.arrayBuffer();
    return res.status === 401 ? `401 ${res.headers.get('www-authenticate') ?? ''}` : String(res.status);
  };
  const within = await readerTokenOf(4000); // over 3072, the limit a 4096-byte header block would give
  const over = await readerTokenOf(6145); // over the running 6144, under 12288 (a 65536-byte header block's)
  t.ok(over.length <= 6148, `${over.length} bytes`);
  t.equal(await get(within), '200', 'within the running limit');
  t.match(await get(over), /^401 .*invalid_token/, 'over the running limit');
  const before = gw.gateway.state;

  await gw.gateway.reload(toConfig(config(routes, server(4096))));
  t.ok(gw.entries().some((e) => e.key === 'server.maxHeaderBytes' && /needs a restart/.test(String(e.msg))), 'the header limit change is warned about');
  t.equal(gw.gateway.state.config.server.maxHeaderBytes, 8192, 'the listener keeps its header limit');
  t.equal(gw.gateway.state.config.tokens.maxTokenBytes, 6144, 'and the token limit stays derived from it');
  t.equal(gw.gateway.state.verifier, before.verifier, 'tokens unchanged: the verifier (and its key sets) carries over');
  t.equal(await get(within), '200', 'a token the new file\'s header limit would refuse is still accepted');

  await gw.gateway.reload(toConfig(config(routes, server(65536))));
  t.equal(gw.gateway.state.config.tokens.maxTokenBytes, 6144, 'a larger header limit in the file does not raise it');
  t.match(await get(over), /^401 .*invalid_token/, 'a token over the running limit is still refused');

  // Set explicitly, the token limit is applied as written.
  await gw.gateway.reload(toConfig(config(routes, { ...server(65536), tokens: { maxTokenBytes: 7000 } })));
  t.equal(gw.gateway.state.config.tokens.maxTokenBytes, 7000);
  t.equal(await get(over), '200', 'an explicit tokens.maxTokenBytes is applied');
  await gw.gateway.reload(toConfig(config(routes, server(16384))));
  t.equal(gw.gateway.state.config.tokens.maxTokenBytes, 6144, 'left out again: derived from the running listener');
  t.match(await get(over), /^401 .*invalid_token/);
});

interface Cli { url: string; logs: () => string; kill(signal: NodeJS.Signals): void; exited: Promise<number | null> }

async function startCli(t: Test, file: string): Promise<Cli> {
  const child = spawn(process.execPath, [CLI, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => { child.kill('SIGKILL'); });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  await waitFor(() => /"url":"http:\/\/127\.0\.0\.1:\d+"/.test(out) || child.exitCode !== null, 20_000);
  const url = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out)?.[1];
  if (url === undefined) throw new Error(`the gateway did not start: ${out}`);
  return { url, logs: () => out, kill: (s) => child.kill(s), exited };
}

t.test('CLI: SIGHUP applies a valid file, refuses a broken one (naming every bad key), watches a ConfigMap symlink swap', async (t) => {
  const dir = t.testdir({});
  // The ConfigMap layout: gw.yaml → ..data/gw.yaml, ..data → ..2026_01 (swapped atomically).
  const version = (name: string, body: unknown) => {
    mkdirSync(join(dir, name));
    writeFileSync(join(dir, name, 'gw.yaml'), typeof body === 'string' ? body : stringify(body));
  };
  const base = { server: { host: '127.0.0.1', port: 0 }, admin: { host: '127.0.0.1', port: 0 }, log: { level: 'info' } };
  version('..v1', { ...base, ...config([{ prefix: '/a', upstream: 'app', allow: [{ groups: ['readers'] }] }]) });
  symlinkSync('..v1', join(dir, '..data'));
  symlinkSync(join('..data', 'gw.yaml'), join(dir, 'gw.yaml'));
  const cli = await startCli(t, join(dir, 'gw.yaml'));
  const get = (path: string) => fetch(cli.url + path, { headers: { authorization: `Bearer ${reader}` } }).then((r) => r.status);
  t.equal(await get('/a/x'), 200);

  // A broken file: nothing changes, every bad key is named.
  writeFileSync(join(dir, '..v1', 'gw.yaml'), stringify({ ...base, ...config([{ prefix: '/a', upstream: 'nope', alow: [] }]) }));
  cli.kill('SIGHUP');
  await waitFor(() => cli.logs().includes('configuration reload refused'), 10_000);
  t.match(cli.logs(), /routes\[0\]\.upstream/);
  t.match(cli.logs(), /routes\[0\]\.alow/);
  t.equal(await get('/a/x'), 200, 'the running configuration keeps serving');

  // A ConfigMap update: a new directory, then the ..data symlink swapped; no signal.
  version('..v2', { ...base, ...config([{ prefix: '/b', upstream: 'app', allow: [{ groups: ['readers'] }] }]) });
  symlinkSync('..v2', join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  await waitFor(() => cli.logs().includes('configuration reloaded'), 10_000);
  t.equal(await get('/a/x'), 404, 'the removed route stopped matching');
  t.equal(await get('/b/x'), 200, 'the new one serves');

  // A listener change is reported, not applied.
  writeFileSync(join(dir, '..v2', 'gw.yaml'), stringify({ ...base, server: { host: '127.0.0.1', port: 1 }, ...config([{ prefix: '/b', upstream: 'app', allow: [{}] }]) }));
  cli.kill('SIGHUP');
  await waitFor(() => /needs a restart/.test(cli.logs()), 10_000);
  t.match(cli.logs(), /"key":"server.port"/);
  t.equal(await get('/b/x'), 200, 'still listening where it was');
  cli.kill('SIGTERM');
  t.equal(await cli.exited, 0);
});
