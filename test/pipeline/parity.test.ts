// One decision for every way in: the same attack rows go through the proxy, forward-auth asked
// Traefik-style (X-Forwarded-*) and nginx-style (X-Original-*), and every entry must reach the
// same verdict (allowed, or refused with the same stable reason code, read off the access line).
import t from 'tap';
import { startLoginStack, type LoginStack } from '../fixtures/login.js';
import { secret } from '../fixtures/gateway.js';

interface Row {
  name: string;
  method: string;
  /** Raw request-target, sent as is. */
  target: string;
  /** 'alice' (readers), 'bob' (readers + writers), 'session' (alice's cookie), or none. */
  as?: 'alice' | 'bob' | 'session';
  headers?: Record<string, string>;
  /** Expected: 'allow' or the refusal's reason code. */
  verdict: string;
}

const rows: Row[] = [
  { name: 'readers token on a readers route', method: 'GET', target: '/api/assets', as: 'alice', verdict: 'allow' },
  { name: 'no credentials', method: 'GET', target: '/api/assets', verdict: 'no_credentials' },
  { name: 'readers token on an admins route', method: 'GET', target: '/admin/secret', as: 'alice', verdict: 'no_rule' },
  { name: '`;` params that would change the route', method: 'GET', target: '/admin;x/secret', as: 'alice', verdict: 'ambiguous_path' },
  { name: '`;` on a segment that keeps the route', method: 'GET', target: '/api/assets;v=1', as: 'alice', verdict: 'allow' },
  { name: '`;` that would make a route match', method: 'GET', target: '/api;v=1/assets', as: 'alice', verdict: 'ambiguous_path' },
  { name: 'dot segment', method: 'GET', target: '/api/../admin/secret', as: 'alice', verdict: 'ambiguous_path' },
  { name: 'encoded dot segment', method: 'GET', target: '/api/%2e%2E/admin', as: 'alice', verdict: 'ambiguous_path' },
  { name: 'dot segment with params', method: 'GET', target: '/api/..;x/admin', as: 'alice', verdict: 'ambiguous_path' },
  { name: 'encoded slash', method: 'GET', target: '/api%2Fadmin', as: 'alice', verdict: 'ambiguous_path' },
  { name: 'empty segment', method: 'GET', target: '/api//assets', as: 'alice', verdict: 'ambiguous_path' },
  { name: 'double encoding', method: 'GET', target: '/api/%252e%252e/admin', as: 'alice', verdict: 'ambiguous_path' },
  { name: 'overlong UTF-8', method: 'GET', target: '/api/%c0%ae%c0%ae/admin', as: 'alice', verdict: 'ambiguous_path' },
  { name: 'token in the URL', method: 'GET', target: '/api/assets?access_token=x', as: 'alice', verdict: 'token_in_url' },
  { name: 'no route', method: 'GET', target: '/nowhere', as: 'alice', verdict: 'no_route' },
  { name: 'reserved path', method: 'GET', target: '/auth/anything', as: 'alice', verdict: 'no_route' },
  { name: 'TRACE', method: 'TRACE', target: '/api/assets', as: 'alice', verdict: 'method_not_allowed' },
  { name: 'PROPFIND (a method the gateway never forwards)', method: 'PROPFIND', target: '/api/assets', as: 'alice', verdict: 'method_not_allowed' },
  { name: 'PURGE on a public route', method: 'PURGE', target: '/open/x', verdict: 'method_not_allowed' },
  { name: 'spoofed identity headers do not grant', method: 'GET', target: '/admin/secret', as: 'alice',
    headers: { 'x-auth-request-groups': 'admins', 'x-auth-request-user': 'root', 'x-forwarded-groups': 'admins' }, verdict: 'no_rule' },
  { name: 'readers may not write', method: 'POST', target: '/app/x', as: 'alice', verdict: 'no_rule' },
  { name: 'writers may', method: 'POST', target: '/app/x', as: 'bob', verdict: 'allow' },
  { name: 'session GET on a login route', method: 'GET', target: '/app/x', as: 'session', verdict: 'allow' },
  { name: 'cross-site cookie POST', method: 'POST', target: '/app/x', as: 'session', headers: { origin: 'https://evil.example' }, verdict: 'cross_site' },
  { name: 'cookie POST with no Origin or Referer', method: 'POST', target: '/app/x', as: 'session', verdict: 'cross_site' },
  { name: 'session on a bearer-only route', method: 'GET', target: '/api/assets', as: 'session', verdict: 'no_credentials' },
  { name: 'a token from no trusted issuer', method: 'GET', target: '/api/assets', headers: { authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln' }, verdict: 'unknown_issuer' },
  { name: 'public route', method: 'GET', target: '/open/x', verdict: 'allow' },
  // Only tokens not seen before are scanned for their syntax: these never were.
  { name: 'a Bearer value that is no token68', method: 'GET', target: '/api/assets', headers: { authorization: 'Bearer a,b' }, verdict: 'invalid_request' },
  { name: 'a Bearer value with a space in it', method: 'GET', target: '/api/assets', headers: { authorization: 'Bearer abc def' }, verdict: 'invalid_request' },
  { name: 'another scheme', method: 'GET', target: '/api/assets', headers: { authorization: 'Basic dXNlcjpwYXNz' }, verdict: 'unsupported_scheme' },
];

let stack: LoginStack;
let tokens: Record<string, string>;
let sessionCookie: string;

t.before(async () => {
  stack = await startLoginStack(t, {
    server: { trustedProxies: ['127.0.0.1'] },
    routes: [{ prefix: '/admin', upstream: 'app', allow: [{ groups: ['admins'] }] }],
  });
  tokens = {
    alice: secret(await stack.idp.userToken('alice')),
    bob: secret(await stack.idp.userToken('bob')),
  };
  const b = stack.browser();
  await b.login(stack.base, 'alice');
  sessionCookie = Object.entries(b.gatewayCookies()).map(([k, v]) => `${k}=${v}`).join('; ');
});

function credentials(row: Row): Record<string, string> {
  if (row.as === 'session') return { cookie: sessionCookie, accept: 'application/json' };
  if (row.as !== undefined) return { authorization: `Bearer ${tokens[row.as]}` };
  return {};
}

/** The reason (or 'allow') the access line of the newest request gives. */
async function lastVerdict(): Promise<string> {
  const lines = stack.gw.entries().filter((e) => e.msg === 'request');
  const last = lines[lines.length - 1]!;
  return last.reason === null || last.reason === undefined ? String(last.decision === 'public' ? 'allow' : last.decision) : String(last.reason);
}

/** Sends a raw request-target exactly as written (fetch would normalise dot segments). */
async function raw(method: string, target: string, headers: Record<string, string>): Promise<number> {
  const { request } = await import('node:http');
  const u = new URL(stack.base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method, path: target, headers }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode!)); });
    req.on('error', reject);
    req.end();
  });
}

