// The shared redis's subscription (what a replica's start waits for: listen() awaits the
// revocations' SUBSCRIBE) against a real redis-server behind a small TCP relay that can swallow
// SUBSCRIBE commands, a fault the real server does not make on demand: a SUBSCRIBE never
// answered is tried once more on a new connection, and a second silence fails the start with
// the reason instead of hanging it.
import t, { type Test } from 'tap';
import { createConnection, createServer, type AddressInfo } from 'node:net';
import pino from 'pino';
import { connectSharedRedis, type SharedRedis } from '../../src/shared/redis.js';
import { createRevocations } from '../../src/session/revocations.js';
import { SharedStateUnavailable } from '../../src/errors.js';
import { startRedis } from '../fixtures/redis.js';
import { waitFor } from '../fixtures/tokens.js';
import type { Session } from '../../src/session/store.js';

/** A relay to `port` that drops the client's bytes carrying a SUBSCRIBE while `swallow` > 0 (one per SUBSCRIBE). */
async function startRelay(t: Test, port: number, swallow: number): Promise<{ url: string; swallowed: () => number; connections: () => number }> {
  let swallowed = 0;
  let connections = 0;
  const server = createServer((client) => {
    connections++;
    const upstream = createConnection({ host: '127.0.0.1', port });
    client.on('data', (chunk: Buffer) => {
      if (swallowed < swallow && /\r\nsubscribe\r\n/i.test(chunk.toString('latin1'))) { swallowed++; return; }
      upstream.write(chunk);
    });
    upstream.pipe(client);
    const end = () => { client.destroy(); upstream.destroy(); };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => { server.close(() => r()); }));
  return { url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`, swallowed: () => swallowed, connections: () => connections };
}

function collectingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'warn' }, { write: (l: string) => { lines.push(JSON.parse(l) as Record<string, unknown>); } });
  return { logger, lines };
}

async function connect(t: Test, url: string, logger = pino({ level: 'silent' })): Promise<SharedRedis> {
  const r = await connectSharedRedis({ url, password: null, keyPrefix: 's:', lockTtlMs: 1000, shareClientCredentials: true, secret: null }, logger);
  t.teardown(() => r.close());
  return r;
}

const session = (): Session => ({
  id: 'AAAAAAAAAAAAAAAAAAAAAA', project: 'demo', sub: 'alice', name: null, email: null, groups: [],
  accessToken: 'x', accessTokenExp: 0, refreshToken: null, idToken: null, idpSid: 'sid-1',
  createdAt: Date.now() - 1000, expiresAt: Date.now() + 3_600_000, lastSeenAt: Date.now(),
});

t.test('a SUBSCRIBE never answered is tried again on a new connection, and the subscription then works', async (t) => {
  const server = await startRedis(t);
  const relay = await startRelay(t, server.port, 1);
  const { logger, lines } = collectingLogger();
  const deps = { maxAgeMs: 60_000, clock: Date.now, logger: pino({ level: 'silent' }) };
  const listening = createRevocations({ ...deps, redis: await connect(t, relay.url, logger) });
  await t.resolves(listening.ready, 'ready once the second SUBSCRIBE is answered');
  t.equal(relay.swallowed(), 1, 'the first SUBSCRIBE went unanswered');
  t.ok(lines.some((l) => l.msg === 'shared redis: SUBSCRIBE failed; trying a new connection' && l.level === 40), 'the retry is logged as a warning');
  // Another replica's revocation reaches it through the subscription made on the new connection.
  const other = createRevocations({ ...deps, redis: await connect(t, server.url) });
  await other.ready;
  t.notOk(listening.isRevoked(session()));
  await other.revoke(['sid:demo:sid-1']);
  await waitFor(() => listening.isRevoked(session()));
  t.ok(listening.isRevoked(session()), 'a revocation published by another connection arrives');
});

t.test('two unanswered SUBSCRIBEs fail the start with the reason, not a hang', async (t) => {
  const server = await startRedis(t);
  const relay = await startRelay(t, server.port, Infinity);
  const revocations = createRevocations({ maxAgeMs: 60_000, clock: Date.now, logger: pino({ level: 'silent' }), redis: await connect(t, relay.url) });
  const err = await revocations.ready.then(() => null, (e: unknown) => e);
  t.type(err, SharedStateUnavailable, 'the start is refused as shared state unavailable');
  t.match((err as SharedStateUnavailable).detail, /^redis: SUBSCRIBE failed: TimeoutError: SUBSCRIBE timed out after \d+ ms$/, 'the reason (what the fatal "cannot listen" line logs) names the command and the wait');
  t.equal(relay.swallowed(), 2, 'tried twice, once per connection');
});

t.test('closed while its SUBSCRIBE waits: the subscription fails with the reason and opens no other connection', async (t) => {
  const server = await startRedis(t);
  const relay = await startRelay(t, server.port, Infinity);
  const redis = await connect(t, relay.url);
  const revocations = createRevocations({ maxAgeMs: 60_000, clock: Date.now, logger: pino({ level: 'silent' }), redis });
  const outcome = revocations.ready.then(() => null, (e: unknown) => e);
  await waitFor(() => relay.swallowed() === 1);
  const before = relay.connections();
  await redis.close(); // a shutdown during the start
  const err = await outcome;
  t.type(err, SharedStateUnavailable, 'refused as shared state unavailable, not a raw client error');
  t.match((err as SharedStateUnavailable).detail, /^redis: closed while subscribing/, 'the reason says why');
  t.equal(relay.connections(), before, 'no connection opened after close()');
  t.equal(relay.swallowed(), 1, 'no second SUBSCRIBE');
});
