import t from 'tap';
import type { IncomingHttpHeaders } from 'node:http';
import { util as undiciUtil } from 'undici';
import {
  clientResponseHeaders, clientResponseHeadersRaw, isGatewayCookieName, upstreamRequestHeaders, type ForwardContext,
} from '../../src/upstream/headers.js';
import type { Principal } from '../../src/token/principal.js';

function principal(over: Partial<Principal> = {}): Principal {
  const groups = over.groups ?? ['readers', 'writers'];
  return {
    sub: 'alice', email: 'alice@example.com', groups, scopes: new Set(['user_impersonation']),
    issuer: 'https://idp.test', expiresAt: Date.now() + 3600_000,
    groupsHeader: groups.join(','), ...over,
  };
}

const base: ForwardContext = {
  peer: '203.0.113.7', proto: 'https', fromTrustedProxy: false,
  principal: principal(), credential: { header: 'authorization', value: 'Bearer eyJ.user.token' },
  upstreamHost: 'upstream.internal:5000',
};
const ctx = (over: Partial<ForwardContext> = {}): ForwardContext => ({ ...base, ...over });
const req = (h: Record<string, string | string[]>): IncomingHttpHeaders => ({ host: 'gw.example', ...h });

interface Row {
  name: string;
  headers: Record<string, string | string[]>;
  ctx?: Partial<ForwardContext>;
  /** Expected values in the output (undefined: absent). */
  expect: Record<string, string | string[] | undefined>;
}

