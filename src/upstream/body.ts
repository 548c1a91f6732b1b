// The request body on its way upstream: streamed, never buffered, counted against
// server.maxBodyBytes and watched for idleness (server.bodyIdleTimeoutMs).
import { Transform, type TransformCallback } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { PayloadTooLargeError, RequestTimeoutError } from '../errors.js';

/** What the body watch reports back to the proxy (which answers 413 or 408). */
export interface BodyFlags { bodyTooLarge: boolean; bodyIdle: boolean }

/**
 * The request body on its way upstream: counted against server.maxBodyBytes (without buffering)
 * and watched for idleness. Idle means the client sent nothing while we were ready to read: time
 * spent waiting on the upstream (not yet reading, or applying backpressure) does not count.
 */
export function watchBody(source: IncomingMessage, state: BodyFlags, max: number | null, idleMs: number): NodeJS.ReadableStream {
  let seen = 0;
  let pulled = false;
  const watch = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      seen += chunk.length;
      timer.refresh();
      if (max !== null && seen > max) { state.bodyTooLarge = true; cb(new PayloadTooLargeError()); return; }
      cb(null, chunk);
    },
    flush(cb) { clearTimeout(timer); cb(); },
    destroy(err, cb) { clearTimeout(timer); cb(err); },
  });
  const read = watch._read.bind(watch);
  watch._read = (n: number) => { pulled = true; read(n); };
  const timer = setTimeout(function idle() {
    if (!pulled || watch.writableNeedDrain || watch.readableLength > 0) { timer.refresh(); return; }
    state.bodyIdle = true;
    watch.destroy(new RequestTimeoutError('request body idle'));
  }, idleMs);
  timer.unref();
  source.on('error', (e) => watch.destroy(e));
  return source.pipe(watch);
}
