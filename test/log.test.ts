import t from 'tap';
import { Writable } from 'node:stream';
import { createLoggers, describeError, errSerializer, type AccessLine } from '../src/log.js';
import { hasAsyncContextFrame, runInRequest, setContextReach } from '../src/request/context.js';

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

t.test('log lines written inside a request carry its id (after an await too, with the reach on); others do not', async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({ write(c: Buffer, _e, cb) { for (const l of c.toString().split('\n')) if (l) lines.push(JSON.parse(l)); cb(); } });
  const { logger } = createLoggers({ level: 'info' }, stream);
  logger.info('outside');
  await runInRequest({ id: 'req-0', span: null, tracing: null }, async () => {
    logger.info('inside, synchronously');
    await new Promise((r) => setImmediate(r));
    logger.info('after an await, the reach off');
  });
  setContextReach('always', false); // log.requestContext: always (also what Node 24 and tracing do)
  await runInRequest({ id: 'req-1', span: null, tracing: null }, async () => {
    await new Promise((r) => setImmediate(r));
    logger.warn({ err: fetchFailure() }, 'inside, after an await');
  });
  logger.info('outside again');
  t.equal(lines.length, 5);
  t.equal(lines[0]!.requestId, undefined);
  t.equal(lines[1]!.requestId, 'req-0');
  t.equal(lines[2]!.requestId, hasAsyncContextFrame() ? 'req-0' : undefined, 'without AsyncContextFrame, by default: no id, never another');
  t.equal(lines[3]!.requestId, 'req-1');
  t.equal((lines[3]!.err as { cause: { code: string } }).cause.code, 'ECONNREFUSED');
  t.equal(lines[4]!.requestId, undefined);
});