t.test('every entry point reaches the same verdict', async (t) => {
  for (const row of rows) {
    const headers = { ...credentials(row), ...row.headers };
    const viaProxy = await raw(row.method, row.target, headers);
    const proxyVerdict = await lastVerdict();
    t.equal(proxyVerdict, row.verdict, `proxy: ${row.name} (status ${viaProxy})`);

    const traefik = await raw('GET', '/auth/verify', { ...headers, 'x-forwarded-method': row.method, 'x-forwarded-uri': row.target });
    t.equal(await lastVerdict(), row.verdict, `forward-auth (X-Forwarded-*): ${row.name} (status ${traefik})`);

    const nginx = await raw('GET', '/auth/verify', { ...headers, 'x-original-method': row.method, 'x-original-uri': row.target });
    t.equal(await lastVerdict(), row.verdict, `forward-auth (X-Original-*): ${row.name} (status ${nginx})`);

    if (row.verdict === 'allow') {
      t.equal(traefik, 200);
      t.equal(nginx, 200);
    } else {
      t.ok(traefik >= 400 && nginx >= 400, `${row.name}: forward-auth refuses (${traefik}, ${nginx})`);
      t.ok(viaProxy >= 400, `${row.name}: the proxy refuses (${viaProxy})`);
    }
  }
});

