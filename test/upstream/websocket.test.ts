// The frame-boundary cutter that lets the gateway close a tunnel itself: frames pass untouched
// however the bytes are chunked, and a close frame goes in only between frames.
import t from 'tap';
import { FrameCutter, closeFrame } from '../../src/upstream/websocket.js';

function frame(payload: Buffer, masked = false): Buffer {
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x82, len]) : len < 65536 ? Buffer.from([0x82, 126, len >> 8, len & 0xff]) : (() => {
    const h = Buffer.alloc(10); h[0] = 0x82; h[1] = 127; h.writeBigUInt64BE(BigInt(len), 2); return h;
  })();
  if (!masked) return Buffer.concat([head, payload]);
  head[1]! |= 0x80;
  return Buffer.concat([head, Buffer.from([1, 2, 3, 4]), payload]);
}

async function run(chunks: Buffer[], cutAfterChunk: number | null, close = closeFrame(1008, 'session ended', false)): Promise<Buffer> {
  const c = new FrameCutter();
  const out: Buffer[] = [];
  c.on('data', (b: Buffer) => out.push(b));
  const ended = new Promise<void>((r) => c.once('end', () => r()));
  chunks.forEach((ch, i) => {
    c.write(ch);
    if (i === cutAfterChunk) c.cutWith(close);
  });
  if (cutAfterChunk === null) c.end();
  await ended;
  return Buffer.concat(out);
}

const split = (b: Buffer, sizes: number[]): Buffer[] => {
  const parts: Buffer[] = [];
  let at = 0;
  for (const s of sizes) { parts.push(b.subarray(at, at + s)); at += s; }
  if (at < b.length) parts.push(b.subarray(at));
  return parts;
};

t.test('frames pass through untouched, whatever the chunking', async (t) => {
  const frames = Buffer.concat([frame(Buffer.from('a')), frame(Buffer.alloc(300, 7)), frame(Buffer.alloc(70000, 9)), frame(Buffer.from('z'), true)]);
  for (const sizes of [[1, 1, 1, 1, 1], [3, 200, 5], [frames.length], [2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]]) {
    t.same(await run(split(frames, sizes), null), frames, `chunks ${sizes.join(',')}`);
  }
});

t.test('a close goes in between frames, never inside one', async (t) => {
  const a = frame(Buffer.alloc(300, 1));
  const b = frame(Buffer.alloc(10, 2));
  const close = closeFrame(1008, 'session ended', false);
  // Cut requested in the middle of frame a (and of its header): a finishes, then the close; b is dropped.
  for (const sizes of [[1], [2], [50], [a.length - 1]]) {
    const got = await run(split(Buffer.concat([a, b]), sizes), 0, close);
    t.same(got, Buffer.concat([a, close]), `cut after ${sizes[0]} bytes`);
  }
  // Cut requested exactly at a boundary: the close comes at once.
  t.same(await run([a, b], 0, close), Buffer.concat([a, close]));
});

t.test('close frames', async (t) => {
  t.same([...closeFrame(1008, 'x', false)], [0x88, 3, 0x03, 0xf0, 0x78]);
  const masked = closeFrame(1001, 'bye', true);
  t.equal(masked[1]! & 0x80, 0x80, 'masked from the client side');
  const key = masked.subarray(2, 6);
  const body = Buffer.from(masked.subarray(6).map((v, i) => v ^ key[i & 3]!));
  t.equal(body.readUInt16BE(0), 1001);
  t.equal(body.subarray(2).toString(), 'bye');
});
