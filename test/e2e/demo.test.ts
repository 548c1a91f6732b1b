// `npm run demo` as a user runs it: start demo/run.mjs (built gateway from dist/), wait for its
// readiness line, obtain a token with the curl credentials it prints, drive requests through the
// gateway with @cognite/sdk, check on the stand-in's /_demo/requests page which credential and
// identity headers arrived upstream, log in as a browser would, then Ctrl-C (SIGINT) and expect
// exit 0 with every port free.
import t from 'tap';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import * as sdkModule from '@cognite/sdk';
import { WebSocket } from 'ws';
import { FakeBrowser } from '../fixtures/login.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const READY = /cdf-auth-gateway demo is ready: (\S+)/;

// @cognite/sdk's declarations use extensionless specifiers that NodeNext cannot resolve.
interface Sdk {
  CogniteClient: new (o: { appId: string; project: string; baseUrl: string; oidcTokenProvider: () => Promise<string> }) => {
    authenticate(): Promise<unknown>;
    assets: { list(q: { limit: number }): Promise<{ items: Array<{ name: string; externalId: string }> }> };
    post<T>(path: string, o: { data?: unknown; headers?: Record<string, string> }): Promise<{ status: number; data: T }>;
  };
}
const { CogniteClient } = sdkModule as unknown as Sdk;

interface Recorded {
  method: string;
  path: string;
  status: number;
  credential: { authorization?: string; token?: { sub?: string; client_id?: string }; apiKey?: string; cookies?: string[] };
  identity: Record<string, string>;
}

/** Distinct free loopback ports (held together while picking, so they differ). */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<net.Server>((resolve, reject) => {
    const s = net.createServer().once('error', reject);
    s.listen(0, '127.0.0.1', () => resolve(s));
  })));
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer().once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

const sha12 = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 12);