const rows: Row[] = [
  // Client credentials never pass through.
  { name: 'authorization replaced by the user token', headers: { authorization: 'Bearer forged' }, expect: { authorization: 'Bearer eyJ.user.token' } },
  { name: 'Authorization (mixed case) replaced', headers: { Authorization: 'Basic Zm9vOmJhcg==' }, expect: { authorization: 'Bearer eyJ.user.token' } },
  { name: 'api-key dropped for a user-token upstream', headers: { 'api-key': 'client-key' }, expect: { 'api-key': undefined } },
  { name: 'API-KEY dropped', headers: { 'API-KEY': 'client-key' }, expect: { 'api-key': undefined } },
  { name: 'api_key (underscore) dropped', headers: { api_key: 'client-key' }, expect: { api_key: undefined } },
  {
    name: 'client api-key replaced by the configured one', headers: { 'api-key': 'client-key', authorization: 'Bearer x' },
    ctx: { credential: { header: 'api-key', value: 'configured-key' } },
    expect: { 'api-key': 'configured-key', authorization: undefined },
  },
  {
    name: 'custom credential header: client copy dropped, configured value injected',
    headers: { 'X-Api-Token': 'client' }, ctx: { credential: { header: 'x-api-token', value: 'configured' } },
    expect: { 'x-api-token': 'configured' },
  },
  { name: 'no credential (none / public): nothing injected', headers: { authorization: 'Bearer forged' }, ctx: { credential: null, principal: null }, expect: { authorization: undefined } },
  // Identity headers from clients.
  { name: 'x-auth-request-user forged, replaced', headers: { 'x-auth-request-user': 'admin' }, expect: { 'x-auth-request-user': 'alice' } },
  { name: 'X-Auth-Request-User forged, replaced', headers: { 'X-Auth-Request-User': 'admin' }, expect: { 'x-auth-request-user': 'alice' } },
  { name: 'X_Auth_Request_User dropped', headers: { X_Auth_Request_User: 'admin' }, expect: { x_auth_request_user: undefined, 'x-auth-request-user': 'alice' } },
  { name: 'x-auth-request_user dropped', headers: { 'x-auth-request_user': 'admin' }, expect: { 'x-auth-request_user': undefined } },
  { name: 'x-auth-request-email forged, replaced', headers: { 'x-auth-request-email': 'root@evil' }, expect: { 'x-auth-request-email': 'alice@example.com' } },
  { name: 'x-auth-request-groups forged, replaced', headers: { 'X-AUTH-REQUEST-GROUPS': 'admins' }, expect: { 'x-auth-request-groups': 'readers,writers' } },
  { name: 'other x-auth-request-* dropped', headers: { 'x-auth-request-preferred-username': 'root', 'X-Auth-Request-Access-Token': 't' }, expect: { 'x-auth-request-preferred-username': undefined, 'x-auth-request-access-token': undefined } },
  { name: 'public route: x-auth-request-* dropped, none added', headers: { 'x-auth-request-user': 'admin' }, ctx: { principal: null, credential: null }, expect: { 'x-auth-request-user': undefined, 'x-auth-request-groups': undefined } },
  { name: 'X-Forwarded-User dropped', headers: { 'X-Forwarded-User': 'admin' }, expect: { 'x-forwarded-user': undefined } },
  { name: 'x_forwarded_user dropped', headers: { x_forwarded_user: 'admin' }, expect: { x_forwarded_user: undefined } },
  { name: 'X-Forwarded-Email dropped', headers: { 'X-Forwarded-Email': 'a@b' }, expect: { 'x-forwarded-email': undefined } },
  { name: 'X-Forwarded-Groups dropped', headers: { 'x-forwarded-groups': 'admins' }, expect: { 'x-forwarded-groups': undefined } },
  { name: 'X-Forwarded-Preferred-Username dropped', headers: { 'X-Forwarded-Preferred-Username': 'root' }, expect: { 'x-forwarded-preferred-username': undefined } },
  { name: 'Remote-User dropped', headers: { 'Remote-User': 'root' }, expect: { 'remote-user': undefined } },
  { name: 'remote_user dropped', headers: { remote_user: 'root' }, expect: { remote_user: undefined } },
  { name: 'X-Remote-User dropped', headers: { 'x-remote-user': 'root' }, expect: { 'x-remote-user': undefined } },
  // Routing / method overrides.
  { name: 'X-Original-URL dropped', headers: { 'X-Original-URL': '/admin' }, expect: { 'x-original-url': undefined } },
  { name: 'X-Rewrite-URL dropped', headers: { 'x-rewrite-url': '/admin' }, expect: { 'x-rewrite-url': undefined } },
  { name: 'X-Original-URI dropped', headers: { 'X-Original-URI': '/admin' }, expect: { 'x-original-uri': undefined } },
  { name: 'X-Forwarded-Uri dropped', headers: { 'x-forwarded-uri': '/admin' }, expect: { 'x-forwarded-uri': undefined } },
  { name: 'X-Forwarded-Prefix dropped', headers: { 'X-Forwarded-Prefix': '/x' }, expect: { 'x-forwarded-prefix': undefined } },
  { name: 'X-Forwarded-Method dropped', headers: { 'X-Forwarded-Method': 'DELETE' }, expect: { 'x-forwarded-method': undefined } },
  { name: 'X-Original-Method dropped', headers: { 'x-original-method': 'DELETE' }, expect: { 'x-original-method': undefined } },
  { name: 'Forwarded dropped', headers: { Forwarded: 'for=1.2.3.4;proto=https' }, expect: { forwarded: undefined } },
  { name: 'X-HTTP-Method-Override dropped', headers: { 'X-HTTP-Method-Override': 'DELETE' }, expect: { 'x-http-method-override': undefined } },
  { name: 'X-HTTP-Method dropped', headers: { 'x-http-method': 'DELETE' }, expect: { 'x-http-method': undefined } },
  { name: 'X-Method-Override dropped', headers: { 'X-Method-Override': 'PUT' }, expect: { 'x-method-override': undefined } },
  { name: 'any underscore name dropped', headers: { custom_header: 'v', 'X-Custom_Thing': 'v' }, expect: { custom_header: undefined, 'x-custom_thing': undefined } },
  // Hop-by-hop.
  {
    name: 'hop-by-hop headers dropped',
    headers: { connection: 'keep-alive', 'keep-alive': 'timeout=5', 'proxy-connection': 'keep-alive', 'proxy-authorization': 'Basic x', te: 'trailers', trailer: 'x-t', 'transfer-encoding': 'chunked', upgrade: 'websocket', 'proxy-authenticate': 'Basic' },
    expect: { connection: undefined, 'keep-alive': undefined, 'proxy-connection': undefined, 'proxy-authorization': undefined, te: undefined, trailer: undefined, 'transfer-encoding': undefined, upgrade: undefined, 'proxy-authenticate': undefined },
  },
  {
    name: 'Connection: x-auth-request-user, keep-alive removes client copies, gateway values stay',
    headers: { Connection: 'x-auth-request-user, keep-alive', 'x-auth-request-user': 'admin', 'keep-alive': '1' },
    expect: { 'x-auth-request-user': 'alice', 'keep-alive': undefined, connection: undefined },
  },
  {
    name: 'Connection names an ordinary header: removed',
    headers: { connection: 'X-Custom, close', 'x-custom': 'v', 'x-other': 'kept' },
    expect: { 'x-custom': undefined, 'x-other': 'kept' },
  },
  {
    name: 'Connection cannot remove X-Forwarded-For / Host / Content-Length',
    headers: { connection: 'x-forwarded-for, x-forwarded-proto, x-forwarded-host, host, content-length, authorization', 'content-length': '12', 'x-forwarded-for': '6.6.6.6' },
    expect: { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'gw.example', host: 'upstream.internal:5000', 'content-length': '12', authorization: 'Bearer eyJ.user.token' },
  },
  {
    name: 'Connection from a trusted proxy cannot remove the X-Forwarded-For chain',
    headers: { connection: 'x-forwarded-for', 'x-forwarded-for': '198.51.100.1' }, ctx: { fromTrustedProxy: true, peer: '10.0.0.2' },
    expect: { 'x-forwarded-for': '198.51.100.1, 10.0.0.2' },
  },
  // Cookies.
  {
    name: 'gateway cookies removed, app cookies kept',
    headers: { cookie: 'cdf-gw=abc; app=1; __Host-cdf-gw-0=chunk; theme=dark; __Secure-cdf-gw.login=x; cdf-gw-1=y' },
    expect: { cookie: 'app=1; theme=dark' },
  },
  { name: 'only gateway cookies: cookie header dropped', headers: { cookie: 'cdf-gw=abc; __Host-cdf-gw-1=def' }, expect: { cookie: undefined } },
  { name: 'no gateway cookie: cookie header unchanged', headers: { cookie: 'a=1; b=2' }, expect: { cookie: 'a=1; b=2' } },
  { name: 'cookie array (HTTP/2 style) filtered', headers: { cookie: ['a=1', 'CDF-GW=secret', 'b=2'] }, expect: { cookie: 'a=1; b=2' } },
  { name: 'cookie named like but not a gateway cookie kept', headers: { cookie: 'my-cdf-gw=1; cdfgw=2' }, expect: { cookie: 'my-cdf-gw=1; cdfgw=2' } },
  { name: 'nameless pairs holding a gateway name removed', headers: { cookie: 'a=1; =cdf-gw-session=x; cdf-gw-session; =ok; b' }, expect: { cookie: 'a=1; =ok; b' } },
  // X-Forwarded-*.
  {
    name: 'untrusted peer: forged X-Forwarded-* replaced',
    headers: { 'x-forwarded-for': '1.1.1.1', 'x-forwarded-proto': 'http', 'x-forwarded-host': 'evil.example' },
    expect: { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'gw.example' },
  },
  {
    name: 'untrusted IPv4-mapped peer written as IPv4',
    headers: {}, ctx: { peer: '::ffff:192.0.2.9', proto: 'http' },
    expect: { 'x-forwarded-for': '192.0.2.9', 'x-forwarded-proto': 'http' },
  },
  {
    name: 'trusted proxy: values kept, peer appended',
    headers: { 'X-Forwarded-For': '198.51.100.1, 198.51.100.2', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'public.example' },
    ctx: { fromTrustedProxy: true, peer: '10.0.0.2', proto: 'http' },
    expect: { 'x-forwarded-for': '198.51.100.1, 198.51.100.2, 10.0.0.2', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'public.example' },
  },
  {
    name: 'untrusted peer: a client\'s X-Real-IP dropped',
    headers: { 'X-Real-IP': '1.1.1.1' },
    expect: { 'x-real-ip': undefined, 'x-forwarded-for': '203.0.113.7' },
  },
  {
    name: 'trusted proxy: its X-Real-IP kept',
    headers: { 'X-Real-IP': '198.51.100.1' }, ctx: { fromTrustedProxy: true, peer: '10.0.0.2' },
    expect: { 'x-real-ip': '198.51.100.1', 'x-forwarded-for': '10.0.0.2' },
  },
  {
    name: 'trusted proxy: an X-Real-IP with CR/LF dropped',
    headers: { 'x-real-ip': '198.51.100.1\r\nx-evil: 1' }, ctx: { fromTrustedProxy: true, peer: '10.0.0.2' },
    expect: { 'x-real-ip': undefined },
  },
  {
    name: 'trusted proxy without X-Forwarded-*: filled in like an untrusted peer',
    headers: {}, ctx: { fromTrustedProxy: true, peer: '10.0.0.2', proto: 'http' },
    expect: { 'x-forwarded-for': '10.0.0.2', 'x-forwarded-proto': 'http', 'x-forwarded-host': 'gw.example' },
  },
  // Identity headers and sanitising.
  {
    name: 'identity headers from the principal',
    headers: {}, ctx: { credential: null },
    expect: { 'x-auth-request-user': 'alice', 'x-auth-request-email': 'alice@example.com', 'x-auth-request-groups': 'readers,writers', authorization: undefined },
  },
  {
    name: 'no email, no groups: those headers absent',
    headers: { 'x-auth-request-email': 'forged', 'x-auth-request-groups': 'forged' },
    ctx: { principal: principal({ email: null, groups: [], groupsHeader: '' }) },
    expect: { 'x-auth-request-user': 'alice', 'x-auth-request-email': undefined, 'x-auth-request-groups': undefined },
  },
  {
    name: 'CR/LF/NUL in claims never forwarded',
    headers: {},
    ctx: { principal: principal({ sub: 'alice\r\nx-admin: 1', email: 'a@b\n', groupsHeader: 'readers\0admins' }) },
    expect: { 'x-auth-request-user': undefined, 'x-auth-request-email': undefined, 'x-auth-request-groups': undefined, 'x-admin': undefined },
  },
  {
    name: 'a principal marked header-safe (made from verified claims): its values forwarded as made, empty ones absent',
    headers: { 'x-auth-request-email': 'forged' },
    ctx: { principal: principal({ sub: 'bob', email: null, groups: [], groupsHeader: '', headerSafe: true }) },
    expect: { 'x-auth-request-user': 'bob', 'x-auth-request-email': undefined, 'x-auth-request-groups': undefined },
  },
  {
    name: 'a marked principal with groups: X-Auth-Request-Groups is its groups header',
    headers: { 'x-auth-request-groups': 'admins' },
    ctx: { principal: principal({ groups: ['g1', 'g2'], groupsHeader: 'g1,g2', headerSafe: true }) },
    expect: { 'x-auth-request-user': 'alice', 'x-auth-request-email': 'alice@example.com', 'x-auth-request-groups': 'g1,g2' },
  },
  { name: 'CR/LF in a client header value: dropped', headers: { 'x-custom': 'a\r\nb', 'x-fine': 'ok' }, expect: { 'x-custom': undefined, 'x-fine': 'ok' } },
  {
    // A client-credentials token is the IdP's string: scanned, and left out rather than sent broken.
    name: 'an unmarked credential with CR/LF (an IdP token): left out',
    headers: {}, ctx: { credential: { header: 'authorization', value: 'Bearer abc\r\nx-admin: 1' } },
    expect: { authorization: undefined, 'x-admin': undefined },
  },
  {
    name: 'a credential marked header-safe (a verified JWT, a checked api-key): forwarded',
    headers: {}, ctx: { credential: { header: 'authorization', value: 'Bearer eyJ.eyJ.sig', headerSafe: true } },
    expect: { authorization: 'Bearer eyJ.eyJ.sig' },
  },
  // Ordinary headers untouched.
  {
    name: 'content headers and others untouched; host rewritten',
    headers: { 'content-length': '42', 'content-type': 'application/json', accept: 'application/json', 'x-cdp-app': 'demo', 'set-cookie-like': 'v' },
    expect: { 'content-length': '42', 'content-type': 'application/json', accept: 'application/json', 'x-cdp-app': 'demo', host: 'upstream.internal:5000', 'set-cookie-like': 'v' },
  },
];

