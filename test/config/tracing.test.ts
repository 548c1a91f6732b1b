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
