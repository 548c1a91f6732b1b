import t from 'tap';
import { Writable } from 'node:stream';
import { createLoggers, describeError, errSerializer } from '../src/log.js';
import { runInRequest } from '../src/request/context.js';

function fetchFailure(): Error {
  const sys = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:4000'), { code: 'ECONNREFUSED', syscall: 'connect' });
  return new TypeError('fetch failed', { cause: sys });
}

t.test('errors keep type, message, code and their cause chain; no stack', async (t) => {
  const out = errSerializer(new Error('JWKS fetch failed', { cause: fetchFailure() }));
  t.same(out, {
    type: 'Error', message: 'JWKS fetch failed',
    cause: { type: 'TypeError', message: 'fetch failed', cause: { type: 'Error', message: 'connect ECONNREFUSED 127.0.0.1:4000', code: 'ECONNREFUSED' } },
  });
  t.notOk(JSON.stringify(out).includes('at '), 'no stack frames');
  t.same(errSerializer('timeout after 1000 ms'), { message: 'timeout after 1000 ms' }, 'a string is the message');
  const loop: Error & { cause?: unknown } = new Error('loop');
  loop.cause = loop;
  t.doesNotThrow(() => JSON.stringify(errSerializer(loop)), 'a cyclic cause chain ends');
  t.same(errSerializer(new Error('x', { cause: new Response('secret body', { status: 502 }) })).cause, { type: 'Response', status: 502 },
    'a Response cause keeps only its status');
});

t.test('describeError: one line down the cause chain', async (t) => {
  t.equal(describeError(fetchFailure()), 'fetch failed < connect ECONNREFUSED 127.0.0.1:4000');
  t.equal(describeError(Object.assign(new Error('boom'), { code: 'E_X' })), 'boom (E_X)');
});

t.test('log lines written inside a request carry its id; others do not', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({ write(c: Buffer, _e, cb) { for (const l of c.toString().split('\n')) if (l) lines.push(JSON.parse(l)); cb(); } });
  const { logger } = createLoggers({ level: 'info' }, stream);
  logger.info('outside');
  await runInRequest({ id: 'req-1', span: null, tracing: null }, async () => {
    await new Promise((r) => setImmediate(r));
    logger.warn({ err: fetchFailure() }, 'inside, after an await');
  });
  logger.info('outside again');
  t.equal(lines.length, 3);
  t.equal(lines[0]!.requestId, undefined);
  t.equal(lines[1]!.requestId, 'req-1');
  t.equal((lines[1]!.err as { cause: { code: string } }).cause.code, 'ECONNREFUSED');
  t.equal(lines[2]!.requestId, undefined);
});
