// Tracing through a real gateway: spans captured by an in-memory exporter, W3C trace context in
// and out, a loopback OTLP/HTTP receiver decoding the JSON export, and tracing off loading nothing.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { startJwksServer } from './fixtures/jwks-server.js';
import { TestClock, claims, generateKey, mint, waitFor } from './fixtures/tokens.js';
import { startUpstream } from './fixtures/upstream.js';
import { startGateway, secret } from './fixtures/gateway.js';
import type { GatewayOptions } from '../src/server.js';

const AUD = 'https://cdf.test';
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';

async function setup(t: Test, extra: Record<string, unknown> = {}, opts: GatewayOptions = {}) {
  const key = await generateKey('RS256', 'k1');
  const jwks = await startJwksServer({ keys: [key.jwk] });
  const up = await startUpstream();
  t.teardown(async () => { await up.close(); await jwks.close(); });
  const clock = new TestClock();
  const gw = await startGateway(t, {
    issuers: [{ issuer: jwks.issuer, jwksUri: jwks.jwksUri, audiences: [AUD] }],
    upstreams: { app: { url: up.url, credentials: { type: 'user-token' } } },
    routes: [{ prefix: '/api', upstream: 'app', allow: [{}] }],
    ...extra,
  }, { clock: clock.fn, ...opts });
  const token = secret(await mint(claims(jwks.issuer, AUD, clock.now), { key }));
  return { jwks, up, gw, token, clock };
}

const byName = (spans: ReadableSpan[], name: string) => spans.find((s) => s.name === name);
const parentOf = (s: ReadableSpan | undefined) => s?.parentSpanContext?.spanId;

t.test('spans: the request continues the caller\'s trace; verification, key fetch and upstream call nest under it', async (t) => {
  const exporter = new InMemorySpanExporter();
  const { jwks, up, gw, clock } = await setup(t, {}, { spanExporter: exporter });
  await gw.gateway.state.verifier.warmUp();
  // A key the gateway has not seen yet: this request verifies a first-seen token and fetches keys.
  const rotated = await generateKey('RS256', 'k2');
  jwks.addKey(rotated.jwk);
  clock.advance(60_000);
  const token = secret(await mint(claims(jwks.issuer, AUD, clock.now), { key: rotated }));
  const res = await fetch(`${gw.url}/api/things?q=1`, {
    headers: { authorization: `Bearer ${token}`, traceparent: `00-${TRACE_ID}-${PARENT_ID}-01`, tracestate: 'vendor=abc', 'x-request-id': 'traced-1' },
  });
  t.equal(res.status, 200);
  await waitFor(() => exporter.getFinishedSpans().some((s) => s.name.startsWith('GET /api')));
  const spans = exporter.getFinishedSpans();
  const server = byName(spans, 'GET /api')!;
  const verify = byName(spans, 'verify token');
  const fetchKeys = byName(spans, 'fetch key set');
  const upstream = spans.find((s) => s.name === 'GET' && s.kind === 2 /* CLIENT */);
  t.ok(server && verify && fetchKeys && upstream, `spans: ${spans.map((s) => s.name).join(', ')}`);
  t.equal(server.spanContext().traceId, TRACE_ID, 'same trace as the caller');
  t.equal(parentOf(server), PARENT_ID, 'the caller\'s span is the parent');
  t.equal(server.kind, 1 /* SERVER */);
  t.match(server.attributes, {
    'http.route': '/api', 'http.response.status_code': 200, 'url.path': '/api/things', 'cdf_gateway.request_id': 'traced-1',
    'cdf_gateway.decision': 'allow', 'client.address': '127.0.0.1',
  });
  t.equal(parentOf(verify), server.spanContext().spanId, 'verify token under the request');
  t.equal(parentOf(fetchKeys), verify!.spanContext().spanId, 'the key fetch under the verification that needed it');
  t.equal(parentOf(upstream), server.spanContext().spanId, 'upstream call under the request');
  t.match(upstream!.attributes, { 'http.response.status_code': 200, 'cdf_gateway.upstream': 'app' });
  for (const s of spans) t.equal(s.spanContext().traceId, TRACE_ID, `${s.name} in the caller's trace`);

  const sent = up.last().headers;
  t.equal(sent.traceparent, `00-${TRACE_ID}-${upstream!.spanContext().spanId}-01`, 'the upstream\'s parent is the gateway\'s call');
  t.equal(sent.tracestate, 'vendor=abc', 'tracestate carried');
  t.equal(sent['x-request-id'], 'traced-1');
});

