import t, { type Test } from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ConfigError, loadConfigFile, parseConfig, type ConfigProblem } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/types.js';
import { upstreamRequestHeaders } from '../../src/upstream/headers.js';

type Env = Record<string, string | undefined>;
type Obj = Record<string, unknown>;

const base = (): Obj => ({
  issuers: [{ issuer: 'https://idp.example', audiences: ['https://cdf.example'] }],
  upstreams: { cdf: { url: 'http://127.0.0.1:5000', credentials: { type: 'user-token' } } },
  routes: [{ prefix: '/api/', upstream: 'cdf', allow: [{ groups: ['readers'] }] }],
});

/** base() with `over` merged in at top level. */
const cfg = (over: Obj = {}): Obj => ({ ...base(), ...over });
const withUpstream = (u: Obj): Obj => cfg({ upstreams: { cdf: u } });
const withRoutes = (...routes: Obj[]): Obj => cfg({ routes });

function parse(config: Obj | string, env: Env = {}, baseDir = '/nonexistent'): GatewayConfig {
  return parseConfig(typeof config === 'string' ? config : stringify(config), { env, baseDir });
}

function problems(config: Obj | string, env: Env = {}, baseDir = '/nonexistent'): ConfigProblem[] {
  try {
    parse(config, env, baseDir);
  } catch (e) {
    if (e instanceof ConfigError) return [...e.problems];
    throw e;
  }
  throw new Error('expected a ConfigError');
}

const paths = (ps: ConfigProblem[]) => ps.map((p) => p.path);

/** Asserts exactly one problem, at `path`, whose reason matches `reason`. */
function oneProblem(t: Test, config: Obj | string, path: string, reason: RegExp | string, env: Env = {}, baseDir?: string): void {
  const ps = problems(config, env, baseDir);
  t.strictSame(paths(ps), [path], `one problem at ${path}`);
  if (typeof reason === 'string') t.equal(ps[0]?.reason, reason);
  else t.match(ps[0]?.reason, reason);
}

// CDF-aware keys (config/cdf.ts) every issuer and rule gets.
const ISSUER_DEFAULTS = { profile: 'generic', groupsClaim: null, scopesClaim: null, audienceClaim: null, groupsOverage: null };
const RULE_DEFAULTS = { cdf: null, project: null, capabilities: null };

t.test('fills in every default', async (t) => {
  const c = parse(base());
  t.strictSame(c, {
    server: {
      host: '127.0.0.1', port: 8080, publicUrl: 'http://127.0.0.1:8080', publicUrlSet: false, trustedProxies: [],
      maxHeaderBytes: 32768, maxBodyBytes: null, headersTimeoutMs: 10000, requestTimeoutMs: 0,
      keepAliveTimeoutMs: 72000, shutdownTimeoutMs: 10000, bodyIdleTimeoutMs: 30000,
    },
    admin: { host: '127.0.0.1', port: 9090 },
    log: { level: 'info', accessLog: true, requestContext: 'auto' },
    issuers: [{ issuer: 'https://idp.example', jwksUri: null, audiences: ['https://cdf.example'], algorithms: ['RS256'], ...ISSUER_DEFAULTS }],
    tokens: {
      jwksTimeoutMs: 1000, jwksCooldownMs: 30000, jwksCacheMaxAgeMs: 600000, jwksMaxStaleMs: 3600000, jwksMaxBytes: 1048576,
      clockToleranceSec: 30, maxTokenBytes: 12288, maxTokenBytesSet: false, cacheSize: 10000,
    },
    upstreams: { cdf: { name: 'cdf', url: 'http://127.0.0.1:5000', timeoutMs: 30000, credentials: { type: 'user-token' } } },
    routes: [{ prefix: '/api/', upstream: 'cdf', rewritePrefix: null, public: false, websockets: true, allow: [{ methods: null, groups: ['readers'], scopes: null, subjects: null, ...RULE_DEFAULTS }], login: null, cors: null }],
    login: null,
    redis: null,
    tracing: null,
  });
});

t.test('client-credentials and api-key defaults', async (t) => {
  const c = parse(cfg({
    upstreams: {
      svc: { url: 'https://svc.example/base/', credentials: { type: 'client-credentials', tokenUrl: 'https://idp.example/token', clientId: 'svc', clientSecret: 's3cret' } },
      key: { url: 'http://127.0.0.1:6000', credentials: { type: 'api-key', value: 'k' } },
      open: { url: 'http://127.0.0.1:7000', credentials: { type: 'none' } },
    },
    routes: [{ prefix: '/svc', upstream: 'svc', allow: [{}] }],
  }));
  t.strictSame(c.upstreams.svc, {
    name: 'svc', url: 'https://svc.example/base', timeoutMs: 30000,
    credentials: {
      type: 'client-credentials', tokenUrl: 'https://idp.example/token', clientId: 'svc', clientSecret: 's3cret',
      scopes: [], resource: null, audience: null, tokenEndpointAuthMethod: 'client_secret_basic', renewBeforeSec: 60, timeoutMs: 5000,
    },
  });
  t.strictSame(c.upstreams.key?.credentials, { type: 'api-key', header: 'api-key', value: 'k' });
  t.strictSame(c.upstreams.open?.credentials, { type: 'none' });
  t.strictSame(c.routes[0]?.allow, [{ methods: null, groups: null, scopes: null, subjects: null, ...RULE_DEFAULTS }], 'an empty rule means any authenticated caller');
});

