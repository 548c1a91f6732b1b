// Response bodies cut off at a size limit while they are read, against a real HTTP server.
import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { boundedFetch } from '../src/bounded-fetch.js';
import { ResponseTooLargeError } from '../src/errors.js';

const HUGE = 32 * 1024 * 1024;
const state = { sent: 0, finished: false };
const server = http.createServer((req, res) => {
  const size = Number(new URL(req.url!, 'http://x').searchParams.get('size'));
  const declare = req.url!.includes('declare');
  if (req.url!.startsWith('/empty')) { res.writeHead(204).end(); return; }
  res.writeHead(200, declare ? { 'content-length': String(size) } : {});
  state.sent = 0;
  state.finished = false;
  const chunk = Buffer.alloc(65536, 0x61);
  const pump = (): void => {
    while (state.sent < size && !res.destroyed) {
      const piece = chunk.subarray(0, Math.min(chunk.length, size - state.sent));
      state.sent += piece.length;
      if (!res.write(piece)) { res.once('drain', pump); return; }
    }
    if (state.sent >= size && !res.destroyed) res.end(() => { state.finished = true; });
  };
  pump();
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
t.teardown(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));

const LIMIT = 100_000;
const f = boundedFetch(LIMIT);

t.test('at the limit: the whole body', async (t) => {
  const res = await f(`${base}/?size=${LIMIT}`);
  t.equal((await res.text()).length, LIMIT);
  t.equal(res.status, 200);
  t.equal(res.url, `${base}/?size=${LIMIT}`, 'url kept');
});

t.test('one byte over, streamed: reading fails', async (t) => {
  const res = await f(`${base}/?size=${LIMIT + 1}`);
  await t.rejects(res.text(), ResponseTooLargeError);
});

t.test('32 MB streamed without Content-Length: cut off, never read to the end', async (t) => {
  const res = await f(`${base}/?size=${HUGE}`);
  await t.rejects(res.arrayBuffer(), ResponseTooLargeError);
  t.equal(state.finished, false);
  t.ok(state.sent < HUGE, `the server got ${state.sent} of ${HUGE} bytes out before the connection was dropped`);
});

t.test('declared Content-Length over the limit: fails before the body', async (t) => {
  await t.rejects(f(`${base}/declare?size=${HUGE}`), ResponseTooLargeError);
  t.equal(state.finished, false);
});

t.test('no body (204) passes through', async (t) => {
  const res = await f(`${base}/empty`);
  t.equal(res.status, 204);
});
