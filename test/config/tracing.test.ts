// The `tracing:` section.
import t from 'tap';
import { stringify } from 'yaml';
import { ConfigError, parseConfig, type ConfigProblem } from '../../src/config/load.js';
import { tracesUrl } from '../../src/tracing/sdk.js';

type Obj = Record<string, unknown>;
const cfg = (tracing: unknown): Obj => ({
  issuers: [{ issuer: 'https://idp.example', audiences: ['https://cdf.example'] }],
  upstreams: { cdf: { url: 'http://127.0.0.1:5000', credentials: { type: 'user-token' } } },
  routes: [{ prefix: '/api/', upstream: 'cdf', allow: [{}] }],
  ...(tracing === undefined ? {} : { tracing }),
});
const parse = (c: Obj, env: Record<string, string> = {}) => parseConfig(stringify(c), { env, baseDir: '/nonexistent' });
function problems(c: Obj, env: Record<string, string> = {}): ConfigProblem[] {
  try { parse(c, env); } catch (e) { if (e instanceof ConfigError) return [...e.problems]; throw e; }
  throw new Error('expected a ConfigError');
}

t.test('absent: tracing off', async (t) => {
  t.equal(parse(cfg(undefined)).tracing, null);
});

t.test('defaults and values', async (t) => {
  t.strictSame(parse(cfg({ otlpEndpoint: 'http://otel-collector:4318' })).tracing, {
    otlpEndpoint: 'http://otel-collector:4318', serviceName: 'cdf-auth-gateway', sampleRatio: 1, headers: {},
  });
  const c = parse(cfg({ otlpEndpoint: 'https://otlp.example/v1/traces', serviceName: 'edge', sampleRatio: '${RATIO}', headers: { 'api-key': '${KEY}' } }),
    { RATIO: '0.25', KEY: 'k-123' }).tracing!;
  t.equal(c.sampleRatio, 0.25);
  t.strictSame(c.headers, { 'api-key': 'k-123' });
  t.equal(tracesUrl('http://otel-collector:4318'), 'http://otel-collector:4318/v1/traces');
  t.equal(tracesUrl('http://c:4318/'), 'http://c:4318/v1/traces');
  t.equal(tracesUrl('https://otlp.example/v1/traces'), 'https://otlp.example/v1/traces');
});

t.test('bad values name the key and the value', async (t) => {
  t.match(problems(cfg({ sampleRatio: 2 })), [
    { path: 'tracing.otlpEndpoint', reason: 'required' },
    { path: 'tracing.sampleRatio', reason: 'must be a number from 0 to 1 (got 2)' },
  ]);
  t.match(problems(cfg({ otlpEndpoint: 'grpc://c:4317' })), [{ path: 'tracing.otlpEndpoint', reason: /http\(s\) URL/ }]);
  t.match(problems(cfg({ otlpEndpoint: 'http://c', headers: { 'bad name': 'x' } })), [{ path: 'tracing.headers.bad name', reason: /not a header name/ }]);
  t.match(problems(cfg({ otlpEndpoint: 'http://c', sampleRatio: 'half' })), [{ path: 'tracing.sampleRatio', reason: /got "half"/ }]);
  t.match(problems(cfg({ otlpEndpoint: 'http://c', sampler: 1 })), [{ path: 'tracing.sampler' }]);
});

t.test('header values are secrets: checked as header values, never quoted', async (t) => {
  const ps = problems(cfg({
    otlpEndpoint: 'http://c',
    headers: { 'api-key': 565656565656, authorization: 'Bearer TRSECRET4\r', 'x-wide': 'TRSECRET5\u4e2d', 'x-ctl': 'TRSECRET6\u0001', 'x-ok': 'caf\u00e9' },
  }));
  t.strictSame(ps, [
    { path: 'tracing.headers.api-key', reason: 'must be a string (put it in quotes)' },
    { path: 'tracing.headers.authorization', reason: 'must not contain CR, LF or NUL (it is sent as a header value)' },
    { path: 'tracing.headers.x-wide', reason: 'must contain only ASCII or latin1 characters (up to U+00FF; it is sent as a header value)' },
    { path: 'tracing.headers.x-ctl', reason: 'must not contain control characters other than tab (it is sent as a header value)' },
  ]);
  for (const p of ps) t.notMatch(p.reason, /565656|TRSECRET/, `${p.path}: value not quoted`);
  // Nor when it came from the environment.
  const fromEnv = problems(cfg({ otlpEndpoint: 'http://c', headers: { authorization: '${TOKEN}' } }), { TOKEN: 'Bearer TRSECRET7\n' });
  t.strictSame(fromEnv.map((p) => p.path), ['tracing.headers.authorization']);
  t.notMatch(fromEnv[0]?.reason, /TRSECRET/);
});