t.test('request headers: spoofing table', async (t) => {
  t.ok(rows.length >= 30, `${rows.length} rows`);
  for (const row of rows) {
    const input = req(row.headers);
    const before = JSON.stringify(input);
    const out = upstreamRequestHeaders(input, ctx(row.ctx));
    t.equal(JSON.stringify(input), before, `${row.name}: input not mutated`);
    for (const [name, want] of Object.entries(row.expect)) {
      if (want === undefined) t.notOk(name in out, `${row.name}: ${name} absent`);
      else t.same(out[name], want, `${row.name}: ${name}`);
    }
    for (const name of Object.keys(out)) t.equal(name, name.toLowerCase(), `${row.name}: ${name} is lower-case`);
    for (const v of Object.values(out)) {
      for (const s of Array.isArray(v) ? v : [v]) t.notMatch(s, /[\r\n\0]/, `${row.name}: no CR/LF/NUL`);
    }
  }
});

t.test('request headers: the full set from a hostile client', async (t) => {
  const out = upstreamRequestHeaders(req({
    authorization: 'Bearer forged', 'api-key': 'k', 'x-auth-request-user': 'root', x_auth_request_user: 'root',
    'x-forwarded-user': 'root', forwarded: 'for=x', connection: 'keep-alive', cookie: 'cdf-gw=s',
    accept: '*/*',
  }), ctx({ credential: { header: 'api-key', value: 'configured-key' } }));
  t.same(out, {
    accept: '*/*', host: 'upstream.internal:5000',
    'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'gw.example',
    'x-auth-request-user': 'alice', 'x-auth-request-email': 'alice@example.com', 'x-auth-request-groups': 'readers,writers',
    'api-key': 'configured-key',
  });
});

