// The request context's reach: the synchronous part of a request always; everything it awaits
// with AsyncContextFrame (Node 24), with `always`, or with tracing. The tests run in this order:
// once turned on, following awaits stays on for the process.
import t from 'tap';
import {
  contextFollowsAwaits, currentRequest, hasAsyncContextFrame, runInRequest, setContextReach, type RequestContext,
} from '../../src/request/context.js';

const ctx = (id: string): RequestContext => ({ id, span: null, tracing: null });
const tick = () => new Promise<void>((r) => setImmediate(r));

t.test('AsyncContextFrame: Node 24 and later unless turned off; 22 and 23 with the flag', async (t) => {
  t.equal(hasAsyncContextFrame('24.21.0', []), true);
  t.equal(hasAsyncContextFrame('25.0.0', []), true);
  t.equal(hasAsyncContextFrame('24.21.0', ['--no-async-context-frame']), false);
  t.equal(hasAsyncContextFrame('22.12.0', []), false);
  t.equal(hasAsyncContextFrame('22.12.0', ['--experimental-async-context-frame']), true);
  t.equal(hasAsyncContextFrame('20.20.2', []), false);
});

t.test('auto: the synchronous part always sees its request; awaits see it exactly when AsyncContextFrame is there', async (t) => {
  setContextReach('auto', false);
  t.equal(contextFollowsAwaits(), hasAsyncContextFrame());
  t.equal(currentRequest(), undefined, 'outside any request');
  let later: string | undefined = 'unset';
  const done = runInRequest(ctx('a'), () => {
    t.equal(currentRequest()?.id, 'a', 'inside, synchronously');
    runInRequest(ctx('b'), () => t.equal(currentRequest()?.id, 'b', 'nested'));
    t.equal(currentRequest()?.id, 'a', 'the outer request again after the nested one');
    return tick().then(() => { later = currentRequest()?.id; });
  });
  t.equal(currentRequest(), undefined, 'nothing leaks out of the section');
  await done;
  t.equal(later, hasAsyncContextFrame() ? 'a' : undefined, 'after an await: the request, or none (never another)');
});

t.test('a thrown error leaves the section too', async (t) => {
  t.throws(() => runInRequest(ctx('c'), () => { throw new Error('boom'); }));
  t.equal(currentRequest(), undefined);
});

t.test('always (or tracing): awaits see their request, on every Node version', async (t) => {
  setContextReach('always', false);
  t.ok(contextFollowsAwaits());
  const seen = await runInRequest(ctx('d'), async () => { await tick(); return currentRequest()?.id; });
  t.equal(seen, 'd');
  setContextReach('auto', false);
  t.ok(contextFollowsAwaits(), 'stays on');
});
