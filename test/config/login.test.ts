// The `login:` section and its links to `issuers` and `routes`.
import t from 'tap';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ConfigError, parseConfig, type ConfigProblem } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/types.js';

type Obj = Record<string, unknown>;
const SECRET = 's'.repeat(32);

const project = (over: Obj = {}): Obj => ({ issuer: 'https://idp.example', clientId: 'gw', clientSecret: 'cs', ...over });
const login = (over: Obj = {}): Obj => ({ cookieSecret: SECRET, projects: { demo: project() }, ...over });
const cfg = (loginSection: Obj | undefined, routeOver: Obj = {}): Obj => ({
  issuers: [{ issuer: 'https://idp.example', audiences: ['https://cdf.example'] }],
  upstreams: { cdf: { url: 'http://127.0.0.1:5000', credentials: { type: 'user-token' } } },
  routes: [{ prefix: '/api/', upstream: 'cdf', allow: [{ groups: ['readers'] }], ...routeOver }],
  ...(loginSection === undefined ? {} : { login: loginSection }),
});

function parse(c: Obj, env: Record<string, string> = {}, baseDir = '/nonexistent'): GatewayConfig {
  return parseConfig(stringify(c), { env, baseDir });
}
function problems(c: Obj, env: Record<string, string> = {}, baseDir = '/nonexistent'): ConfigProblem[] {
  try { parse(c, env, baseDir); } catch (e) { if (e instanceof ConfigError) return [...e.problems]; throw e; }
  throw new Error('expected a ConfigError');
}

t.test('defaults', async (t) => {
  const c = parse(cfg(login(), { login: 'demo' }));
  t.strictSame(c.login, {
    cookieSecrets: [SECRET], sessionTtlSec: 28800, idleTimeoutSec: 3600, sessionStore: 'cookie', redis: null,
    allowedRedirectOrigins: [], refreshBeforeSec: 60, flowTtlSec: 600,
    projects: { demo: {
      name: 'demo', issuer: 'https://idp.example', clientId: 'gw', clientSecret: 'cs', tokenEndpointAuthMethod: 'client_secret_basic',
      scopes: ['openid', 'profile', 'email', 'offline_access'], resource: null, authorizationParams: {}, errorRedirect: null,
    } },
  });
  t.equal(c.routes[0]?.login, 'demo');
  t.equal(parse(cfg(undefined)).login, null, 'no login section → null');
  t.ok(Object.isFrozen(c.login?.projects.demo), 'frozen');
});

t.test('cookie secrets: one, a list (rotation), or a file with one per line', async (t) => {
  t.strictSame(parse(cfg(login({ cookieSecret: [SECRET, 'o'.repeat(40)] }))).login?.cookieSecrets, [SECRET, 'o'.repeat(40)]);
  const dir = t.testdir({ 'keys.txt': `${'n'.repeat(32)}\n${'o'.repeat(32)}\n` });
  const { cookieSecret: _, ...rest } = login();
  t.strictSame(parse(cfg({ ...rest, cookieSecretFile: 'keys.txt' }), {}, dir).login?.cookieSecrets, ['n'.repeat(32), 'o'.repeat(32)]);
  t.strictSame(parse(cfg(login({ cookieSecret: '${K}' })), { K: SECRET }).login?.cookieSecrets, [SECRET]);
  const short = t.testdir({ 'keys.txt': `${'n'.repeat(32)}\nshort\n` });
  t.match(problems(cfg({ ...rest, cookieSecretFile: 'keys.txt' }), {}, short), [{ path: 'login.cookieSecretFile', reason: /line 2: must be at least 32 bytes/ }]);
  t.ok(join(short, 'keys.txt'));
});