t.test('isGatewayCookieName', async (t) => {
  for (const n of ['cdf-gw', 'cdf-gw-0', 'cdf-gw.login', '__Host-cdf-gw', '__Host-cdf-gw-1', '__Secure-cdf-gw-s']) t.ok(isGatewayCookieName(n), n);
  for (const n of ['app', 'cdf', 'x-cdf-gw', '__Host-app', 'cdfgw', '_cdf-gw']) t.notOk(isGatewayCookieName(n), n);
});

t.test('response headers', async (t) => {
  const secret = 'configured-api-key-123';
  const cases: { name: string; upstream: Record<string, string | string[] | undefined>; secret?: string | null; expect: Record<string, string | string[] | undefined> }[] = [
    { name: 'gateway Set-Cookie (string) stripped', upstream: { 'set-cookie': 'cdf-gw=x; Path=/' }, expect: { 'set-cookie': undefined } },
    { name: '__Host- gateway Set-Cookie stripped', upstream: { 'set-cookie': '__Host-cdf-gw-0=x; Path=/; Secure' }, expect: { 'set-cookie': undefined } },
    { name: 'app Set-Cookie (string) kept', upstream: { 'set-cookie': 'app=1; Path=/' }, expect: { 'set-cookie': 'app=1; Path=/' } },
    { name: 'empty name (browsers send the value bare: cdf-gw-session=x)', upstream: { 'set-cookie': '=cdf-gw-session=x; Path=/' }, expect: { 'set-cookie': undefined } },
    { name: 'empty name, any value', upstream: { 'set-cookie': ['=x', ' =y; Path=/', 'app=1'] }, expect: { 'set-cookie': ['app=1'] } },
    { name: 'no = at all (an empty name to RFC 6265bis)', upstream: { 'set-cookie': ['cdf-gw-session', 'bare; Path=/', 'app=1'] }, expect: { 'set-cookie': ['app=1'] } },
    { name: 'cdf-gw anywhere in the name, any case', upstream: { 'set-cookie': ['x-cdf-gw=1', 'My-CDF-GW-pref=2', ' cdf-gw-session =3', 'app=cdf-gw'] }, expect: { 'set-cookie': ['app=cdf-gw'] } },
    { name: 'a ; before any = : the name is what precedes the ;', upstream: { 'set-cookie': ['cdf-gw; a=b', 'app=1'] }, expect: { 'set-cookie': ['app=1'] } },
    {
      name: 'Set-Cookie array: gateway entries stripped, app entries kept',
      upstream: { 'set-cookie': ['app=1; Path=/', 'cdf-gw=evil; Path=/', '__Secure-cdf-gw-login=x', 'theme=dark'] },
      expect: { 'set-cookie': ['app=1; Path=/', 'theme=dark'] },
    },
    { name: 'Set-Cookie array of only gateway cookies removed', upstream: { 'set-cookie': ['cdf-gw=a', 'cdf-gw-1=b'] }, expect: { 'set-cookie': undefined } },
    {
      name: 'header reflecting the secret dropped',
      upstream: { 'x-echo-api-key': secret, 'x-debug': `auth was Bearer ${secret}`, 'content-type': 'text/plain' }, secret,
      expect: { 'x-echo-api-key': undefined, 'x-debug': undefined, 'content-type': 'text/plain' },
    },
    {
      name: 'secret in one Set-Cookie entry: only that entry dropped',
      upstream: { 'set-cookie': [`leak=${secret}`, 'app=1'] }, secret, expect: { 'set-cookie': ['app=1'] },
    },
    { name: 'secret in an array header value dropped', upstream: { link: ['<a>', `<${secret}>`] }, secret, expect: { link: undefined } },
    { name: 'short secret not used for scrubbing', upstream: { 'x-n': 'abc' }, secret: 'abc', expect: { 'x-n': 'abc' } },
    { name: 'null secret: nothing scrubbed', upstream: { 'x-n': secret }, secret: null, expect: { 'x-n': secret } },
    {
      name: 'hop-by-hop dropped',
      upstream: { connection: 'keep-alive, x-hop', 'keep-alive': 'timeout=5', 'transfer-encoding': 'chunked', upgrade: 'h2c', trailer: 'x', 'proxy-authenticate': 'Basic', 'x-hop': '1', 'content-length': '5' },
      expect: { connection: undefined, 'keep-alive': undefined, 'transfer-encoding': undefined, upgrade: undefined, trailer: undefined, 'proxy-authenticate': undefined, 'x-hop': undefined, 'content-length': '5' },
    },
    { name: 'undefined values skipped, ordinary kept', upstream: { 'x-a': undefined, etag: '"1"' }, expect: { 'x-a': undefined, etag: '"1"' } },
  ];
  for (const c of cases) {
    const out = clientResponseHeaders(c.upstream, c.secret ?? null);
    for (const [name, want] of Object.entries(c.expect)) {
      if (want === undefined) t.notOk(name in out, `${c.name}: ${name} absent`);
      else t.same(out[name], want, `${c.name}: ${name}`);
    }
  }
});