t.test('${NAME} substitution', async (t) => {
  t.test('whole and partial values, numbers and booleans from the environment', async (t) => {
    const c = parse(cfg({
      server: { port: '${PORT}', publicUrl: 'https://${HOST}' },
      log: { accessLog: '${ACCESS}' },
      upstreams: { cdf: { url: 'http://127.0.0.1:5000', credentials: { type: 'api-key', value: '${KEY}' } } },
      routes: [{ prefix: '/api/', upstream: 'cdf', allow: [{ groups: ['pre-${G}-post'] }] }],
    }), { PORT: '8443', HOST: 'gw.example', ACCESS: 'false', KEY: 'a: b, [c] #d', G: 'g' });
    t.equal(c.server.port, 8443);
    t.equal(c.server.publicUrl, 'https://gw.example');
    t.equal(c.log.accessLog, false);
    t.equal((c.upstreams.cdf?.credentials as { value: string }).value, 'a: b, [c] #d', 'an env value is never parsed as YAML');
    t.strictSame(c.routes[0]?.allow[0]?.groups, ['pre-g-post']);
  });

  t.test('$${ is a literal ${', async (t) => {
    const c = parse(withRoutes({ prefix: '/api/', upstream: 'cdf', allow: [{ groups: ['$${NOT_A_VAR}', 'x$${A}${A}'] }] }), { A: 'a' });
    t.strictSame(c.routes[0]?.allow[0]?.groups, ['${NOT_A_VAR}', 'x${A}a']);
  });

  t.test('an unset variable is a problem at its key path', async (t) => {
    const ps = problems(cfg({
      server: { port: '${PORT}' },
      upstreams: { cdf: { url: 'http://127.0.0.1:5000', credentials: { type: 'api-key', value: 'x${KEY}' } } },
    }), { PORT: undefined });
    t.strictSame(ps, [
      { path: 'server.port', reason: 'environment variable PORT is not set' },
      { path: 'upstreams.cdf.credentials.value', reason: 'environment variable KEY is not set' },
    ]);
  });

  t.test('a malformed reference is a problem', async (t) => {
    oneProblem(t, withRoutes({ prefix: '/api/', upstream: 'cdf', allow: [{ groups: ['${1X}'] }] }), 'routes[0].allow[0].groups[0]', /invalid \$\{…\} reference/);
    oneProblem(t, withRoutes({ prefix: '/api/', upstream: 'cdf', allow: [{ groups: ['${X'] }] }), 'routes[0].allow[0].groups[0]', /invalid \$\{…\} reference/);
  });

  t.test('numbers and booleans must be valid after substitution; literal strings are not numbers', async (t) => {
    oneProblem(t, cfg({ server: { port: '${PORT}' } }), 'server.port', '"eighty" must be an integer', { PORT: 'eighty' });
    oneProblem(t, cfg({ server: { port: '${PORT}' } }), 'server.port', '70000 must be between 0 and 65535', { PORT: '70000' });
    oneProblem(t, cfg({ server: { port: '8080' } }), 'server.port', '"8080" must be an integer');
    oneProblem(t, cfg({ log: { accessLog: '${A}' } }), 'log.accessLog', '"yes" must be true or false', { A: 'yes' });
  });
});

t.test('*File secrets', async (t) => {
  const dir = t.testdir({
    'client-secret': 'from-file\n\n',
    'api-key.txt': 'key-from-file\r\n',
    empty: '\n',
    sub: { 'gw.yaml': '' },
  });
  const cc = (creds: Obj) => withUpstream({
    url: 'http://127.0.0.1:5000',
    credentials: { type: 'client-credentials', tokenUrl: 'https://idp.example/token', clientId: 'svc', ...creds },
  });

  t.test('read relative to baseDir, one trailing newline stripped', async (t) => {
    const c = parse(cc({ clientSecretFile: 'client-secret' }), {}, dir);
    t.equal((c.upstreams.cdf?.credentials as { clientSecret: string }).clientSecret, 'from-file\n');
    const k = parse(withUpstream({ url: 'http://127.0.0.1:5000', credentials: { type: 'api-key', valueFile: '${SECRETS}/api-key.txt' } }), { SECRETS: dir }, '/elsewhere');
    t.equal((k.upstreams.cdf?.credentials as { value: string }).value, 'key-from-file', 'CRLF stripped; absolute path from env');
  });

  t.test('loadConfigFile resolves *File against the config file directory', async (t) => {
    const file = join(dir, 'sub', 'gw.yaml');
    writeFileSync(file, stringify(cc({ clientSecretFile: '../client-secret' })));
    const c = loadConfigFile(file, {});
    t.equal((c.upstreams.cdf?.credentials as { clientSecret: string }).clientSecret, 'from-file\n');
  });

  t.test('both given', async (t) => {
    oneProblem(t, cc({ clientSecret: 'x', clientSecretFile: 'client-secret' }), 'upstreams.cdf.credentials.clientSecret',
      'give either clientSecret or clientSecretFile, not both', {}, dir);
  });
  t.test('neither given', async (t) => {
    oneProblem(t, cc({}), 'upstreams.cdf.credentials.clientSecret', 'required (or clientSecretFile)', {}, dir);
    oneProblem(t, withUpstream({ url: 'http://127.0.0.1:5000', credentials: { type: 'api-key' } }), 'upstreams.cdf.credentials.value', 'required (or valueFile)');
  });
  t.test('missing file', async (t) => {
    oneProblem(t, cc({ clientSecretFile: 'nope' }), 'upstreams.cdf.credentials.clientSecretFile', /cannot read file .*nope \(ENOENT\)/, {}, dir);
  });
  t.test('empty file', async (t) => {
    oneProblem(t, cc({ clientSecretFile: 'empty' }), 'upstreams.cdf.credentials.clientSecretFile', /is empty/, {}, dir);
  });
  t.test('an api-key value may not contain control characters', async (t) => {
    oneProblem(t, withUpstream({ url: 'http://127.0.0.1:5000', credentials: { type: 'api-key', value: 'a\r\nX-Evil: 1' } }),
      'upstreams.cdf.credentials.value', 'must not contain CR, LF or NUL (it is sent as a header value)');
  });
  t.test('an api-key value must be one the upstream request can carry, and is never quoted', async (t) => {
    const key = (value: string) => withUpstream({ url: 'http://127.0.0.1:5000', credentials: { type: 'api-key', value } });
    oneProblem(t, key('APISECRET\u4e2d\u6587'), 'upstreams.cdf.credentials.value',
      'must contain only ASCII or latin1 characters (up to U+00FF; it is sent as a header value)');
    oneProblem(t, key('APISECRET\u0001'), 'upstreams.cdf.credentials.value',
      'must not contain control characters other than tab (it is sent as a header value)');
    oneProblem(t, key('APISECRET\u007f'), 'upstreams.cdf.credentials.value', /control characters/);
    for (const v of ['APISECRET\u4e2d', 'APISECRET\u0001', 'APISECRET\u007f', 'APISECRET\r']) {
      t.notMatch(problems(key(v))[0]?.reason, /APISECRET/, 'the value is not quoted');
    }
    // The same from valueFile and from ${NAME}.
    oneProblem(t, withUpstream({ url: 'http://127.0.0.1:5000', credentials: { type: 'api-key', value: '${KEY}' } }),
      'upstreams.cdf.credentials.value', /ASCII or latin1/, { KEY: 'k\u20ac' });
    const c = parse(key('caf\u00e9\tkey ~'));
    t.equal((c.upstreams.cdf?.credentials as { value: string }).value, 'caf\u00e9\tkey ~', 'latin1 and tab pass');
  });
  t.test('an api-key value passes check exactly when the upstream request carries it', async (t) => {
    const samples = ['plain', 'caf\u00e9', '\u00ff', '\u0100', '\u4e2d', '\u{1f511}', 'a\tb', 'a\u0000b', 'a\u0008', 'a\u000b',
      'a\u001f', 'a\u007f', 'a\u0080', 'a\u009f', ' lead', 'trail ', 'a\rb', 'a\nb', '\ud800'];
    for (const value of samples) {
      let accepted: boolean;
      try {
        parse(withUpstream({ url: 'http://127.0.0.1:5000', credentials: { type: 'api-key', value } }));
        accepted = true;
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        accepted = false;
      }
      const out = upstreamRequestHeaders({ host: 'gw.example' }, {
        peer: '127.0.0.1', proto: 'http', fromTrustedProxy: false, principal: null,
        credential: { header: 'api-key', value }, upstreamHost: 'u:1',
      });
      t.equal(accepted, out['api-key'] === value, `${JSON.stringify(value)}: check and runtime agree`);
    }
  });
});