const BAD: Array<[string, Obj, string, RegExp]> = [
  ['missing cookie secret', cfg({ projects: { demo: project() } }), 'login.cookieSecret', /required/],
  ['short cookie secret', cfg(login({ cookieSecret: 'short' })), 'login.cookieSecret', /at least 32 bytes/],
  ['short secret in a list', cfg(login({ cookieSecret: [SECRET, 'x'] })), 'login.cookieSecret[1]', /at least 32 bytes/],
  ['no projects', cfg(login({ projects: {} })), 'login.projects', /at least one project/],
  ['project name not CDF-like', cfg(login({ projects: { Demo_1: project() } })), 'login.projects.Demo_1', /lower-case/],
  ['issuer not trusted', cfg(login({ projects: { demo: project({ issuer: 'https://other.example' }) } })), 'login.projects.demo.issuer', /listed under issuers/],
  ['resource not an audience', cfg(login({ projects: { demo: project({ resource: 'https://x.example' }) } })), 'login.projects.demo.resource', /issuer's audiences/],
  ['scopes without openid', cfg(login({ projects: { demo: project({ scopes: ['profile'] }) } })), 'login.projects.demo.scopes', /openid/],
  ['auth param the flow owns', cfg(login({ projects: { demo: project({ authorizationParams: { redirect_uri: 'x' } }) } })), 'login.projects.demo.authorizationParams.redirect_uri', /set by the gateway/],
  ['bad auth method', cfg(login({ projects: { demo: project({ tokenEndpointAuthMethod: 'private_key_jwt' }) } })), 'login.projects.demo.tokenEndpointAuthMethod', /must be one of/],
  ['bad errorRedirect', cfg(login({ projects: { demo: project({ errorRedirect: 'javascript:alert(1)' }) } })), 'login.projects.demo.errorRedirect', /path starting with/],
  ['redis store without redis', cfg(login({ sessionStore: 'redis' })), 'login.redis', /required when sessionStore is redis/],
  ['redis url scheme', cfg(login({ sessionStore: 'redis', redis: { url: 'http://r:6379' } })), 'login.redis.url', /redis:\/\//],
  ['redis password in url', cfg(login({ sessionStore: 'redis', redis: { url: 'redis://:pw@r:6379' } })), 'login.redis.url', /must not contain a password/],
  ['unknown store', cfg(login({ sessionStore: 'memcached' })), 'login.sessionStore', /must be one of cookie, redis/],
  ['typo in login key', cfg(login({ sesionTtlSec: 10 })), 'login.sesionTtlSec', /did you mean "sessionTtlSec"/],
  ['redirect origin with a path', cfg(login({ allowedRedirectOrigins: ['https://app.example/x'] })), 'login.allowedRedirectOrigins[0]', /must be an origin/],
  ['ttl too short', cfg(login({ sessionTtlSec: 5 })), 'login.sessionTtlSec', /between 60/],
  ['route names an unknown project', cfg(login(), { login: 'other' }), 'routes[0].login', /one of the login projects \(demo\)/],
  ['route login without a login section', cfg(undefined, { login: 'demo' }), 'routes[0].login', /needs a login section/],
];

for (const [name, c, path, reason] of BAD) {
  t.test(`refused: ${name}`, async (t) => {
    const ps = problems(c);
    t.strictSame(ps.map((p) => p.path), [path]);
    t.match(ps[0]?.reason, reason);
  });
}

t.test('secrets never appear in problem reasons', async (t) => {
  const ps = problems(cfg(login({ cookieSecret: 'hunter2-short', projects: { demo: project({ clientSecret: 'topsecret', issuer: 'https://nope.example' }) } })));
  t.ok(ps.length >= 1);
  t.notMatch(JSON.stringify(ps), /hunter2|topsecret/);
});

t.test('a public client has no secret; redis options are read', async (t) => {
  const c = parse(cfg(login({
    sessionStore: 'redis', redis: { url: 'redis://127.0.0.1:6379', password: 'pw', keyPrefix: 'x:' },
    projects: { demo: project({ clientSecret: null, resource: 'https://cdf.example', authorizationParams: { prompt: 'select_account' } }) },
  })));
  t.equal(c.login?.projects.demo?.clientSecret, null);
  t.strictSame(c.login?.redis, { url: 'redis://127.0.0.1:6379', password: 'pw', keyPrefix: 'x:' });
  t.strictSame(c.login?.projects.demo?.authorizationParams, { prompt: 'select_account' });
});

t.test('a client secret must be form-urlencodable: a lone surrogate is refused, unquoted', async (t) => {
  const ps = problems(cfg(login({ projects: { demo: project({ clientSecret: 'topsecret\ud800' }) } })));
  t.strictSame(ps.map((p) => p.path), ['login.projects.demo.clientSecret']);
  t.match(ps[0]?.reason, /well-formed Unicode/);
  t.notMatch(ps[0]?.reason, /topsecret/);
  t.equal(parse(cfg(login({ projects: { demo: project({ clientSecret: 'top\u4e2dsecret\u{1f511}' }) } }))).login?.projects.demo?.clientSecret,
    'top\u4e2dsecret\u{1f511}');
});
