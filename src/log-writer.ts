// Log lines on their way to stdout, written so that a reader who falls behind (a container
// runtime's log shim, a stuck terminal) never stops the event loop. Lines are collected and
// written ~48 KB at a time and at least once a second, by a synchronous write that never
// blocks: stdout is switched to non-blocking mode, and what a full pipe does not take waits in
// memory (bounded: beyond it whole batches are dropped, counted and reported) and is retried
// shortly after. At exit (process.exit, a fatal error, the end of the event loop) and on
// shutdown, what is left is written synchronously, waiting at most a second for the reader.
//
// Access lines are formatted with their batch, not as each request ends (pushLater): built one
// at a time between requests a line cost 1–3 µs on a busy core, against ~0.4 µs for the same
// code in a loop; joining the batch and copying it into a buffer added ~1.3 µs a line more. A
// batch is encoded straight into one reused buffer (README, Performance). Batches are ~48 KB, just
// under a pipe's 64 KiB: a write to a pipe whose reader sleeps costs ~20 µs before its first byte
// (waking the reader on another CPU; bench/pipe-write.mjs), so 16 KB writes cost ~1 µs per access
// line in place and 48 KB ones half as much.
import fs from 'node:fs';

export interface LogWriterOptions {
  /** Characters collected before they are written (default 48,000: ~160 access lines, under a pipe's 64 KiB). */
  readonly batchChars?: number;
  /** Bytes waiting for a full pipe before new batches are dropped (default 8 MiB). */
  readonly maxPendingBytes?: number;
  /** The longest a collected line waits to be written (default 1000 ms). */
  readonly flushEveryMs?: number;
  /** How soon a write the pipe refused is tried again (default 10 ms). */
  readonly retryMs?: number;
}

/** Formats an item pushed with pushLater(), with the time it was pushed at; returns one line ending in '\n'. */
export type LineFormat<T> = (item: T, time: string) => string;

/**
 * Writes an item's line (as LineFormat makes it) straight into `buf` from `at` as bytes; returns
 * the end, or -1 to have the line made by LineFormat instead (a value it does not write itself,
 * or too little room).
 */
export type LineInto<T> = (item: T, time: string, buf: Uint8Array, at: number) => number;

/** What a line formatted later is counted as towards a batch (an access line is 250–350 characters). */
const DEFERRED_CHARS = 300;
/** A scratch buffer grown past this by a huge line is let go after its batch. */
const SCRATCH_KEEP_BYTES = 256 * 1024;

/** How long the synchronous writes at exit and shutdown wait for a full pipe, in all. */
const EXIT_WAIT_MS = 1000;
const SLEEP = new Int32Array(new SharedArrayBuffer(4));

export class LogWriter<T = never> {
  /** Lines, and items to format (pushLater), in the order they came. */
  private entries: Array<string | T> = [];
  /** The push times of the items in entries, in their order. */
  private times: string[] = [];
  private chars = 0;
  /** Where a batch is encoded; reused, so a batch the pipe takes at once costs no allocation. */
  private scratch: Buffer = Buffer.allocUnsafeSlow(0);
  /** Batches the pipe has not taken yet, oldest first (the first maybe partly written). */
  private readonly pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Lines dropped since the last report (the pipe stayed full beyond maxPendingBytes). */
  private dropped = 0;
  /** The descriptor failed otherwise than "full" (EPIPE: no one reads any more): write nothing more. */
  private broken = false;
  private retry: NodeJS.Timeout | null = null;
  private readonly timer: NodeJS.Timeout;
  private readonly batchChars: number;
  private readonly maxPendingBytes: number;
  private readonly retryMs: number;

  constructor(
    private readonly fd: number,
    opts: LogWriterOptions = {},
    private readonly format: LineFormat<T> | null = null,
    private readonly into: LineInto<T> | null = null,
  ) {
    this.batchChars = opts.batchChars ?? 48_000;
    this.maxPendingBytes = opts.maxPendingBytes ?? 8 * 1024 * 1024;
    this.retryMs = opts.retryMs ?? 10;
    this.timer = setInterval(() => this.flush(), opts.flushEveryMs ?? 1000);
    this.timer.unref();
    if (WRITERS.size === 0) process.on('exit', () => { for (const w of WRITERS) w.flushSync(); });
    WRITERS.add(this);
  }

  /** One line (ending in '\n'), written with its batch. */
  push(line: string): void {
    this.entries.push(line);
    this.chars += line.length;
    if (this.chars >= this.batchChars) this.flush();
  }

  /**
   * An item formatted into its line (by the constructor's format, with `time`) only when its
   * batch is written, in its place among the lines. It must not change after this call.
   */
  pushLater(item: T, time: string): void {
    this.entries.push(item);
    this.times.push(time);
    this.chars += DEFERRED_CHARS;
    if (this.chars >= this.batchChars) this.flush();
  }

  /** One line, written now (with the lines collected before it, to keep their order). */
  pushNow(line: string): void {
    this.push(line);
    this.flush();
  }

  /** Hands the collected lines to the pipe, as far as it takes them now; never waits. */
  flush(): void {
    this.collect();
    this.drain();
  }