t.test('reports every problem at once', async (t) => {
  const ps = problems({
    server: { port: 99999, trustedProxies: ['10.0.0.0/33'] },
    tokens: { clockToleranceSec: 301 },
    issuers: [{ issuer: 'not a url', audiences: [] }],
    upstreams: {
      cdf: { url: 'http://127.0.0.1:5000?x=1', credentials: { type: 'client-credentials', clientId: 'svc', clientSecret: 's' } },
    },
    routes: [
      { prefix: 'api', upstream: 'cdf', allow: [{ groups: ['g'] }] },
      { prefix: '/b', upstream: 'nope', alow: [{ groups: ['g'] }] },
    ],
  });
  t.strictSame(paths(ps), [
    'server.port',
    'server.trustedProxies[0]',
    'tokens.clockToleranceSec',
    'issuers[0].issuer',
    'issuers[0].audiences',
    'upstreams.cdf.url',
    'upstreams.cdf.credentials.tokenUrl',
    'routes[0].prefix',
    'routes[1].alow',
    'routes[1].upstream',
    'routes[1].allow',
  ]);
  try {
    parse({ ...base(), tokens: { clockToleranceSec: 301 }, log: { level: 'loud' } });
    t.fail('should throw');
  } catch (e) {
    t.ok(e instanceof ConfigError);
    t.equal((e as Error).message,
      'log.level: "loud" must be one of fatal, error, warn, info, debug, trace, silent\ntokens.clockToleranceSec: 301 must be between 0 and 300',
      'the message lists every problem, one per line');
  }
});

t.test('unknown keys', async (t) => {
  t.test('at every level, with a suggestion for near typos', async (t) => {
    oneProblem(t, withRoutes(
      { prefix: '/a', upstream: 'cdf', allow: [{}] }, { prefix: '/b', upstream: 'cdf', allow: [{}] },
      { prefix: '/c', upstream: 'cdf', allow: [{}], alow: [] },
    ), 'routes[2].alow', 'unknown key; did you mean "allow"?');
    oneProblem(t, cfg({ tokens: { clockTolerance: 5 } }), 'tokens.clockTolerance', 'unknown key; did you mean "clockToleranceSec"?');
    oneProblem(t, cfg({ issuers: [{ issuer: 'https://i.example', audience: ['a'], audiences: ['a'] }] }), 'issuers[0].audience', 'unknown key; did you mean "audiences"?');
    oneProblem(t, withRoutes({ prefix: '/a', upstream: 'cdf', allow: [{ group: ['g'] }] }), 'routes[0].allow[0].group', 'unknown key; did you mean "groups"?');
    oneProblem(t, cfg({ frobnicate: true }), 'frobnicate', 'unknown key');
  });
  t.test('a key of another credential type says so', async (t) => {
    oneProblem(t, withUpstream({ url: 'http://127.0.0.1:5000', credentials: { type: 'user-token', tokenUrl: 'https://x.example' } }),
      'upstreams.cdf.credentials.tokenUrl', 'unknown key (used by type client-credentials, not user-token)');
  });
});

