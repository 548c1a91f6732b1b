// Rules between keys: only two explicitly set values can conflict, and every such problem is
// reported in the same run as the rest, even when the sections involved have other problems.
import t from 'tap';
import { parse, problems, withSections, type Obj } from '../fixtures/config.js';

const SECRET = 's'.repeat(32);
const login = (projects: Obj, over: Obj = {}): Obj => ({ cookieSecret: SECRET, projects, ...over });

t.test('two explicit values that contradict each other', async (t) => {
  const rows: Array<[string, Obj, string, string]> = [
    ['cache age above max stale', { tokens: { jwksCacheMaxAgeMs: 600000, jwksMaxStaleMs: 300000 } },
      'tokens.jwksMaxStaleMs', '300000 must be at least tokens.jwksCacheMaxAgeMs (600000)'],
    ['token limit not below header limit', { tokens: { maxTokenBytes: 8192 }, server: { maxHeaderBytes: 8192 } },
      'tokens.maxTokenBytes', '8192 must be less than server.maxHeaderBytes (8192)'],
    ['headers timeout above request timeout', { server: { headersTimeoutMs: 20000, requestTimeoutMs: 5000 } },
      'server.headersTimeoutMs', '20000 must not exceed server.requestTimeoutMs (5000)'],
    ['one port for both listeners', { server: { port: 9000 }, admin: { port: 9000 } },
      'admin.port', '9000 must differ from server.port (9000) on the same host'],
  ];
  for (const [name, over, path, reason] of rows) {
    t.strictSame(problems(withSections(over)), [{ path, reason }], name);
  }
  t.equal(parse(withSections({ server: { port: 0 }, admin: { port: 0 } })).admin.port, 0, 'two ephemeral ports never clash');
  const clash = (s: Obj, a: Obj) => problems(withSections({ server: s, admin: a }));
  t.strictSame(clash({ port: 8080 }, { host: 'localhost', port: 8080 }), [{ path: 'admin.port',
    reason: '8080 must differ from server.port (8080) while admin.host (localhost) and server.host (127.0.0.1) may be the same interface' }],
  'a host name and the default server host may be one interface');
  t.strictSame(clash({ host: '::', port: 8080 }, { host: '10.0.0.5', port: 8080 }).map((p) => p.path), ['admin.port'], 'a wildcard clashes with any host');
  t.strictSame(clash({ host: '::ffff:127.0.0.1', port: 8080 }, { port: 8080 }).map((p) => p.path), ['admin.port'], 'IPv4-mapped');
  t.equal(parse(withSections({ server: { host: '::1', port: 8080 }, admin: { port: 8080 } })).admin.port, 8080, 'distinct addresses may share a port');
});

t.test('login.sessionStore follows login.redis', async (t) => {
  const projects = { demo: { issuer: 'https://idp.example', clientId: 'gw' } };
  const c = parse(withSections({ login: login(projects, { redis: { url: 'redis://127.0.0.1:6379' } }) }));
  t.equal(c.login?.sessionStore, 'redis', 'giving redis selects the redis store');
  t.equal(parse(withSections({ login: login(projects) })).login?.sessionStore, 'cookie');
  t.strictSame(problems(withSections({ login: login(projects, { sessionStore: 'cookie', redis: { url: 'redis://r:6379' } }) })),
    [{ path: 'login.redis', reason: 'is set, but sessionStore is cookie: remove one of the two' }]);
});

t.test('every problem in one run, cross-key ones included', async (t) => {
  const ps = problems(withSections({
    server: { port: 'x', maxHeaderBytes: 8192 },
    tokens: { maxTokenBytes: 9000, clockToleranceSec: 999 },
    admin: { port: 70000 },
    issuers: [
      { issuer: 'https://idp.example', audiences: ['https://cdf.example'], algorithms: ['HS256'] },
      { issuer: 'https://other.example', audiences: [] },
    ],
    login: login({
      demo: { issuer: 'https://unknown.example', clientId: 'gw' },
      ops: { issuer: 'https://idp.example', clientId: 'gw', resource: 'https://nope.example', scopes: ['profile'] },
    }, { sessionTtlSec: 1 }),
    routes: [
      { prefix: '/api/', upstream: 'nope', allow: [{ groups: ['g'] }], login: 'missing' },
      { prefix: '/auth/x', upstream: 'cdf', public: true },
    ],
  }));
  t.strictSame(ps.map((p) => `${p.path}: ${p.reason}`), [
    'server.port: "x" must be an integer',
    'admin.port: 70000 must be between 0 and 65535',
    'tokens.clockToleranceSec: 999 must be between 0 and 300',
    'issuers[0].algorithms[0]: "HS256" is symmetric or unsigned: such algorithms are never accepted',
    'issuers[1].audiences: must not be empty',
    'login.sessionTtlSec: 1 must be between 60 and 2592000',
    'login.projects.ops.scopes: must include openid',
    'routes[0].upstream: "nope" is not one of the upstreams (cdf)',
    'routes[0].login: "missing" is not one of the login projects (demo, ops)',
    'routes[1].prefix: "/auth/x" is reserved for the gateway (/auth and /login, and everything under them)',
    'tokens.maxTokenBytes: 9000 must be less than server.maxHeaderBytes (8192)',
    'login.projects.demo.issuer: "https://unknown.example" is not listed under issuers (the session\'s access token is verified like a bearer token)',
    'login.projects.ops.resource: "https://nope.example" is not one of the issuer\'s audiences (https://cdf.example)',
  ]);
});

t.test('issuers may be empty only when every route is public', async (t) => {
  t.strictSame(problems(withSections({ issuers: [], routes: [{ prefix: '/a', upstream: 'nope', public: true }, { prefix: '/b', upstream: 'cdf', allow: [{}] }] })), [
    { path: 'routes[0].upstream', reason: '"nope" is not one of the upstreams (cdf)' },
    { path: 'issuers', reason: 'must list at least one issuer (only a configuration whose routes are all public may omit them)' },
  ], 'reported alongside a broken route');
  t.strictSame(parse(withSections({ issuers: [], routes: [{ prefix: '/a', upstream: 'cdf', public: true }] })).issuers, []);
});