  /**
   * Writes everything collected and pending, waiting up to a second in all for a full pipe
   * (exit, shutdown; the only place that may block). What is still left after that is dropped.
   */
  flushSync(): void {
    this.collect();
    const deadline = Date.now() + EXIT_WAIT_MS;
    while (!this.broken && this.pending.length > 0) {
      this.drain();
      if (this.pending.length === 0 || Date.now() >= deadline) break;
      Atomics.wait(SLEEP, 0, 0, 1);
    }
  }

  /** Stops the timers (tests); collected lines stay until flush() or exit. */
  close(): void {
    clearInterval(this.timer);
    if (this.retry !== null) clearTimeout(this.retry);
    this.retry = null;
    WRITERS.delete(this);
  }

  /** Bytes waiting for the pipe, and lines dropped and not yet reported (for tests). */
  stats(): { pendingBytes: number; dropped: number } {
    return { pendingBytes: this.pendingBytes, dropped: this.dropped };
  }

  /**
   * The collected lines → one batch, encoded into the scratch buffer and written from there when
   * nothing waits before it (what the pipe does not take is copied to wait); or dropped when too
   * much waits already.
   */
  private collect(): void {
    if (this.entries.length === 0) return;
    const { entries, times } = this;
    this.entries = [];
    this.times = [];
    this.chars = 0;
    if (this.broken) return;
    const bytes = this.encode(entries, times);
    if (this.pendingBytes + bytes > this.maxPendingBytes) {
      this.dropped += entries.length;
      return;
    }
    this.reportDropped();
    const batch = this.scratch.subarray(0, bytes);
    let n = 0;
    if (this.pending.length === 0) {
      n = this.write(batch);
      if (n < 0) return;
      if (n < bytes) this.retryLater();
    }
    if (n < bytes) this.queue(Buffer.from(batch.subarray(n)));
    if (this.scratch.length > SCRATCH_KEEP_BYTES) this.scratch = Buffer.allocUnsafeSlow(0);
  }

  /** Encodes the entries (formatting the items) into the scratch buffer; returns the bytes used. */
  private encode(entries: ReadonlyArray<string | T>, times: readonly string[]): number {
    let at = 0;
    let item = 0;
    for (const e of entries) {
      if (typeof e !== 'string' && this.into !== null) {
        const end = this.into(e, times[item]!, this.scratch, at);
        if (end >= 0) {
          at = end;
          item++;
          continue;
        }
      }
      const line = typeof e === 'string' ? e : this.format!(e, times[item++]!);
      // UTF-8 takes at most 3 bytes per UTF-16 code unit.
      if (at + 3 * line.length > this.scratch.length) {
        const grown = Buffer.allocUnsafeSlow(Math.max(2 * this.scratch.length, at + 3 * line.length, 64 * 1024));
        this.scratch.copy(grown, 0, 0, at);
        this.scratch = grown;
      }
      at += this.scratch.write(line, at, 'utf8');
    }
    return at;
  }

  private queue(buf: Buffer): void {
    this.pending.push(buf);
    this.pendingBytes += buf.length;
  }

  /** Writes pending batches until the pipe is full; then retries shortly. */
  private drain(): void {
    while (this.pending.length > 0) {
      const buf = this.pending[0]!;
      const n = this.write(buf);
      if (n < 0) return;
      this.pendingBytes -= n;
      if (n < buf.length) {
        this.pending[0] = buf.subarray(n);
        this.retryLater();
        return;
      }
      this.pending.shift();
    }
    // The pipe took everything: say how much could not even wait (in its place in the stream).
    if (this.dropped > 0) {
      this.reportDropped();
      this.drain();
    }
  }

  /** Bytes the descriptor took now (0: the pipe is full); -1 when it failed otherwise (nothing more is written). */
  private write(buf: Buffer): number {
    try {
      return fs.writeSync(this.fd, buf);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return 0;
      this.broken = true;
      this.pending.length = 0;
      this.pendingBytes = 0;
      return -1;
    }
  }

  private reportDropped(): void {
    if (this.dropped === 0) return;
    this.queue(Buffer.from(droppedLine(this.dropped)));
    this.dropped = 0;
  }

  private retryLater(): void {
    if (this.retry !== null) return;
    this.retry = setTimeout(() => { this.retry = null; this.drain(); }, this.retryMs);
    this.retry.unref();
  }
}

const WRITERS = new Set<{ flushSync(): void }>();

/** pino's shape (level 40, warn), so that log pipelines parse it like any other line. */
function droppedLine(count: number): string {
  return `{"level":40,"time":"${new Date().toISOString()}","service":"cdf-auth-gateway","dropped":${count},"msg":"log lines dropped: stdout was not read"}\n`;
}

/**
 * Puts stdout in non-blocking mode when it is a pipe or a socket: Node's own stdout stream does
 * that as it is created (libuv opens the descriptor non-blocking), so it is created here, before
 * the first write, for that alone. A file never blocks; a terminal is left as it is.
 */
export function nonBlockingStdout(): void {
  try {
    const st = fs.fstatSync(1);
    if (st.isFIFO() || st.isSocket()) void process.stdout;
  } catch { /* no stdout at all: writes fail with EBADF and are dropped */ }
}