t.test('issuers', async (t) => {
  t.test('required and non-empty unless every route is public', async (t) => {
    const { issuers: _, ...noIssuers } = base();
    oneProblem(t, noIssuers, 'issuers', 'required');
    oneProblem(t, cfg({ issuers: [] }), 'issuers', /must list at least one issuer/);
    const c = parse(cfg({ issuers: [], routes: [{ prefix: '/status', upstream: 'cdf', public: true }] }));
    t.strictSame(c.issuers, []);
    t.strictSame(c.routes[0]?.allow, []);
  });
  t.test('issuer is an http(s) URL kept exactly as written', async (t) => {
    const c = parse(cfg({ issuers: [{ issuer: 'http://idp.example/tenant/', audiences: ['a'] }] }));
    t.equal(c.issuers[0]?.issuer, 'http://idp.example/tenant/');
    oneProblem(t, cfg({ issuers: [{ issuer: 'ftp://idp.example', audiences: ['a'] }] }), 'issuers[0].issuer', '"ftp://idp.example" must be an http(s) URL');
    oneProblem(t, cfg({ issuers: [{ issuer: 'https://idp.example ', audiences: ['a'] }] }), 'issuers[0].issuer', /whitespace/);
    oneProblem(t, cfg({ issuers: [{ issuer: 'https://idp.example?x', audiences: ['a'] }] }), 'issuers[0].issuer', '"https://idp.example?x" must not have a query');
    oneProblem(t, cfg({ issuers: [{ issuer: 'https://u:p@idp.example', audiences: ['a'] }] }), 'issuers[0].issuer', /credentials/);
    oneProblem(t, cfg({ issuers: [{ issuer: 'https://idp.example', jwksUri: 'idp.example/jwks', audiences: ['a'] }] }), 'issuers[0].jwksUri', '"idp.example/jwks" must be an http(s) URL');
  });
  t.test('audiences non-empty', async (t) => {
    oneProblem(t, cfg({ issuers: [{ issuer: 'https://idp.example', audiences: [] }] }), 'issuers[0].audiences', 'must not be empty');
    oneProblem(t, cfg({ issuers: [{ issuer: 'https://idp.example' }] }), 'issuers[0].audiences', 'required');
    oneProblem(t, cfg({ issuers: [{ issuer: 'https://idp.example', audiences: [''] }] }), 'issuers[0].audiences[0]', 'must not be empty');
  });
  t.test('algorithms', async (t) => {
    const c = parse(cfg({ issuers: [{ issuer: 'https://idp.example', audiences: ['a'], algorithms: ['ES256', 'EdDSA'] }] }));
    t.strictSame(c.issuers[0]?.algorithms, ['ES256', 'EdDSA']);
    const sym = (alg: string) => `"${alg}" is symmetric or unsigned: such algorithms are never accepted`;
    const ps = problems(cfg({ issuers: [{ issuer: 'https://idp.example', audiences: ['a'], algorithms: ['none', 'HS256', 'rs256'] }] }));
    t.strictSame(ps, [
      { path: 'issuers[0].algorithms[0]', reason: sym('none') },
      { path: 'issuers[0].algorithms[1]', reason: sym('HS256') },
      { path: 'issuers[0].algorithms[2]', reason: '"rs256" must be one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA; did you mean RS256?' },
    ]);
    oneProblem(t, cfg({ issuers: [{ issuer: 'https://idp.example', audiences: ['a'], algorithms: [] }] }), 'issuers[0].algorithms', 'must not be empty');
  });
  t.test('duplicates', async (t) => {
    const i = { issuer: 'https://idp.example', audiences: ['a'] };
    oneProblem(t, cfg({ issuers: [i, { ...i, audiences: ['b'] }] }), 'issuers[1].issuer', '"https://idp.example" is a duplicate issuer (also issuers[0])');
  });
  t.test('duplicates are reported even when either entry has other problems', async (t) => {
    const i = { issuer: 'https://idp.example', audiences: ['a'] };
    t.strictSame(problems(cfg({ issuers: [{ ...i, bogus: 1 }, i] })), [
      { path: 'issuers[0].bogus', reason: 'unknown key' },
      { path: 'issuers[1].issuer', reason: '"https://idp.example" is a duplicate issuer (also issuers[0])' },
    ]);
    t.strictSame(paths(problems(cfg({ issuers: [i, { ...i, audiences: [] }, { ...i, algorithms: ['HS256'] }] }))),
      ['issuers[1].audiences', 'issuers[2].algorithms[0]', 'issuers[1].issuer', 'issuers[2].issuer']);
    // An entry whose own issuer is invalid is not compared.
    t.strictSame(paths(problems(cfg({ issuers: [{ ...i, issuer: 'nope' }, { ...i, issuer: 'nope' }] }))), ['issuers[0].issuer', 'issuers[1].issuer']);
  });
});

t.test('tokens', async (t) => {
  const bad = (tokens: Obj, path: string, reason: string | RegExp) => oneProblem(t, cfg({ tokens }), path, reason);
  bad({ clockToleranceSec: 301 }, 'tokens.clockToleranceSec', '301 must be between 0 and 300');
  bad({ clockToleranceSec: -1 }, 'tokens.clockToleranceSec', '-1 must be between 0 and 300');
  bad({ clockToleranceSec: 1.5 }, 'tokens.clockToleranceSec', '1.5 must be an integer');
  bad({ jwksTimeoutMs: 0 }, 'tokens.jwksTimeoutMs', /between 1 and/);
  bad({ jwksCacheMaxAgeMs: 3_000_000_000 }, 'tokens.jwksCacheMaxAgeMs', '3000000000 must be between 1 and 2147483647');
  bad({ jwksCacheMaxAgeMs: 600000, jwksMaxStaleMs: 599999 }, 'tokens.jwksMaxStaleMs', '599999 must be at least tokens.jwksCacheMaxAgeMs (600000)');
  bad({ maxTokenBytes: 511 }, 'tokens.maxTokenBytes', '511 must be between 512 and 65536');
  bad({ maxTokenBytes: 65537 }, 'tokens.maxTokenBytes', '65537 must be between 512 and 65536');
  bad({ cacheSize: -1 }, 'tokens.cacheSize', /between 0 and/);
  bad({ jwksTimeoutMs: '1000' }, 'tokens.jwksTimeoutMs', '"1000" must be an integer');
  oneProblem(t, cfg({ tokens: { maxTokenBytes: 4096 }, server: { maxHeaderBytes: 4096 } }), 'tokens.maxTokenBytes',
    '4096 must be less than server.maxHeaderBytes (4096)');
  const c = parse(cfg({ tokens: { cacheSize: 0, jwksCooldownMs: 0, clockToleranceSec: 0, jwksMaxStaleMs: 600000 } }));
  t.equal(c.tokens.cacheSize, 0);
  t.equal(c.tokens.jwksMaxStaleMs, 600000, 'jwksMaxStaleMs may equal jwksCacheMaxAgeMs');
});

