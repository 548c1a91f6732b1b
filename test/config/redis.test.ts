// The top-level `redis:` section (state shared by replicas).
import t from 'tap';
import { stringify } from 'yaml';
import { ConfigError, parseConfig, type ConfigProblem } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/types.js';

type Obj = Record<string, unknown>;
const SECRET = 's'.repeat(32);
const cc = { type: 'client-credentials', tokenUrl: 'https://idp.example/token', clientId: 'svc', clientSecret: 'x' };
const cfg = (redis: unknown, over: Obj = {}): Obj => ({
  issuers: [{ issuer: 'https://idp.example', audiences: ['https://cdf.example'] }],
  upstreams: { cdf: { url: 'http://127.0.0.1:5000', credentials: { type: 'user-token' } } },
  routes: [{ prefix: '/api/', upstream: 'cdf', allow: [{ groups: ['readers'] }] }],
  ...(redis === undefined ? {} : { redis }),
  ...over,
});
const parse = (c: Obj): GatewayConfig => parseConfig(stringify(c), { env: {}, baseDir: '/nonexistent' });
function problems(c: Obj): ConfigProblem[] {
  try { parse(c); } catch (e) { if (e instanceof ConfigError) return [...e.problems]; throw e; }
  throw new Error('expected a ConfigError');
}

t.test('defaults, and absent', async (t) => {
  t.equal(parse(cfg(undefined)).redis, null);
  t.strictSame(parse(cfg({ url: 'redis://redis:6379' })).redis, {
    url: 'redis://redis:6379', password: null, keyPrefix: 'cdf-gw:', lockTtlMs: 10000, shareClientCredentials: true, secret: null,
  });
});

t.test('bad values name their key', async (t) => {
  const rows: Array<[unknown, string, RegExp]> = [
    [{}, 'redis.url', /required/],
    [{ url: 'http://redis:6379' }, 'redis.url', /redis:\/\/ or rediss:\/\//],
    [{ url: 'redis://:pw@redis:6379' }, 'redis.url', /password/],
    [{ url: 'redis://r', lockTtlMs: 50 }, 'redis.lockTtlMs', /100/],
    [{ url: 'redis://r', secret: 'short' }, 'redis.secret', /32 bytes/],
    [{ url: 'redis://r', urll: 'x' }, 'redis.urll', /unknown|url/],
    ['redis://r', 'redis', /mapping|object/],
  ];
  for (const [redis, path, reason] of rows) {
    const p = problems(cfg(redis));
    t.ok(p.some((x) => x.path === path && reason.test(x.reason)), `${path}: ${JSON.stringify(p)}`);
  }
});

t.test('sharing client-credentials tokens needs a sealing secret', async (t) => {
  const withCc = { upstreams: { cdf: { url: 'http://127.0.0.1:5000', credentials: cc } } };
  t.ok(problems(cfg({ url: 'redis://r' }, withCc)).some((p) => p.path === 'redis.secret'), 'neither redis.secret nor login.cookieSecret');
  t.equal(parse(cfg({ url: 'redis://r', secret: SECRET }, withCc)).redis?.secret, SECRET);
  t.equal(parse(cfg({ url: 'redis://r', shareClientCredentials: false }, withCc)).redis?.shareClientCredentials, false);
});