t.test('forward-auth: a browser without a session is sent to log in (Traefik-style), nginx-style gets 401 naming the login URL', async (t) => {
  const html = { accept: 'text/html' };
  const traefik = await fetch(`${stack.base}/auth/verify`, {
    redirect: 'manual',
    headers: { ...html, 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/app/page?q=1', 'x-forwarded-host': '127.0.0.1:1234', 'x-forwarded-proto': 'http' },
  });
  t.equal(traefik.status, 302);
  const loc = new URL(traefik.headers.get('location')!);
  t.equal(loc.origin + loc.pathname, `${stack.base}/auth/login`);
  t.equal(loc.searchParams.get('project'), 'demo');
  t.equal(loc.searchParams.get('redirect'), 'http://127.0.0.1:1234/app/page?q=1');
  t.equal(traefik.headers.get('x-auth-login-url'), null, 'Traefik-style: the 302 itself');
  const nginx = await fetch(`${stack.base}/auth/verify`, { redirect: 'manual', headers: { ...html, 'x-original-method': 'GET', 'x-original-uri': '/app/page?a=1&b=x%20y' } });
  t.equal(nginx.status, 401);
  t.equal(nginx.headers.get('location'), null);
  t.match(nginx.headers.get('content-type'), /^text\/html/, 'the 401 page a browser gets (the recipe answers with its redirect instead)');
  const url = new URL(nginx.headers.get('x-auth-login-url')!);
  t.equal(url.origin + url.pathname, `${stack.base}/auth/login`, 'the login URL rides on the 401');
  t.equal(url.searchParams.get('project'), 'demo');
  t.equal(url.searchParams.get('redirect'), '/app/page?a=1&b=x%20y', 'every query parameter of the page, encoded once');
  const line = stack.gw.entries().filter((e) => e.msg === 'request').pop()!;
  t.equal(line.method, 'GET', 'the access line records the forwarded method');
  t.equal(line.path, '/app/page', 'and the forwarded path');
  t.equal(line.decision, 'login_redirect');
  // Not a browser, or not a page: 401 without a login URL.
  const api = await fetch(`${stack.base}/auth/verify`, { headers: { accept: 'application/json', 'x-original-method': 'GET', 'x-original-uri': '/app/page' } });
  t.equal(api.status, 401);
  t.equal(api.headers.get('x-auth-login-url'), null, 'an API client gets no login URL');
  const post = await fetch(`${stack.base}/auth/verify`, { headers: { ...html, 'x-original-method': 'POST', 'x-original-uri': '/app/page' } });
  t.equal(post.status, 401);
  t.equal(post.headers.get('x-auth-login-url'), null, 'nor a form POST');
  // Media types are case-insensitive (RFC 9110 §8.3.1): an upper-case Accept is a browser too.
  const upper = { accept: 'TEXT/HTML' };
  const traefikUpper = await fetch(`${stack.base}/auth/verify`, {
    redirect: 'manual',
    headers: { ...upper, 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/app/page', 'x-forwarded-host': '127.0.0.1:1234', 'x-forwarded-proto': 'http' },
  });
  t.equal(traefikUpper.status, 302, 'Accept: TEXT/HTML, Traefik-style: sent to log in');
  const nginxUpper = await fetch(`${stack.base}/auth/verify`, { redirect: 'manual', headers: { ...upper, 'x-original-method': 'GET', 'x-original-uri': '/app/page' } });
  t.equal(nginxUpper.status, 401);
  t.ok(nginxUpper.headers.get('x-auth-login-url'), 'Accept: TEXT/HTML, nginx-style: the login URL rides on the 401');
  t.match(nginxUpper.headers.get('content-type'), /^text\/html/, 'and the 401 is a page');
  const proxied = await fetch(`${stack.base}/app/page`, { redirect: 'manual', headers: upper });
  t.equal(proxied.status, 302, 'Accept: TEXT/HTML through the proxy: sent to log in');
  t.match(proxied.headers.get('location'), /^\/auth\/login\?/);
});

t.test('forward-auth: forwarded headers are believed only from trusted proxies; one of a pair is 400', async (t) => {
  const half = await fetch(`${stack.base}/auth/verify`, { headers: { authorization: `Bearer ${tokens.alice}`, 'x-forwarded-uri': '/admin/secret' } });
  t.equal(half.status, 400);
  const ok = await fetch(`${stack.base}/auth/verify`, { headers: { authorization: `Bearer ${tokens.bob}`, 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/api/x' } });
  t.equal(ok.status, 200);
  t.equal(ok.headers.get('x-auth-request-user'), 'bob');
  t.equal(ok.headers.get('x-auth-request-groups'), 'readers,writers');
});