t.test('upstreams', async (t) => {
  const url = (u: string) => withUpstream({ url: u, credentials: { type: 'user-token' } });
  t.equal(parse(url('http://127.0.0.1:5000/')).upstreams.cdf?.url, 'http://127.0.0.1:5000', 'trailing slash removed');
  t.equal(parse(url('https://Svc.Example:443/api/v1/')).upstreams.cdf?.url, 'https://svc.example/api/v1');
  oneProblem(t, url('http://127.0.0.1:5000/?a=1'), 'upstreams.cdf.url', '"http://127.0.0.1:5000/?a=1" must not have a query');
  oneProblem(t, url('http://127.0.0.1:5000/#x'), 'upstreams.cdf.url', '"http://127.0.0.1:5000/#x" must not have a fragment');
  oneProblem(t, url('http://user:pw@127.0.0.1:5000'), 'upstreams.cdf.url', '"http://***@127.0.0.1:5000" must not contain credentials (user:password@)');
  oneProblem(t, url('http://a.example/a//b'), 'upstreams.cdf.url', '"http://a.example/a//b" has an unusable base path: must not contain empty segments (//)');
  oneProblem(t, url('http://a.example/%41/b'), 'upstreams.cdf.url',
    '"http://a.example/%41/b" has an unusable base path: must be a canonical path (non-canonical or forbidden percent-encoding)',
    {}, undefined);
  t.equal(parse(url('http://a.example/a%20b/')).upstreams.cdf?.url, 'http://a.example/a%20b', 'canonical percent-encoding is fine');
  oneProblem(t, url('ws://127.0.0.1:5000'), 'upstreams.cdf.url', '"ws://127.0.0.1:5000" must be an http(s) URL');
  oneProblem(t, withUpstream({ url: 'http://a.example', timeoutMs: 0, credentials: { type: 'none' } }), 'upstreams.cdf.timeoutMs', /between 1 and/);
  oneProblem(t, withUpstream({ url: 'http://a.example' }), 'upstreams.cdf.credentials', /^required/);
  oneProblem(t, withUpstream({ url: 'http://a.example', credentials: {} }), 'upstreams.cdf.credentials.type',
    'required: one of user-token, none, api-key, client-credentials');
  oneProblem(t, withUpstream({ url: 'http://a.example', credentials: { type: 'user_token' } }), 'upstreams.cdf.credentials.type', /did you mean user-token/);
  oneProblem(t, cfg({ upstreams: { 'bad.name': { url: 'http://a.example', credentials: { type: 'none' } } }, routes: [] }),
    'upstreams.bad.name', /upstream names use/);

  t.test('api-key header', async (t) => {
    const key = (header: string) => withUpstream({ url: 'http://a.example', credentials: { type: 'api-key', header, value: 'k' } });
    t.equal((parse(key('X-API-Key')).upstreams.cdf?.credentials as { header: string }).header, 'x-api-key', 'lower-cased');
    oneProblem(t, key('bad header'), 'upstreams.cdf.credentials.header', '"bad header" must be a valid header name');
    for (const h of ['Connection', 'host', 'Transfer-Encoding', 'upgrade', 'X-Auth-Request-User']) {
      oneProblem(t, key(h), 'upstreams.cdf.credentials.header', /must not be a hop-by-hop, host/);
    }
  });

  t.test('client-credentials', async (t) => {
    const cc = (over: Obj) => withUpstream({
      url: 'http://a.example',
      credentials: { type: 'client-credentials', tokenUrl: 'https://idp.example/token', clientId: 'svc', clientSecret: 's', ...over },
    });
    const c = parse(cc({ scopes: ['a', 'b'], resource: 'https://cdf.example', audience: 'aud', tokenEndpointAuthMethod: 'client_secret_post', renewBeforeSec: 0, timeoutMs: 100 }));
    t.match(c.upstreams.cdf?.credentials, { scopes: ['a', 'b'], resource: 'https://cdf.example', audience: 'aud', tokenEndpointAuthMethod: 'client_secret_post', renewBeforeSec: 0, timeoutMs: 100 });
    oneProblem(t, cc({ tokenUrl: 'token' }), 'upstreams.cdf.credentials.tokenUrl', '"token" must be an http(s) URL');
    oneProblem(t, cc({ tokenEndpointAuthMethod: 'private_key_jwt' }), 'upstreams.cdf.credentials.tokenEndpointAuthMethod', /must be one of client_secret_basic, client_secret_post/);
    // Form-urlencoded on the wire: any Unicode works, a lone surrogate cannot be encoded (never quoted).
    t.equal((parse(cc({ clientSecret: 'SECRET\u4e2d\u6587' })).upstreams.cdf?.credentials as { clientSecret: string }).clientSecret, 'SECRET\u4e2d\u6587');
    oneProblem(t, cc({ clientSecret: 'SECRET\ud800' }), 'upstreams.cdf.credentials.clientSecret',
      'must be well-formed Unicode (it contains a lone surrogate, which cannot be form-urlencoded)');
    oneProblem(t, cc({ clientId: 1234 }), 'upstreams.cdf.credentials.clientId', '1234 must be a string (put it in quotes)');
    oneProblem(t, cc({ scopes: ['a b'] }), 'upstreams.cdf.credentials.scopes[0]', /must not contain spaces/);
    oneProblem(t, cc({ timeoutMs: -5 }), 'upstreams.cdf.credentials.timeoutMs', /between 1 and/);
  });
});

