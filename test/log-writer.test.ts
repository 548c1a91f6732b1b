// LogWriter against real FIFOs (Linux): batches in order, a full pipe that never blocks the
// event loop, bounded waiting with dropped lines reported in place, a reader that went away,
// the synchronous writes of shutdown and exit.
import t, { type Test } from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { LogWriter } from '../src/log-writer.js';

const { O_RDONLY, O_WRONLY, O_NONBLOCK } = fs.constants;
const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist/log-writer.js');

/** A FIFO with a non-blocking reader and a non-blocking writer (stdout after nonBlockingStdout). */
function fifo(t: Test): { file: string; reader: number; writer: number } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'log-writer-'));
  const file = path.join(dir, 'out');
  execFileSync('mkfifo', [file]);
  const reader = fs.openSync(file, O_RDONLY | O_NONBLOCK);
  const writer = fs.openSync(file, O_WRONLY | O_NONBLOCK);
  t.teardown(() => {
    for (const fd of [reader, writer]) { try { fs.closeSync(fd); } catch { /* closed by the test */ } }
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { file, reader, writer };
}

/** Everything the pipe holds now, as bytes. */
function readBytes(fd: number): Buffer {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(65536);
  for (;;) {
    let n: number;
    try { n = fs.readSync(fd, buf); } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') break;
      throw err;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks);
}

/** Everything the pipe holds now. */
const readNow = (fd: number): string => readBytes(fd).toString();

/** Reads until `writer` has nothing pending (its retries run on timers meanwhile); decoded once, whole. */
async function readAll(fd: number, writer: { stats(): { pendingBytes: number } }): Promise<string> {
  const chunks: Buffer[] = [];
  for (let i = 0; i < 2000; i++) {
    chunks.push(readBytes(fd));
    if (writer.stats().pendingBytes === 0) return Buffer.concat([...chunks, readBytes(fd)]).toString();
    await sleep(2);
  }
  throw new Error('the writer never drained');
}

const line = (i: number, pad = 100): string => `{"n":${i},"pad":"${'x'.repeat(pad)}"}\n`;

t.test('lines are written in batches, in order; flush() writes what was collected', async (t) => {
  const p = fifo(t);
  const w = new LogWriter(p.writer, { batchChars: 1000 });
  t.teardown(() => w.close());
  w.push(line(1));
  w.push(line(2));
  t.equal(readNow(p.reader), '', 'under batchChars: nothing written yet');
  for (let i = 3; i <= 12; i++) w.push(line(i));
  const first = readNow(p.reader);
  t.ok(first.length >= 1000, 'a full batch is written at once');
  w.flush();
  const all = first + readNow(p.reader);
  t.equal(all, Array.from({ length: 12 }, (_, i) => line(i + 1)).join(''));
  w.pushNow('{"msg":"now"}\n');
  t.equal(readNow(p.reader), '{"msg":"now"}\n', 'pushNow writes at once');
});

t.test('by default a batch is about 48 KB: fewer writes (each wakes the reader), yet it fits an empty pipe whole', async (t) => {
  const p = fifo(t);
  const w = new LogWriter(p.writer);
  t.teardown(() => w.close());
  const l = line(0, 290); // an access line's size
  let pushed = 0;
  while ((pushed + 1) * l.length < 40_000) { w.push(l); pushed++; }
  t.equal(readNow(p.reader), '', 'nothing written under 40,000 characters');
  while (readBytes(p.reader).length === 0 && pushed < 1000) { w.push(l); pushed++; }
  // What the reader has now is the first batch; it is written in one piece (nothing waits).
  t.ok(pushed * l.length >= 40_000 && pushed * l.length <= 65_536, `the batch was written after ${pushed * l.length} characters`);
  t.equal(w.stats().pendingBytes, 0, 'the pipe took the whole batch');
});

t.test('a full pipe does not block: the rest waits and is written, in order, once the reader reads', async (t) => {
  const p = fifo(t);
  const w = new LogWriter(p.writer, { batchChars: 16_000, retryMs: 1 });
  t.teardown(() => w.close());
  const lines = Array.from({ length: 3000 }, (_, i) => line(i)); // ~340 KB: five times a pipe's 64 KB
  for (const l of lines) w.push(l);
  w.flush();
  t.ok(w.stats().pendingBytes > 0, 'the pipe was full: lines wait in memory');
  t.equal(w.stats().dropped, 0);
  t.equal(await readAll(p.reader, w), lines.join(''), 'every line, once, in order');
});

t.test('beyond maxPendingBytes whole batches are dropped, counted, and reported where they were', async (t) => {
  const p = fifo(t);
  const w = new LogWriter(p.writer, { batchChars: 1000, maxPendingBytes: 20_000, retryMs: 1 });
  t.teardown(() => w.close());
  const lines = Array.from({ length: 2000 }, (_, i) => line(i)); // ~230 KB against 64 KB + 20 KB
  for (const l of lines) w.push(l);
  const dropped = w.stats().dropped;
  t.ok(dropped > 0, `lines dropped: ${dropped}`);
  t.ok(w.stats().pendingBytes <= 20_000, 'no more than maxPendingBytes waits');
  w.flush(); // the last lines, fewer than a batch: they fit, behind the report of the drop
  t.equal(w.stats().dropped, 0, 'reported');
  w.pushNow('{"msg":"after"}\n');
  const out = (await readAll(p.reader, w)).split('\n').filter(Boolean);
  const report = out.findIndex((l) => l.includes('log lines dropped'));
  t.ok(report > 0, 'the drop is reported');
  const warn = JSON.parse(out[report]!);
  t.equal(warn.level, 40);
  t.equal(warn.dropped, dropped, 'with the number of lines');
  const n = (ls: string[]): number[] => ls.filter((l) => l.startsWith('{"n":')).map((l) => JSON.parse(l).n as number);
  const before = n(out.slice(0, report));
  const after = n(out.slice(report + 1));
  t.same(before, before.map((_, i) => i), 'before the report: the lines that waited, from the first, in order');
  t.same(after, after.map((_, i) => lines.length - after.length + i), 'after it: the last lines (the final flush), in order');
  t.equal(before.length + dropped + after.length, lines.length, 'each line either written or counted');
  t.equal(out[out.length - 1], '{"msg":"after"}', 'a line pushed after the drop comes last');
});

interface Item { n: number; text: string }
const itemLine = (x: Item, time: string): string => `{"n":${x.n},"time":"${time}","text":${JSON.stringify(x.text)}}\n`;

t.test('pushLater: items are formatted only when their batch is written, with their push time, in place among lines', async (t) => {
  const p = fifo(t);
  let formatted = 0;
  const w = new LogWriter<Item>(p.writer, { batchChars: 100_000 }, (x, time) => { formatted++; return itemLine(x, time); });
  t.teardown(() => w.close());
  w.push(line(0));
  w.pushLater({ n: 1, text: 'a' }, 'T1');
  w.push(line(2));
  w.pushLater({ n: 3, text: 'b' }, 'T3');
  t.equal(formatted, 0, 'nothing formatted before the batch is written');
  w.pushNow('{"msg":"now"}\n');
  t.equal(formatted, 2, 'each item formatted once, as its batch is written');
  t.equal(readNow(p.reader), line(0) + itemLine({ n: 1, text: 'a' }, 'T1') + line(2) + itemLine({ n: 3, text: 'b' }, 'T3') + '{"msg":"now"}\n',
    'in the order pushed, each with the time given when it was pushed');
});

t.test('pushLater with a byte writer: items it writes and items it leaves to the formatter, in order, byte for byte', async (t) => {
  const p = fifo(t);
  let intoCalls = 0;
  let formatted = 0;
  // Writes ASCII items itself; leaves the others (and any item when room is short) to the formatter.
  const into = (x: Item, time: string, buf: Uint8Array, at: number): number => {
    intoCalls++;
    const text = itemLine(x, time);
    if (!/^[\x00-\x7f]*$/.test(text) || at + text.length > buf.length) return -1;
    buf.fill(0x3f, at, Math.min(buf.length, at + 2 * text.length)); // scribbles past its end: must not matter
    for (let i = 0; i < text.length; i++) buf[at + i] = text.charCodeAt(i);
    return at + text.length;
  };
  const w = new LogWriter<Item>(p.writer, { batchChars: 1_000_000 }, (x, time) => { formatted++; return itemLine(x, time); }, into);
  t.teardown(() => w.close());
  const items = Array.from({ length: 400 }, (_, i): Item => ({ n: i, text: i % 9 === 0 ? `é€${i}` : 'x'.repeat(i % 50) }));
  w.push(line(-1));
  for (const x of items) w.pushLater(x, `T${x.n}`);
  w.push(line(-2));
  w.flush();
  t.equal(readNow(p.reader), line(-1) + items.map((x) => itemLine(x, `T${x.n}`)).join('') + line(-2), 'every line in its place');
  t.equal(intoCalls, 400, 'the byte writer is asked for every item');
  t.ok(formatted >= 45 && formatted < 100, `the formatter makes the rest (${formatted}: the non-ASCII ones, and any met with too little room)`);
});

t.test('pushLater: a batch counts ~300 characters per item, so items alone fill and write batches', async (t) => {
  const p = fifo(t);
  const w = new LogWriter<Item>(p.writer, { batchChars: 3000 }, itemLine);
  t.teardown(() => w.close());
  for (let i = 0; i < 9; i++) w.pushLater({ n: i, text: '' }, 'T');
  t.equal(readNow(p.reader), '', 'nine items: under the batch');
  w.pushLater({ n: 9, text: '' }, 'T');
  t.equal(readNow(p.reader), Array.from({ length: 10 }, (_, i) => itemLine({ n: i, text: '' }, 'T')).join(''), 'the tenth writes the batch');
});

t.test('pushLater: what a full pipe does not take waits as a copy; later batches reuse the buffer without touching it', async (t) => {
  const p = fifo(t);
  const w = new LogWriter<Item>(p.writer, { batchChars: 16_000, retryMs: 1 }, itemLine);
  t.teardown(() => w.close());
  // Multi-byte text (2, 3 and 4 bytes in UTF-8) and one line of 200 KB, larger than the pipe and the buffer.
  const texts = ['plain', 'é'.repeat(300), '€'.repeat(500), '😀'.repeat(200)];
  const items = Array.from({ length: 3000 }, (_, i): Item => ({ n: i, text: i === 700 ? 'x'.repeat(200_000) : texts[i % 7 === 0 ? (i / 7) % texts.length : 0]! }));
  for (const x of items.slice(0, 1500)) w.pushLater(x, `T${x.n}`);
  w.flush();
  t.ok(w.stats().pendingBytes > 0, 'the pipe was full: batches wait in memory');
  for (const x of items.slice(1500)) w.pushLater(x, `T${x.n}`);
  w.flush();
  t.equal(w.stats().dropped, 0);
  t.equal(await readAll(p.reader, w), items.map((x) => itemLine(x, `T${x.n}`)).join(''), 'every line, once, in order, byte for byte');
});

t.test('a reader that went away (EPIPE): nothing throws, nothing more waits', async (t) => {
  const p = fifo(t);
  const w = new LogWriter(p.writer, { batchChars: 100 });
  t.teardown(() => w.close());
  fs.closeSync(p.reader);
  t.doesNotThrow(() => { for (let i = 0; i < 100; i++) w.push(line(i)); w.flush(); w.flushSync(); });
  t.same(w.stats(), { pendingBytes: 0, dropped: 0 });
});

t.test('flushSync (shutdown) waits for a reader that comes later, and writes everything', async (t) => {
  const p = fifo(t);
  const w = new LogWriter(p.writer, { batchChars: 16_000, retryMs: 1 });
  t.teardown(() => w.close());
  const lines = Array.from({ length: 2000 }, (_, i) => line(i)); // ~230 KB
  for (const l of lines) w.push(l);
  t.ok(w.stats().pendingBytes > 0, 'the pipe is full and nobody reads');
  // A second reader, a process that starts while this thread waits in flushSync (ours never reads).
  const copy = path.join(path.dirname(p.file), 'copy');
  const cat = spawn('sh', ['-c', `exec cat "${p.file}" > "${copy}"`], { stdio: 'ignore' });
  w.flushSync();
  t.equal(w.stats().pendingBytes, 0, 'all written before flushSync returned');
  fs.closeSync(p.writer);
  fs.closeSync(p.reader);
  await once(cat, 'exit');
  t.equal(fs.readFileSync(copy, 'utf8'), lines.join(''));
});

t.test('at exit every collected line is written; stdout, a blocking FIFO, becomes non-blocking', async (t) => {
  const p = fifo(t);
  const blocking = fs.openSync(p.file, O_WRONLY); // as a container runtime hands it over
  const script = `
    import fs from 'node:fs';
    import { LogWriter, nonBlockingStdout } from ${JSON.stringify(DIST)};
    const nonBlocking = () => (parseInt(/flags:\\s*(\\d+)/.exec(fs.readFileSync('/proc/self/fdinfo/1', 'utf8'))[1], 8) & fs.constants.O_NONBLOCK) !== 0;
    const before = nonBlocking();
    nonBlockingStdout();
    fs.writeSync(2, JSON.stringify({ before, after: nonBlocking() }));
    const w = new LogWriter(1);
    for (let i = 0; i < 1000; i++) w.push('{"n":' + i + ',"pad":"' + 'x'.repeat(100) + '"}\\n');
    process.exit(0);
  `;
  // Through env -i: the test runner adds its loaders to the environment of every process it sees
  // spawned, and they would create process.stdout (non-blocking) before the script runs.
  const child = spawn('env', ['-i', `PATH=${process.env.PATH ?? ''}`, process.execPath, '--input-type=module', '-e', script], { stdio: ['ignore', blocking, 'pipe'] });
  fs.closeSync(blocking);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  let stdout = '';
  let exited = false;
  const done = once(child, 'close');
  void done.then(() => { exited = true; });
  while (!exited) { stdout += readNow(p.reader); await sleep(5); } // ~113 KB: more than the FIFO holds
  stdout += readNow(p.reader);
  const [code] = await done;
  t.equal(code, 0, stderr);
  t.same(JSON.parse(stderr), { before: false, after: true });
  t.equal(stdout, Array.from({ length: 1000 }, (_, i) => line(i)).join(''), 'all 1,000 lines, in order');
});