t.test('response headers: no upstream software banners', async (t) => {
  const out = clientResponseHeaders({
    server: 'Apache/2.4.41 (Ubuntu)', 'x-powered-by': 'Express', 'X-AspNet-Version': '4.0.30319', 'x-aspnetmvc-version': '5.2',
    'content-type': 'text/plain', 'x-request-id': 'abc',
  }, null);
  t.same(out, { 'content-type': 'text/plain', 'x-request-id': 'abc' });
});

t.test('response headers: Cache-Control private for session-authenticated responses without one', async (t) => {
  t.equal(clientResponseHeaders({ 'content-type': 'text/html' }, null, { session: true })['cache-control'], 'private');
  t.equal(clientResponseHeaders({ 'Cache-Control': 'public, max-age=60' }, null, { session: true })['cache-control'], 'public, max-age=60', 'the upstream\'s own kept');
  t.equal(clientResponseHeaders({ 'cache-control': 'no-store' }, null, { session: true })['cache-control'], 'no-store');
  t.notOk('cache-control' in clientResponseHeaders({ 'content-type': 'text/html' }, null, { session: false }), 'bearer or public: untouched');
  t.notOk('cache-control' in clientResponseHeaders({ 'content-type': 'text/html' }, null), 'default: untouched');
});

t.test('response headers: Location rewritten only with redirect bases', async (t) => {
  const redirect = { upstreamOrigin: 'http://10.0.0.5:5000', upstreamPath: '/base', publicOrigin: 'https://gw.example', prefix: '/app' };
  t.equal(clientResponseHeaders({ location: 'http://10.0.0.5:5000/base/x' }, null, { redirect }).location, 'https://gw.example/app/x');
  t.equal(clientResponseHeaders({ location: 'http://10.0.0.5:5000/base/x' }, null).location, 'http://10.0.0.5:5000/base/x');
  t.same(clientResponseHeaders({ location: ['http://10.0.0.5:5000/base/x', '/y'] }, null, { redirect }).location, ['https://gw.example/app/x', '/y']);
});