t.test('routes', async (t) => {
  const r = (over: Obj): Obj => ({ prefix: '/api/', upstream: 'cdf', allow: [{}], ...over });

  t.test('prefix and rewritePrefix must be canonical', async (t) => {
    const cases: Array<[string, string]> = [
      ['api', 'must start with /'],
      ['/a//b', 'must not contain empty segments (//)'],
      ['/a/./b', 'must not contain . or .. segments'],
      ['/a/..', 'must not contain . or .. segments'],
      ['/a/..;x/', 'must not contain . or .. segments'],
      ['/a%2Fb', 'must not contain "%"'],
      ['/a\\b', 'must not contain "\\"'],
      ['/a?b', 'must not contain "?"'],
      ['/a#b', 'must not contain "#"'],
      ['/a b', 'must not contain whitespace'],
      ['/a\tb', 'must not contain control characters'],
      ['/a\u0000', 'must not contain control characters'],
      ['/café', 'must contain only ASCII characters'],
    ];
    for (const [prefix, reason] of cases) {
      const named = `${JSON.stringify(prefix)} ${String(reason)}`;
      oneProblem(t, withRoutes(r({ prefix })), 'routes[0].prefix', named);
      oneProblem(t, withRoutes(r({ rewritePrefix: prefix })), 'routes[0].rewritePrefix', named);
    }
    const c = parse(withRoutes(r({ prefix: '/apps/legacy/', rewritePrefix: '/' }), r({ prefix: '/x;v=1/.well-known/a:b@c' })));
    t.equal(c.routes[0]?.rewritePrefix, '/');
    t.equal(c.routes[1]?.prefix, '/x;v=1/.well-known/a:b@c');
  });

  t.test('upstream must name an upstream', async (t) => {
    oneProblem(t, withRoutes(r({ upstream: 'cfd' })), 'routes[0].upstream', '"cfd" is not one of the upstreams (cdf)');
    oneProblem(t, withRoutes(r({ upstream: undefined })), 'routes[0].upstream', 'required');
  });

  t.test('deny by default: a private route needs an allow rule; a public route may not have one', async (t) => {
    const required = 'required: at least one rule (routes deny by default; use public: true for open routes)';
    oneProblem(t, withRoutes(r({ allow: undefined })), 'routes[0].allow', required);
    oneProblem(t, withRoutes(r({ allow: [] })), 'routes[0].allow', required);
    oneProblem(t, withRoutes(r({ public: true })), 'routes[0].allow', 'a public route must not have allow rules');
    oneProblem(t, withRoutes(r({ public: 'yes', allow: undefined })), 'routes[0].public', '"yes" must be true or false');
    const c = parse(withRoutes({ prefix: '/status', upstream: 'cdf', public: true }));
    t.equal(c.routes[0]?.public, true);
  });

  t.test('allow rules', async (t) => {
    const c = parse(withRoutes(r({ allow: [{ methods: ['get', 'Head'], groups: ['g'], scopes: ['s1', 's2'], subjects: ['alice'] }] })));
    t.strictSame(c.routes[0]?.allow, [{ methods: ['GET', 'HEAD'], groups: ['g'], scopes: ['s1', 's2'], subjects: ['alice'], ...RULE_DEFAULTS }]);
    oneProblem(t, withRoutes(r({ allow: [{ methods: ['GE T'] }] })), 'routes[0].allow[0].methods[0]', '"GE T" must be an HTTP method name');
    for (const m of ['PROPFIND', 'trace', 'CONNECT', 'QUERY']) {
      oneProblem(t, withRoutes(r({ allow: [{ methods: ['GET', m] }] })), 'routes[0].allow[0].methods[1]',
        `"${m}" must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS (the gateway answers any other method 405)`);
    }
    oneProblem(t, withRoutes(r({ allow: [{ groups: [] }] })), 'routes[0].allow[0].groups', 'must not be empty');
    oneProblem(t, withRoutes(r({ allow: [{ subjects: 'alice' }] })), 'routes[0].allow[0].subjects', '"alice" must be a list');
    oneProblem(t, withRoutes(r({ allow: [{ scopes: [5] }] })), 'routes[0].allow[0].scopes[0]', '5 must be a string (put it in quotes)');
  });

  t.test('duplicate prefixes (a trailing / changes nothing)', async (t) => {
    oneProblem(t, withRoutes(r({ prefix: '/api' }), r({ prefix: '/other' }), r({ prefix: '/api/' })), 'routes[2].prefix', '"/api/" is a duplicate prefix (also routes[0])');
    oneProblem(t, withRoutes(r({ prefix: '/' }), r({ prefix: '/' })), 'routes[1].prefix', '"/" is a duplicate prefix (also routes[0])');
    t.equal(parse(withRoutes(r({ prefix: '/' }), r({ prefix: '/api' }))).routes.length, 2);
  });

  t.test('duplicate prefixes are reported even when either route has other problems', async (t) => {
    const pub = { prefix: '/a', upstream: 'cdf', public: true };
    const cases: Array<[string, Obj[], string[]]> = [
      ['allow rules on a public route', [{ ...pub, allow: [{ groups: ['x'] }] }, { ...pub, prefix: '/a/' }], ['routes[0].allow', 'routes[1].prefix']],
      ['a private route without rules in between', [pub, { prefix: '/b', upstream: 'cdf' }, pub], ['routes[1].allow', 'routes[2].prefix']],
      ['an unknown upstream', [{ ...pub, upstream: 'nope' }, pub], ['routes[0].upstream', 'routes[1].prefix']],
      ['an unknown key', [{ ...pub, bogus: 1 }, pub, { ...pub, prefix: '/auth', upstream: 'nope' }],
        ['routes[0].bogus', 'routes[2].prefix', 'routes[2].upstream', 'routes[1].prefix']],
      ['problems in the later route', [pub, { ...pub, upstream: 'nope', websockets: 'x' }], ['routes[1].upstream', 'routes[1].websockets', 'routes[1].prefix']],
    ];
    for (const [name, routes, expected] of cases) {
      const ps = problems(withRoutes(...routes));
      t.strictSame(paths(ps), expected, name);
      t.match(ps.find((p) => /duplicate/.test(p.reason)), { reason: /is a duplicate prefix \(also routes\[0\]\)/ }, name);
    }
  });
});