t.test('npm run demo: start, SDK requests with the credential swap, browser login, Ctrl-C', async (t) => {
  const [idpPort, cdfPort, gwPort, adminPort, spaPort, livePort] = await freePorts(6) as [number, number, number, number, number, number];
  const child = spawn(process.execPath, ['demo/run.mjs'], {
    cwd: ROOT,
    env: {
      ...process.env,
      DEMO_IDP_PORT: String(idpPort), DEMO_CDF_PORT: String(cdfPort),
      DEMO_GATEWAY_PORT: String(gwPort), DEMO_ADMIN_PORT: String(adminPort),
      DEMO_SPA_PORT: String(spaPort), DEMO_LIVE_PORT: String(livePort),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });

  const gatewayUrl = await new Promise<string>((resolve, reject) => {
    const check = () => { const m = READY.exec(out); if (m) resolve(m[1]!); };
    child.stdout.on('data', check);
    void exited.then(({ code }) => reject(new Error(`demo exited (${code}) before ready:\n${out}\n${err}`)));
  });
  t.equal(gatewayUrl, `http://127.0.0.1:${gwPort}`, 'the demo announces the gateway on the requested port');

  // The token comes from the curl line the demo prints: client id, secret and token URL as printed.
  const curl = /TOKEN=\$\(curl -s -u ([^:\s]+):(\S+) (.*?) (http:\/\/\S+\/token) /.exec(out);
  t.ok(curl, 'the demo prints a curl line for the IdP token endpoint');
  const [, clientId, clientSecret, args, tokenUrl] = curl!;
  t.equal(tokenUrl, `http://127.0.0.1:${idpPort}/token`);
  const form = new URLSearchParams([...args!.matchAll(/-d (\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]));
  const res = await fetch(tokenUrl!, {
    method: 'POST', body: form,
    headers: { authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}` },
  });
  t.equal(res.status, 200, 'the demo IdP issues a token with the printed credentials');
  const token = ((await res.json()) as { access_token: string }).access_token;

  const sdk = new CogniteClient({ appId: 'demo-e2e', project: 'demo', baseUrl: gatewayUrl, oidcTokenProvider: async () => token });
  await sdk.authenticate();
  const assets = await sdk.assets.list({ limit: 2 });
  t.same(assets.items.map((a) => a.externalId), ['site-oslo', 'pump-23-1'], 'the stand-in\'s assets, through the gateway');
  // The client tries to smuggle its own api-key and a forged identity: neither may reach CDF.
  const events = await sdk.post<{ items: unknown[] }>('/api/v1/projects/demo/events/list', {
    data: {}, headers: { 'api-key': 'client-own-api-key-123', 'x-auth-request-user': 'mallory' },
  });
  t.equal(events.status, 200);
  // The service route: the gateway swaps in its own client-credentials token.
  const service = await sdk.post<{ items: unknown[] }>('/service/demo/timeseries/list', { data: {} });
  t.equal(service.status, 200);
  t.equal(service.data.items.length, 3);

  const seen = await fetch(`http://127.0.0.1:${cdfPort}/_demo/requests`).then((r) => r.json()) as { items: Recorded[] };
  const byPath = (p: string) => seen.items.filter((r) => r.path === p);
  t.equal(seen.items.length, 3, 'the stand-in received exactly the three requests');

  const [list] = byPath('/api/v1/projects/demo/assets/list');
  t.ok(list, 'assets/list reached the stand-in');
  t.equal(list!.method, 'POST');
  t.match(list!.credential.authorization, new RegExp(`^Bearer \\S+\\(sha256:${sha12(token)}\\)$`),
    'user-token route: the caller\'s own token went on, shown as a fingerprint');
  t.equal(list!.credential.token?.sub, clientId);
  t.same(list!.identity, { 'x-auth-request-user': clientId, 'x-auth-request-groups': 'readers' }, 'identity headers injected');

  const [ev] = byPath('/api/v1/projects/demo/events/list');
  t.ok(ev, 'events/list reached the stand-in');
  t.equal(ev!.credential.apiKey, undefined, 'the client\'s api-key was stripped');
  t.equal(ev!.identity['x-auth-request-user'], clientId, 'the forged identity header was replaced');

  const [svc] = byPath('/api/v1/projects/demo/timeseries/list');
  t.ok(svc, 'the service route was rewritten to the CDF project path');
  t.equal(svc!.credential.token?.sub, 'svc', 'service route: the gateway\'s own client-credentials token');
  t.notMatch(svc!.credential.authorization, sha12(token), 'the caller\'s token did not pass on the service route');
  t.equal(svc!.identity['x-auth-request-user'], clientId);

  // Browser login through the demo IdP (devInteractions form) and back to the CDF route.
  t.match(out, `${gatewayUrl}/api/v1/projects/demo/assets`, 'the demo prints the browser URL');
  const browse = async (user: string) => {
    const browser = new FakeBrowser();
    return { browser, ...(await browser.navigate(`${gatewayUrl}/api/v1/projects/demo/assets`, user)) };
  };
  const bob = await browse('bob');
  t.equal(bob.res.status, 200, 'bob logs in and gets the assets');
  t.equal(bob.url.href, `${gatewayUrl}/api/v1/projects/demo/assets`, 'back where he started');
  t.ok(bob.trail.some((u) => u.origin === `http://localhost:${idpPort}`), 'by way of the demo IdP');
  t.equal(((await bob.res.json()) as { items: unknown[] }).items.length, 4);
  const carol = await browse('carol');
  t.equal(carol.res.status, 403, 'carol (no groups) is refused after logging in');
  await carol.res.arrayBuffer();
  const afterLogin = await fetch(`http://127.0.0.1:${cdfPort}/_demo/requests`).then((r) => r.json()) as { items: Recorded[] };
  const fromBrowser = afterLogin.items.slice(3);
  t.equal(fromBrowser.length, 1, 'only bob\'s request reached the stand-in');
  t.equal(fromBrowser[0]?.method, 'GET');
  t.equal(fromBrowser[0]?.credential.token?.sub, 'bob', 'the session\'s access token went on as a bearer token');
  t.equal(fromBrowser[0]?.credential.token?.client_id, 'gateway');
  t.equal(fromBrowser[0]?.credential.cookies, undefined, 'no gateway or IdP cookie reached the stand-in');
  t.same(fromBrowser[0]?.identity, { 'x-auth-request-user': 'bob', 'x-auth-request-email': 'bob@example.com', 'x-auth-request-groups': 'readers,writers' });

  // An internal app opened by a CDF capability: bob's CDF groups grant timeSeriesAcl:WRITE in demo.
  t.match(out, `${gatewayUrl}/apps/timeseries-editor/`, 'the demo prints the app\'s URL');
  const editor = (user: string) => new FakeBrowser().navigate(`${gatewayUrl}/apps/timeseries-editor/`, user);
  const bobEditor = await editor('bob');
  t.equal(bobEditor.res.status, 200, 'bob (writers) is let in by CDF\'s answer');
  t.match(await bobEditor.res.text(), /Signed in as <b>bob<\/b>/);
  const aliceEditor = await editor('alice');
  t.equal(aliceEditor.res.status, 403, 'alice (readers: timeSeriesAcl:READ only) is not');
  await aliceEditor.res.arrayBuffer();
  const asked = await fetch(`http://127.0.0.1:${cdfPort}/_demo/requests`).then((r) => r.json()) as { items: Recorded[] };
  t.ok(asked.items.some((r) => r.path === '/api/v1/token/inspect' && r.credential.token?.sub === 'bob'), 'the gateway asked CDF with bob\'s token');
  // The dashboard on another origin: a CORS call with bob's session cookie, and the live WebSocket.
  const spa = `http://127.0.0.1:${spaPort}`;
  t.match(out, `${spa}/`, 'the demo prints the dashboard URL');
  t.match(await fetch(`${spa}/`).then((r) => r.text()), '<script src="/app.js"></script>', 'the dashboard page (no inline script)');
  const cookie = Object.entries(bob.browser.gatewayCookies()).map(([k, v]) => `${k}=${v}`).join('; ');
  const preflight = await fetch(`${gatewayUrl}/api/v1/projects/demo/assets/list`, {
    method: 'OPTIONS', headers: { origin: spa, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
  });
  t.equal(preflight.status, 204, 'the preflight is answered by the gateway');
  t.equal(preflight.headers.get('access-control-allow-origin'), spa);
  t.equal(preflight.headers.get('access-control-allow-credentials'), 'true');
  const cross = await fetch(`${gatewayUrl}/api/v1/projects/demo/assets/list`, {
    method: 'POST', body: '{"limit":5}', headers: { origin: spa, cookie, 'content-type': 'application/json' },
  });
  t.equal(cross.status, 200, 'the cross-origin POST with the session');
  t.equal(cross.headers.get('access-control-allow-origin'), spa);
  t.equal(((await cross.json()) as { items: unknown[] }).items.length, 4);
  const hello = await new Promise<string>((resolve, reject) => {
    const ws = new WebSocket(`${gatewayUrl.replace('http', 'ws')}/live/ws`, { headers: { origin: spa, cookie } });
    ws.once('message', (d) => { resolve(d.toString()); ws.close(); });
    ws.once('unexpected-response', (_q, r) => reject(new Error(`upgrade refused: ${r.statusCode}`)));
    ws.once('error', reject);
  });
  t.same(JSON.parse(hello), { hello: 'bob' }, 'the live service greets the signed-in user over the WebSocket');

  t.notOk(out.includes(token) || err.includes(token), 'the demo never prints the whole token');

  child.kill('SIGINT');
  const { code, signal } = await exited;
  t.equal(signal, null);
  t.equal(code, 0, 'Ctrl-C stops the demo with exit code 0');
  t.match(out, /demo stopped/);
  for (const port of [idpPort, cdfPort, gwPort, adminPort, spaPort, livePort]) t.ok(await portIsFree(port), `port ${port} released`);
});
