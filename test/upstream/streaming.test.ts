// Streaming through the gateway with a real SSE upstream: events reach the client while the
// upstream is still sending (nothing is buffered), a stream longer than the upstream's timeoutMs
// lives as long as data keeps coming (the timeout is an idle timeout), and a stream that goes
// quiet for longer is cut.
import t from 'tap';
import http from 'node:http';
import type { ServerResponse } from 'node:http';
import { startUpstream } from '../fixtures/upstream.js';
import { startGateway } from '../fixtures/gateway.js';

const TIMEOUT_MS = 1000;

/** GET through the gateway; yields raw body chunks as they arrive. */
function get(url: string): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { accept: 'text/event-stream' } }, resolve);
    req.on('error', reject);
  });
}

/** Reads a response as it arrives; waits for text or for its end (clean or broken). */
class Reader {
  text = '';
  ended: 'complete' | 'truncated' | null = null;
  private wake: (() => void) | null = null;
  constructor(res: http.IncomingMessage) {
    res.on('data', (c: Buffer) => { this.text += c.toString(); this.wake?.(); });
    res.once('end', () => { this.ended ??= res.complete ? 'complete' : 'truncated'; this.wake?.(); });
    res.once('error', () => { this.ended ??= 'truncated'; this.wake?.(); });
    res.once('aborted', () => { this.ended ??= 'truncated'; this.wake?.(); });
  }
  async until(cond: () => boolean): Promise<void> {
    while (!cond()) {
      if (this.ended !== null) throw new Error(`stream ended (${this.ended}) early: ${JSON.stringify(this.text)}`);
      await new Promise<void>((r) => { this.wake = r; });
    }
  }
  has(needle: string): Promise<void> { return this.until(() => this.text.includes(needle)); }
  async end(): Promise<string> {
    while (this.ended === null) await new Promise<void>((r) => { this.wake = r; });
    return this.ended;
  }
}

t.test('server-sent events pass through unbuffered, bounded by idleness not total time', async (t) => {
  const open = new Set<ServerResponse>();
  let release: (() => void) | null = null;
  const up = await startUpstream((req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    open.add(res);
    res.on('close', () => open.delete(res));
    if (req.url === '/sse/held') {
      res.write('data: first\n\n');
      // Finishes only when the test says so: the client must have the first event by then.
      release = () => { res.end('data: last\n\n'); };
    } else if (req.url === '/sse/ticking') {
      // 12 events 150 ms apart: 1.8 s in all, longer than timeoutMs, never idle for long.
      let n = 0;
      const tick = setInterval(() => {
        n++;
        if (n < 12) res.write(`data: tick ${n}\n\n`);
        else { clearInterval(tick); res.end('data: done\n\n'); }
      }, 150);
      res.on('close', () => clearInterval(tick));
    } else if (req.url === '/sse/forever') {
      // Never ends and is never idle: only the client's leaving can close it.
      const tick = setInterval(() => res.write('data: tick\n\n'), 100);
      res.write('data: first\n\n');
      res.on('close', () => clearInterval(tick));
    } else if (req.url === '/sse/stalls') {
      res.write('data: only\n\n'); // then nothing, ever
    }
  });
  t.teardown(() => { for (const r of open) r.destroy(); return up.close(); });
  const gw = await startGateway(t, {
    issuers: [{ issuer: 'http://127.0.0.1:9', jwksUri: 'http://127.0.0.1:9/jwks', audiences: ['a'] }],
    upstreams: { sse: { url: up.url, timeoutMs: TIMEOUT_MS, credentials: { type: 'none' } } },
    routes: [{ prefix: '/sse', upstream: 'sse', public: true }],
  });

  await t.test('the first event arrives before the upstream finishes', async (t) => {
    const res = await get(`${gw.url}/sse/held`);
    t.equal(res.statusCode, 200);
    t.equal(res.headers['content-type'], 'text/event-stream');
    const r = new Reader(res);
    await r.has('data: first');
    t.ok(release !== null, 'the upstream is still holding the response open');
    t.equal(r.ended, null, 'and the client has not seen the end');
    release!();
    t.equal(await r.end(), 'complete');
    t.equal(r.text, 'data: first\n\ndata: last\n\n');
  });

  await t.test('a stream longer than timeoutMs lives while data flows', async (t) => {
    const res = await get(`${gw.url}/sse/ticking`);
    const r = new Reader(res);
    t.equal(await r.end(), 'complete', 'not cut by the 1 s timeout');
    t.equal(r.text.split('\n\n').filter(Boolean).length, 12, 'every event, none lost');
  });

  await t.test('a client that leaves mid-stream closes the upstream request', async (t) => {
    const res = await get(`${gw.url}/sse/forever`);
    await new Reader(res).has('data: tick');
    t.equal(open.size, 1, 'the upstream holds the stream open');
    res.destroy(); // the client leaves; the upstream would go on (it never ends this one, nor idles)
    await t.resolves(waitForEmpty(open), 'the gateway closed the upstream request');
  });

  await t.test('a stream idle for longer than timeoutMs is cut', async (t) => {
    const res = await get(`${gw.url}/sse/stalls`);
    const r = new Reader(res);
    await r.has('data: only');
    // The gateway gives up on the quiet upstream and closes the client's response unfinished.
    t.equal(await r.end(), 'truncated', 'not a clean end: the client can tell the stream broke');
    await t.resolves(waitForEmpty(open), 'the upstream connection was closed too');
  });
});

async function waitForEmpty(set: Set<unknown>): Promise<void> {
  for (let i = 0; i < 200 && set.size > 0; i++) await new Promise((r) => setTimeout(r, 25));
  if (set.size > 0) throw new Error('upstream response still open');
}