t.test('server, admin, log', async (t) => {
  const c = parse(cfg({
    server: { host: '::1', port: 8443, trustedProxies: ['10.0.0.0/8', '192.0.2.1', 'fd00::/8', '::1'], maxBodyBytes: 1048576 },
    admin: { host: '0.0.0.0', port: 0 },
    log: { level: 'debug', accessLog: false, requestContext: 'always' },
  }));
  t.equal(c.server.publicUrl, 'http://[::1]:8443', 'default publicUrl from host and port');
  t.equal(c.server.publicUrlSet, false, 'and marked as derived (a reload derives it from the running listener)');
  t.strictSame(c.server.trustedProxies, ['10.0.0.0/8', '192.0.2.1', 'fd00::/8', '::1']);
  t.equal(c.server.maxBodyBytes, 1048576);
  t.strictSame(c.admin, { host: '0.0.0.0', port: 0 });
  t.strictSame(c.log, { level: 'debug', accessLog: false, requestContext: 'always' });
  t.equal(parse(cfg({ server: { publicUrl: 'https://GW.example/' } })).server.publicUrl, 'https://gw.example', 'stored as an origin');
  t.equal(parse(cfg({ server: { publicUrl: 'https://GW.example/' } })).server.publicUrlSet, true, 'a publicUrl written in the file is marked as set');
  oneProblem(t, cfg({ server: { publicUrlSet: true } }), 'server.publicUrlSet', /unknown/);

  oneProblem(t, cfg({ server: { port: 65536 } }), 'server.port', '65536 must be between 0 and 65535');
  oneProblem(t, cfg({ server: { publicUrl: 'https://gw.example/app' } }), 'server.publicUrl', /must be an origin/);
  oneProblem(t, cfg({ server: { host: 'bad host' } }), 'server.host', '"bad host" must be an IP address or a host name');
  oneProblem(t, cfg({ server: { maxBodyBytes: 0 } }), 'server.maxBodyBytes', /at least 1/);
  oneProblem(t, cfg({ server: { headersTimeoutMs: 0 } }), 'server.headersTimeoutMs', /between 1 and/);
  oneProblem(t, cfg({ server: { requestTimeoutMs: 5000, headersTimeoutMs: 6000 } }), 'server.headersTimeoutMs', '6000 must not exceed server.requestTimeoutMs (5000)');
  const ps = problems(cfg({ server: { trustedProxies: ['10.0.0.0/33', 'nope', '::/129', '10.0.0.1/x', '10.0.0.0/'] } }));
  t.strictSame(paths(ps), [0, 1, 2, 3, 4].map((i) => `server.trustedProxies[${i}]`));
  t.match(ps[0]?.reason, /between 0 and 32/);
  t.match(ps[2]?.reason, /between 0 and 128/);
  oneProblem(t, cfg({ server: { port: 8080 }, admin: { port: 8080 } }), 'admin.port', '8080 must differ from server.port (8080) on the same host');
  oneProblem(t, cfg({ server: { host: '0.0.0.0', port: 9000 }, admin: { port: 9000 } }), 'admin.port', /must differ/);
  t.equal(parse(cfg({ server: { host: '127.0.0.1', port: 9000 }, admin: { host: '127.0.0.2', port: 9000 } })).admin.port, 9000, 'different hosts may share a port');
  t.equal(parse(cfg({ server: { port: 0 }, admin: { port: 0 } })).admin.port, 0, 'two ephemeral ports never clash');
  oneProblem(t, cfg({ log: { level: 'verbose' } }), 'log.level', /must be one of fatal/);
  oneProblem(t, cfg({ log: { accessLog: 'yes' } }), 'log.accessLog', '"yes" must be true or false');
  oneProblem(t, cfg({ log: { requestContext: 'sometimes' } }), 'log.requestContext', /must be one of auto, always/);
  oneProblem(t, cfg({ server: [] }), 'server', 'must be a mapping');
});

t.test('the result is deeply frozen', async (t) => {
  const c = parse(base());
  t.ok(Object.isFrozen(c) && Object.isFrozen(c.routes[0]?.allow[0]?.groups) && Object.isFrozen(c.upstreams.cdf?.credentials));
  t.throws(() => { (c.server as { port: number }).port = 1; }, TypeError);
  t.throws(() => { (c.routes as unknown[]).push({}); }, TypeError);
  t.throws(() => { (c.issuers[0]?.audiences as string[])[0] = 'evil'; }, TypeError);
  t.equal(c.issuers[0]?.audiences[0], 'https://cdf.example');
});

t.test('YAML syntax errors carry line information', async (t) => {
  const ps = problems('issuers: []\nroutes:\n  - prefix: /a\n  prefix: /b\n');
  t.equal(ps.length, 1);
  t.equal(ps[0]?.path, 'line 4, column 1');
  t.match(ps[0]?.reason, /YAML syntax error: All mapping items must start at the same column/);
  const flow = problems('upstreams: { a: { value: ${KEY} } }\n');
  t.match(flow[0]?.path, /^line 1, column \d+$/);
  t.match(flow[0]?.reason, /quote \$\{…\} values/, 'a bare ${…} in a flow mapping gets a hint');
  t.notMatch(ps[0]?.reason, /quote/);
  oneProblem(t, '', '(root)', 'the configuration is empty');
  oneProblem(t, '- a\n', '(root)', 'must be a mapping of sections');
});

t.test('duplicate keys: every one is reported with its path and lines, and the rest is checked', async (t) => {
  const text = [
    'issuers: [{ issuer: "http://127.0.0.1:4100", audiences: [a] }]',
    'tokens:',
    '  jwksTimeoutMs: 1',
    '  jwksTimeoutMs: 2',
    'upstreams:',
    '  a: { url: "http://127.0.0.1:5100", credentials: { type: none } }',
    '  a: { url: "http://127.0.0.1:5100", credentials: { type: api-key, value: DUPSECRET, value: DUPSECRET2 } }',
    'routes: [{ prefix: /a, upstream: zz, public: true }]',
    '',
  ].join('\n');
  const ps = problems(text);
  t.strictSame(ps, [
    { path: 'tokens.jwksTimeoutMs', reason: 'duplicate key at line 4, column 3 (first at line 3, column 3): keys must be unique' },
    { path: 'upstreams.a', reason: 'duplicate key at line 7, column 3 (first at line 6, column 3): keys must be unique' },
    { path: 'upstreams.a.credentials.value', reason: 'duplicate key at line 7, column 86 (first at line 7, column 68): keys must be unique' },
    { path: 'routes[0].upstream', reason: '"zz" is not one of the upstreams (a)' },
  ]);
  t.notMatch(JSON.stringify(ps), /DUPSECRET/, 'values are not quoted');
  // Only duplicates, otherwise valid: still an error.
  t.strictSame(paths(problems('issuers: [{ issuer: "http://i", audiences: [a], audiences: [b] }]\n'
    + 'upstreams: { u: { url: "http://u", credentials: { type: none } } }\nroutes: [{ prefix: /a, upstream: u, public: true }]\n')),
  ['issuers[0].audiences']);
  // Keys are compared as the loaded mapping compares them: 1 and "1" are one key.
  t.match(problems('1: x\n"1": y\n'), [{ path: '1', reason: /^duplicate key at line 2, column 1 \(first at line 1, column 1\)/ }]);
  // With a syntax error too: the syntax error and every duplicate, nothing else.
  t.strictSame(paths(problems('a: 1\na: 2\nb: [\n')), ['line 4, column 1', 'a']);
});