t.test('access lines: written by hand, read back exactly as pino writes the same fields', async (t) => {
  const { default: pino } = await import('pino');
  const { accessLineJson } = await import('../src/log.js');
  const pinoLines: string[] = [];
  const reference = pino({ base: { service: 'cdf-auth-gateway' }, timestamp: pino.stdTimeFunctions.isoTime },
    { write: (l: string) => { pinoLines.push(l); } });
  const lines: AccessLine[] = [
    { requestId: 'id-1', ip: '127.0.0.1', method: 'GET', path: '/api/v1/x', route: 'cdf', decision: 'allow', reason: null, sub: 'u', status: 200, ms: 1.25 },
    { requestId: 'quote " and \\ back', ip: '::1', method: 'POST', path: '/é/\u0001/\ud800/"x"', route: '-', decision: 'deny', reason: 'no_rule', sub: 'ü\n', status: 403, ms: 0 },
    { requestId: null, ip: '10.0.0.1', method: null, path: null, route: '-', decision: 'not_found', reason: 'no_route', sub: null, status: 404, ms: 12 },
    { method: 'GET', path: '/ws', route: 'app', decision: 'allow', reason: null, sub: 's', status: 101, ms: 3, upgrade: 'websocket' as const },
  ];
  for (const l of lines) {
    const ours = accessLineJson(l);
    reference.info(l, 'request');
    const theirs = pinoLines.pop()!;
    t.ok(ours.endsWith('}\n') && !ours.slice(0, -1).includes('\n'), 'one line');
    const a = JSON.parse(ours) as Record<string, unknown>;
    const b = JSON.parse(theirs) as Record<string, unknown>;
    t.match(a.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    delete a.time; delete b.time;
    t.same(a, b, `same fields and values as pino: ${JSON.stringify(l.path)}`);
    t.same(Object.keys(a), Object.keys(b), 'in the same order');
  }
});

t.test('access lines written as bytes are accessLineAt\'s line byte for byte; a value needing escapes is left to it', async (t) => {
  const { accessLineAt, accessLineInto } = await import('../src/log.js');
  const time = '2026-12-06T08:00:00.123Z';
  const plain: AccessLine[] = [
    { requestId: '6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b', ip: '127.0.0.1', method: 'GET', path: '/api/v1/projects/p/assets', route: 'cdf', decision: 'allow', reason: null, sub: 'user@example.com', status: 200, ms: 1.25 },
    { requestId: null, ip: '::1', method: null, path: null, route: '-', decision: 'not_found', reason: 'no_route', sub: null, status: 404, ms: 12 },
    { method: 'GET', path: '/ws', route: 'app', decision: 'allow', reason: null, sub: 's', status: 101, ms: 3, upgrade: 'websocket' as const },
    { requestId: 'r', ip: '10.0.0.1', method: 'POST', path: "/a b/~!#$%&'()*+,;=:@[]{}|^`<>", route: 'x', decision: 'deny', reason: 'no_rule', sub: '', status: 403, ms: 0.07 },
  ];
  const buf = Buffer.alloc(4096);
  for (const l of plain) {
    const end = accessLineInto(l, time, buf, 100);
    t.ok(end > 100, `written: ${l.path}`);
    t.equal(buf.toString('utf8', 100, end), accessLineAt(l, time), 'the same line');
  }
  // Each of these needs JSON escaping or UTF-8: left to accessLineAt (JSON.stringify).
  const base = plain[0]!;
  for (const odd of ['quote "', 'back \\ slash', 'tab\t', 'nl\n', '\u0001', '\u007f', 'é', '€', '\ud800', '😀']) {
    for (const field of ['requestId', 'ip', 'method', 'path', 'route', 'sub'] as const) {
      t.equal(accessLineInto({ ...base, [field]: odd }, time, buf, 0), -1, `${field} ${JSON.stringify(odd)}: not written as bytes`);
    }
  }
  t.equal(accessLineInto(base, time, Buffer.alloc(200), 0), -1, 'too little room: not written');
  // Every room from none to ample, for the longest kinds of line: never written past the buffer's end.
  const longest: AccessLine[] = [
    { requestId: 'r', ip: '::1', method: 'GET', path: '/ws', route: 'app', decision: 'deny', reason: 'no_rule', sub: 's', status: 101, ms: 3, upgrade: 'websocket' as const },
    { ...plain[2]!, requestId: 'r', ip: '::1', status: 101, reason: 'no_rule', sub: null, path: null, method: null },
    { ...plain[2]!, status: 101, ms: 123456.78 },
    { ...base, status: 599, reason: 'no_rule' },
  ];
  for (const l of longest) {
    const line = Buffer.from(accessLineAt(l, time));
    let written = 0;
    for (let room = 0; room <= line.length + 250; room++) {
      const end = accessLineInto(l, time, Buffer.alloc(room), 0);
      if (end === -1) continue;
      written++;
      if (end > room) { t.fail(`${room} bytes of room, written to ${end}`); break; }
    }
    t.ok(written > 0, `written once the room suffices (${line.length} bytes)`);
  }
  t.equal(accessLineInto(base, time, buf, buf.length - 150), -1, 'too little room left: not written');

  // Random values over printable ASCII and a few others: written as bytes exactly when every value is plain.
  const chars = ' !"#$%&\'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~\u0000\u001f\u007fé€😀';
  const pick = (n: number): string => Array.from({ length: n }, () => chars[Math.floor(Math.random() * chars.length)]).join('');
  const isPlain = (s: string | null | undefined): boolean => s === null || s === undefined || /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/.test(s);
  let bytes = 0; let left = 0;
  for (let i = 0; i < 3000; i++) {
    const l: AccessLine = {
      requestId: i % 7 === 0 ? null : pick(i % 3), ip: pick(2), method: i % 5 === 0 ? undefined : pick(1), path: i % 11 === 0 ? null : pick(i % 4),
      route: pick(1), decision: 'allow', reason: i % 2 === 0 ? null : 'no_rule', sub: i % 13 === 0 ? null : pick(i % 3), status: 100 + (i % 500), ms: i / 100,
    };
    const end = accessLineInto(l, time, buf, 7);
    const expected = [l.requestId, l.ip, l.method, l.path, l.route, l.sub].every(isPlain);
    if (expected) {
      bytes++;
      if (end < 0 || buf.toString('utf8', 7, end) !== accessLineAt(l, time)) { t.fail(`differs: ${JSON.stringify(l)}`); break; }
    } else {
      left++;
      if (end !== -1) { t.fail(`written though not plain: ${JSON.stringify(l)}`); break; }
    }
  }
  t.ok(bytes > 100 && left > 100, `both kinds met (${bytes} written as bytes, ${left} left to the string)`);
});

t.test('access lines written as bytes stay accessLineAt\'s line as the pieces they reuse change from line to line', async (t) => {
  const { accessLineAt, accessLineInto } = await import('../src/log.js');
  // The head (time), the route/decision/reason piece and the status piece are kept from the line
  // before: lines that change one of them at a time, or several, or return to an earlier one,
  // and lines declined in between (a route needing escapes), must all come out right.
  const times = ['2026-12-06T08:00:00.123Z', '2026-12-06T08:00:00.124Z', '2026-12-06T09:59:59.999Z'];
  const routes = ['cdf', 'app', '-', 'a"b'];
  const decisions = ['allow', 'deny', 'unauthenticated', 'not_found'];
  const reasons = [null, 'no_rule', 'bad_signature'] as const;
  const statuses = [200, 401, 403, 404, 101, 599];
  const buf = Buffer.alloc(4096);
  const base: AccessLine = { requestId: 'r-1', ip: '10.0.0.1', method: 'GET', path: '/p', route: 'cdf', decision: 'allow', reason: null, sub: 'u', status: 200, ms: 1.5 };
  const steps: Array<[AccessLine, string]> = [
    [base, times[0]!], [base, times[1]!], [{ ...base, route: 'app' }, times[1]!], [{ ...base, route: 'app', decision: 'deny' }, times[1]!],
    [{ ...base, route: 'app', decision: 'deny', reason: 'no_rule' }, times[1]!], [{ ...base, status: 403 }, times[1]!],
    [{ ...base, route: 'a"b' }, times[2]!], [base, times[0]!], [{ ...base, reason: 'bad_signature', decision: 'unauthenticated', status: 401, sub: null }, times[0]!],
  ];
  let n = 0;
  for (const [l, time] of steps) {
    const end = accessLineInto(l, time, buf, 3);
    if (!/^[\x20\x21\x23-\x5b\x5d-\x7e]*$/.test(l.route)) { t.equal(end, -1, 'a route needing escapes: declined'); continue; }
    t.equal(buf.toString('utf8', 3, end), accessLineAt(l, time), `step ${++n}: ${l.route} ${l.decision} ${l.reason} ${l.status} ${time}`);
  }
  // And at random: 3,000 lines drawing each piece's parts from a few values.
  const of = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;
  let differs = 0;
  for (let i = 0; i < 3000; i++) {
    const l: AccessLine = { ...base, route: of(routes), decision: of(decisions), reason: of(reasons), status: of(statuses), ms: i / 10 };
    const time = of(times);
    const end = accessLineInto(l, time, buf, 0);
    if (l.route === 'a"b') { if (end !== -1) differs++; continue; }
    if (end < 0 || buf.toString('utf8', 0, end) !== accessLineAt(l, time)) differs++;
  }
  t.equal(differs, 0, 'every random line byte for byte, or declined when its route needs escapes');
});

t.test('access lines: ms is written as String() writes it, for any duration', async (t) => {
  const { msJson } = await import('../src/log.js');
  const fixed = [0, 1, 12, 0.01, 0.1, 0.05, 0.5, 1.05, 1.5, 1.25, 9.99, 10.1, 99.09, 123456.78, 1e-7, 1.005, 0.125, 2 ** 40 + 0.5, 1e13, -1.5, -0, 5e-324];
  const random = Array.from({ length: 20_000 }, (_, i) => {
    const x = Math.random() * 10 ** (i % 8);
    return i % 3 === 0 ? x : Math.round(x * 100) / 100; // rounded as the gateway rounds, and not
  });
  let differ = 0;
  for (const ms of [...fixed, ...random]) if (msJson(ms) !== String(ms)) differ++;
  t.equal(differ, 0, 'no duration written otherwise than String() writes it');
  t.equal(msJson(Number.NaN), '0', 'NaN (no duration) is 0, as before');
  t.equal(msJson(Number.POSITIVE_INFINITY), '0');
});

t.test('access lines follow the access logger level', async (t) => {
  const out: string[] = [];
  const sink = new Writable({ write(chunk: Buffer, _e, cb) { out.push(chunk.toString()); cb(); } });
  const { access, writeAccess } = createLoggers({ level: 'info' }, sink);
  const line = { method: 'GET', path: '/', route: '-', decision: 'allow', reason: null, sub: null, status: 200, ms: 1 };
  writeAccess(line);
  access.level = 'warn';
  writeAccess(line);
  t.equal(out.length, 1, 'written at info, not at warn');
  access.level = 'debug';
  writeAccess(line);
  t.equal(out.length, 2, 'written again once the level is lowered (a reload sets it)');
  const quiet = createLoggers({ level: 'error' }, sink);
  quiet.writeAccess(line);
  t.equal(out.length, 2, 'a logger created above info writes none');
});