/**
 * Headers as they go on the wire, (name, value) lines, a value list one line each, in the order
 * that carries meaning (RFC 9110 §5.3): by name, each name's lines in their order.
 */
function wire(h: Record<string, string | string[]>): Array<[string, string]> {
  const lines = Object.entries(h).flatMap(([k, v]) => (typeof v === 'string' ? [[k, v] as [string, string]] : v.map((x): [string, string] => [k, x])));
  return lines.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)); // stable: a name's lines keep their order
}

t.test('response headers from undici\'s raw list: the same lines as through parseHeaders and clientResponseHeaders', async (t) => {
  const secret = 'sekrit-api-key-123';
  const redirect = { upstreamOrigin: 'http://10.0.0.5:5000', upstreamPath: '/base', publicOrigin: 'https://gw.example', prefix: '/app' };
  const names = ['Content-Type', 'content-length', 'Set-Cookie', 'set-cookie', 'Location', 'Connection', 'connection', 'X-Hop', 'x-hop',
    'Keep-Alive', 'Transfer-Encoding', 'Server', 'X-Powered-By', 'Cache-Control', 'X-Request-Id', 'ETag', 'Vary', 'vary',
    '__proto__', 'constructor', 'toString', 'hasOwnProperty', '123', 'X-Multi', 'x-multi', 'Close', 'close'];
  const values = ['text/plain', '5', 'a=1; Path=/', 'cdf-gw-session=x; Path=/', '=bare', `k=${secret}`, 'http://10.0.0.5:5000/base/x', '/y',
    'keep-alive', 'close', 'close, X-Hop', 'X-Multi, vary', 'Keep-Alive, close', `bearer ${secret}`, 'no-store', '', 'é-latin1', '"etag"'];
  const pick = <T>(a: readonly T[]): T => a[Math.floor(Math.random() * a.length)]!;
  let differ = 0;
  let lines = 0;
  for (let i = 0; i < 3000; i++) {
    const raw: Buffer[] = [];
    for (let n = 1 + (i % 9); n > 0; n--) raw.push(Buffer.from(pick(names), 'latin1'), Buffer.from(pick(values), 'latin1'));
    const sec = i % 3 === 0 ? null : i % 3 === 1 ? secret : 'short';
    const ctx = { redirect: i % 2 === 0 ? redirect : null, session: i % 5 === 0 };
    const ours = wire(clientResponseHeadersRaw(raw, sec, ctx));
    const theirs = wire(clientResponseHeaders(undiciUtil.parseHeaders(raw) as Record<string, string | string[] | undefined>, sec, ctx));
    lines += theirs.length;
    if (JSON.stringify(ours) !== JSON.stringify(theirs)) {
      if (differ++ === 0) t.same(ours, theirs, `first difference: ${JSON.stringify(raw.map(String))}`);
    }
  }
  t.equal(differ, 0, 'no header list goes out differently');
  t.ok(lines > 3000, `the lists kept something to compare (${lines} lines)`);

  // Spot checks that hold whatever the random draw.
  const raw = (...kv: string[]): Buffer[] => kv.map((x) => Buffer.from(x, 'latin1'));
  t.same(clientResponseHeadersRaw(raw('X-Hop', '1', 'Connection', 'x-hop', 'ETag', '"1"'), null), { etag: '"1"' }, 'Connection names a header before it');
  t.same(clientResponseHeadersRaw(raw('X-A', 'ok', 'x-a', `v ${secret}`, 'X-A', 'again', 'Vary', 'a'), secret), { vary: 'a' }, 'a value holding the secret drops the header, every value');
  t.same(clientResponseHeadersRaw(raw('Set-Cookie', 'a=1', 'set-cookie', 'cdf-gw-x=2', 'Set-Cookie', 'b=3'), null), { 'set-cookie': ['a=1', 'b=3'] }, 'cookies judged one by one, merged');
  t.same(clientResponseHeadersRaw(raw('constructor', 'c', '__proto__', 'p', 'Vary', 'a', 'vary', 'b'), null), { constructor: 'c', vary: ['a', 'b'] }, 'prototype names: own headers, __proto__ dropped');
});