t.test('loadConfigFile: an unreadable file is a ConfigError', async (t) => {
  const dir = t.testdir({});
  const file = join(dir, 'missing.yaml');
  t.throws(() => loadConfigFile(file, {}), { name: 'ConfigError', problems: [{ path: file, reason: /cannot read the configuration file \(ENOENT\)/ }] });
});

// The example from DESIGN.md ("Public contract"), with `${LEGACY_API_KEY}` quoted: inside a YAML flow mapping `{…}` a bare `${…}` is a syntax error.
const DESIGN_LOGIN = `login:
  cookieSecret: \${GATEWAY_COOKIE_SECRET}           # ≥ 32 bytes; a list rotates keys
  sessionTtlSec: 28800
  allowedRedirectOrigins: ["http://127.0.0.1:3000"]
  projects:                                        # one login per CDF project
    demo:
      issuer: "http://127.0.0.1:4000"              # OIDC discovery
      clientId: gateway
      clientSecret: \${LOGIN_CLIENT_SECRET}
      scopes: [openid, profile, email, offline_access]
      resource: "https://cdf.example"              # audience of the access token
`;
const DESIGN_EXAMPLE = `server:   { host: 127.0.0.1, port: 8080, publicUrl: "http://127.0.0.1:8080" }
admin:    { host: 127.0.0.1, port: 9090 }          # /healthz /readyz /metrics
issuers:                                           # the only trusted token issuers
  - issuer: "http://127.0.0.1:4000"
    jwksUri: "http://127.0.0.1:4000/jwks"          # optional: from discovery when absent
    audiences: ["https://cdf.example"]
    algorithms: [RS256]                            # default [RS256]
tokens:                                            # timing guards (defaults shown)
  jwksTimeoutMs: 1000
  jwksCooldownMs: 30000
  jwksCacheMaxAgeMs: 600000                        # refresh a key set this old (in the background)
  jwksMaxStaleMs: 3600000                          # since the last good fetch: use cached keys while the IdP is down
  clockToleranceSec: 30
  maxTokenBytes: 12288                             # checked before any crypto; server.maxHeaderBytes defaults to 32768
${DESIGN_LOGIN}upstreams:
  cdf:     { url: "http://127.0.0.1:5000", timeoutMs: 30000, credentials: { type: user-token } }
  service:
    url: "http://127.0.0.1:5000"
    credentials:
      type: client-credentials
      tokenUrl: "http://127.0.0.1:4000/token"
      clientId: svc
      clientSecret: \${SERVICE_CLIENT_SECRET}
      scopes: ["https://cdf.example/.default"]
  legacy:  { url: "http://127.0.0.1:6000", credentials: { type: api-key, header: api-key, value: "\${LEGACY_API_KEY}" } }
routes:                                            # default deny: unmatched paths get 404
  - prefix: /api/v1/projects/demo/
    upstream: cdf
    allow:                                         # any rule may allow; all of a rule's conditions must hold
      - { methods: [GET, HEAD], groups: [readers] }
      - { methods: [GET, HEAD, POST, PUT, PATCH, DELETE], groups: [writers], scopes: [user_impersonation] }
  - { prefix: /apps/legacy/, rewritePrefix: /, upstream: legacy, allow: [{ groups: [legacy-users] }] }
  - { prefix: /status, upstream: legacy, public: true }
`;

t.test('the DESIGN.md example parses', async (t) => {
  const env = { GATEWAY_COOKIE_SECRET: 'c'.repeat(32), LOGIN_CLIENT_SECRET: 'l', SERVICE_CLIENT_SECRET: 'svc-secret', LEGACY_API_KEY: 'legacy-key' };
  const c = parse(DESIGN_EXAMPLE, env);
  t.equal(c.routes.length, 3);
  t.strictSame(Object.keys(c.upstreams), ['cdf', 'service', 'legacy']);
  t.match(c.upstreams.service?.credentials, { type: 'client-credentials', clientSecret: 'svc-secret', scopes: ['https://cdf.example/.default'] });
  t.match(c.upstreams.legacy?.credentials, { type: 'api-key', header: 'api-key', value: 'legacy-key' });
  t.strictSame(c.routes[0]?.allow[1]?.methods, ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);
  t.strictSame(c.routes[1], { prefix: '/apps/legacy/', upstream: 'legacy', rewritePrefix: '/', public: false, websockets: true, allow: [{ methods: null, groups: ['legacy-users'], scopes: null, subjects: null, ...RULE_DEFAULTS }], login: null, cors: null });
  t.strictSame(c.routes[2], { prefix: '/status', upstream: 'legacy', rewritePrefix: null, public: true, websockets: true, allow: [], login: null, cors: null });
  t.strictSame(c.login, {
    cookieSecrets: ['c'.repeat(32)], sessionTtlSec: 28800, idleTimeoutSec: 3600, sessionStore: 'cookie', redis: null,
    allowedRedirectOrigins: ['http://127.0.0.1:3000'], refreshBeforeSec: 60, flowTtlSec: 600,
    projects: { demo: {
      name: 'demo', issuer: 'http://127.0.0.1:4000', clientId: 'gateway', clientSecret: 'l', tokenEndpointAuthMethod: 'client_secret_basic',
      scopes: ['openid', 'profile', 'email', 'offline_access'], resource: 'https://cdf.example', authorizationParams: {}, errorRedirect: null,
    } },
  });
});