t.test('a refused request: its span carries the reason; a new trace when no traceparent came', async (t) => {
  const exporter = new InMemorySpanExporter();
  const { gw } = await setup(t, {}, { spanExporter: exporter });
  const res = await fetch(`${gw.url}/api/x`);
  t.equal(res.status, 401);
  await waitFor(() => exporter.getFinishedSpans().length > 0);
  const [span] = exporter.getFinishedSpans();
  t.equal(parentOf(span), undefined, 'a root span');
  t.match(span!.attributes, { 'http.response.status_code': 401, 'cdf_gateway.reason': 'no_credentials' });
});

t.test('an unsampled caller: nothing recorded, its decision propagated upstream', async (t) => {
  const exporter = new InMemorySpanExporter();
  const { up, gw, token } = await setup(t, {}, { spanExporter: exporter });
  const res = await fetch(`${gw.url}/api/x`, { headers: { authorization: `Bearer ${token}`, traceparent: `00-${TRACE_ID}-${PARENT_ID}-00` } });
  t.equal(res.status, 200);
  t.match(up.last().headers.traceparent, new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-00$`));
  t.same(exporter.getFinishedSpans(), []);
});

t.test('tracing off: the caller\'s traceparent passes untouched, none is invented', async (t) => {
  const { up, gw, token } = await setup(t);
  const tp = `00-${TRACE_ID}-${PARENT_ID}-01`;
  await fetch(`${gw.url}/api/x`, { headers: { authorization: `Bearer ${token}`, traceparent: tp } });
  t.equal(up.last().headers.traceparent, tp);
  await fetch(`${gw.url}/api/y`, { headers: { authorization: `Bearer ${token}` } });
  t.equal(up.last().headers.traceparent, undefined);
});

interface OtlpExport { headers: IncomingHttpHeaders; body: { resourceSpans: Array<{ resource: { attributes: Attr[] }; scopeSpans: Array<{ spans: OtlpSpan[] }> }> } }
interface Attr { key: string; value: { stringValue?: string; intValue?: string | number } }
interface OtlpSpan { traceId: string; spanId: string; parentSpanId?: string; name: string; attributes: Attr[] }

t.test('OTLP/HTTP export to a collector: service name, headers, the request\'s spans', async (t) => {
  const received: OtlpExport[] = [];
  const collector = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/v1/traces' && req.headers['content-type']?.startsWith('application/json')) {
        received.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString()) });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
  t.teardown(() => { collector.close(); });
  const endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
  const { gw, token } = await setup(t, {
    tracing: { otlpEndpoint: endpoint, serviceName: 'gw-under-test', sampleRatio: 1, headers: { 'x-collector-key': secret('collector-key-123456') } },
  });
  const res = await fetch(`${gw.url}/api/x`, { headers: { authorization: `Bearer ${token}`, traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` } });
  t.equal(res.status, 200);
  await gw.gateway.close(); // flushes the batch
  t.ok(received.length > 0, 'the collector received an export');
  t.equal(received[0]!.headers['x-collector-key'], 'collector-key-123456', 'configured headers sent');
  const rs = received.flatMap((r) => r.body.resourceSpans);
  const service = rs[0]!.resource.attributes.find((a) => a.key === 'service.name');
  t.equal(service?.value.stringValue, 'gw-under-test');
  const spans = rs.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans));
  const server = spans.find((s) => s.name === 'GET /api');
  t.ok(server, `spans: ${spans.map((s) => s.name).join(', ')}`);
  t.equal(server!.traceId.toLowerCase(), TRACE_ID);
  t.equal(server!.parentSpanId?.toLowerCase(), PARENT_ID);
  t.ok(spans.some((s) => s.name === 'GET' && s.parentSpanId === server!.spanId), 'the upstream call exported too');
  t.notOk(JSON.stringify(gw.logs).includes('collector-key-123456'), 'the header value is never logged');
});

t.test('tracing off loads no OpenTelemetry module at all', async (t) => {
  // A fresh process records every module it resolves while a gateway starts and serves a request.
  const script = join(import.meta.dirname, 'fixtures', 'modules-loaded.mjs');
  const run = (mode: string) => {
    const r = spawnSync(process.execPath, [script, join(process.cwd(), 'dist/server.js'), mode], {
      encoding: 'utf8', timeout: 60_000, env: { PATH: process.env.PATH ?? '' },
    });
    t.equal(r.status, 0, r.stderr);
    const loaded = JSON.parse(r.stdout) as { status: number; modules: string[] };
    t.equal(loaded.status, 200, 'the request was served');
    return loaded.modules.filter((m) => m.includes('@opentelemetry/') || m.includes('/tracing/sdk.js'));
  };
  t.same(run('off'), [], 'off: nothing');
  t.ok(run('on').some((m) => m.includes('@opentelemetry/sdk-trace')), 'on: the SDK (so the recording works)');
});
