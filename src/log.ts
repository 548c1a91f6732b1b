// pino options for the whole gateway. We log only objects we build ourselves (never raw request
// headers), and redaction is the second line of defence: any field that could carry a token,
// cookie, API key or client secret is censored wherever it appears.
import pino, { type DestinationStream, type Logger } from 'pino';
import type { LogConfig } from './config/types.js';
import type { Reason } from './errors.js';
import { LogWriter, nonBlockingStdout } from './log-writer.js';
import { currentRequest } from './request/context.js';

const SECRET_KEYS = [
  'authorization', 'Authorization', 'cookie', 'Cookie', 'set-cookie', 'api-key', 'token', 'access_token',
  'id_token', 'refresh_token', 'clientSecret', 'client_secret', 'secret', 'password', 'value', 'code_verifier',
];

export const REDACT_PATHS = [
  ...SECRET_KEYS.map((k) => `["${k}"]`),
  ...SECRET_KEYS.map((k) => `*["${k}"]`),
  ...SECRET_KEYS.map((k) => `*.headers["${k}"]`),
];

/** Drops the query string: queries may carry codes, states or (refused) tokens. */
export function pathOnly(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q) + '?[redacted]';
}

interface LoggableError { name?: string; message?: string; code?: unknown; detail?: string; status?: number; reason?: string; cause?: unknown }

/** How deep a cause chain is followed (undici/fetch errors nest two or three levels). */
const MAX_CAUSES = 4;

/**
 * Errors are logged by type, code, message and cause chain: no stacks full of request data, no
 * response bodies. A string (a prepared description) is logged as the message. Without this,
 * pino's default serializer logged a string as `{}` and dropped `fetch failed`'s cause (the
 * ECONNREFUSED that says why).
 */
export function errSerializer(err: unknown, depth = 0): Record<string, unknown> {
  if (typeof err === 'string') return { message: err };
  if (typeof err !== 'object' || err === null) return { message: String(err) };
  const e = err as LoggableError;
  const out: Record<string, unknown> = { type: e.name ?? (err as object).constructor?.name, message: e.message };
  if (typeof e.code === 'string' || typeof e.code === 'number') out.code = e.code;
  if (typeof e.status === 'number') out.status = e.status;
  if (typeof e.reason === 'string') out.reason = e.reason;
  if (typeof e.detail === 'string') out.detail = e.detail;
  if (e.cause !== undefined && e.cause !== null && depth < MAX_CAUSES) {
    // A fetch Response as cause (oauth4webapi) carries the body: only its status is kept.
    out.cause = typeof Response !== 'undefined' && e.cause instanceof Response
      ? { type: 'Response', status: e.cause.status } : errSerializer(e.cause, depth + 1);
  }
  if (err instanceof AggregateError && depth < MAX_CAUSES) out.errors = err.errors.slice(0, 4).map((x) => errSerializer(x, depth + 1));
  return out;
}

/**
 * One line for an error and its causes: `fetch failed < connect ECONNREFUSED 127.0.0.1:4000 (ECONNREFUSED)`.
 * For messages that end up in `detail` strings and other errors' messages.
 */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let i = 0; i <= MAX_CAUSES && e !== undefined && e !== null; i++) {
    if (typeof e !== 'object') { parts.push(String(e)); break; }
    const { name, message, code } = e as LoggableError;
    const text = (message ?? '').split('\n', 1)[0] || name || 'error';
    const withCode = (typeof code === 'string' || typeof code === 'number') && !text.includes(String(code)) ? `${text} (${code})` : text;
    parts.push(withCode);
    const cause = (e as LoggableError).cause;
    if (typeof Response !== 'undefined' && cause instanceof Response) { parts.push(`HTTP ${cause.status}`); break; }
    e = cause;
  }
  return parts.join(' < ');
}

/**
 * Every line written while a request is being handled names it (the access line sets it itself).
 * A new object each time: pino merges the line's fields into it.
 */
function requestFields(): object {
  const ctx = currentRequest();
  return ctx === undefined ? {} : { requestId: ctx.id };
}

export interface Loggers {
  /** Everything but access lines: redacted. */
  readonly logger: Logger;
  /** The access lines' logger: its level decides whether they are written (info). */
  readonly access: Logger;
  /**
   * Writes one access line (see accessLineJson) to the access logger's destination. To stdout
   * the line is formatted later, with its batch: `line` must not change after the call.
   */
  readonly writeAccess: (line: AccessLine) => void;
  /** Writes the lines collected so far (shutdown), waiting at most a second for a full pipe. */
  readonly flushAccess: () => void;
}

/**
 * What an access line holds. Its fields are fixed and built from non-secret values (the path
 * without its query), so the wildcard redaction (a scan of every field per path, per line) is
 * not needed on this per-request path.
 */
export interface AccessLine {
  requestId?: string | null;
  ip?: string;
  method: string | null | undefined; path: string | null; route: string; decision: string; reason: Reason | null;
  sub: string | null; status: number; ms: number; upgrade?: 'websocket';
}

/** Printable ASCII but `"` and `\`: written between quotes as is. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
const jsonString = (s: string | null | undefined): string =>
  s === null || s === undefined ? 'null' : PLAIN.test(s) ? `"${s}"` : JSON.stringify(s);

let isoMs = 0;
let isoText = '';
/** pino's isoTime, made once per millisecond (thousands of lines share one). */
function isoNow(): string {
  const now = Date.now();
  if (now !== isoMs) { isoMs = now; isoText = new Date(now).toISOString(); }
  return isoText;
}

/**
 * `ms` as JSON, as `String(ms)` writes it. Durations are rounded to hundredths and written from
 * integers: ~50 ns a call in a loop, against ~220 ns for V8's double-to-string. Anything not a
 * whole number of hundredths (or huge, or negative) goes through String().
 */
export function msJson(ms: number): string {
  if (!Number.isFinite(ms)) return '0';
  const h = Math.round(ms * 100);
  if (h < 0 || h > 1e12 || h / 100 !== ms) return String(ms);
  const whole = Math.floor(h / 100);
  const cents = h - whole * 100;
  if (cents === 0) return `${whole}`;
  return cents % 10 === 0 ? `${whole}.${cents / 10}` : `${whole}.${cents < 10 ? '0' : ''}${cents}`;
}

/**
 * One access line, exactly as pino would write it (level, time, service, the fields, msg), built
 * by hand: pino's generic serialisation cost about twice as much per line, on every request.
 */
export function accessLineJson(l: AccessLine): string {
  return accessLineAt(l, isoNow());
}

/** accessLineJson with the line's time given (a line formatted after it was made: LogWriter.pushLater). */
export function accessLineAt(l: AccessLine, time: string): string {
  let out = `{"level":30,"time":"${time}","service":"cdf-auth-gateway"`;
  if (l.requestId !== undefined) out += `,"requestId":${jsonString(l.requestId)}`;
  if (l.ip !== undefined) out += `,"ip":${jsonString(l.ip)}`;
  // The decision and the reason are codes of the gateway's own (no character needs escaping).
  out += `,"method":${jsonString(l.method)},"path":${jsonString(l.path)},"route":${jsonString(l.route)},"decision":"${l.decision}"`
    + `,"reason":${l.reason === null ? 'null' : `"${l.reason}"`},"sub":${jsonString(l.sub)},"status":${l.status},"ms":${msJson(l.ms)}`;
  if (l.upgrade !== undefined) out += `,"upgrade":"${l.upgrade}"`;
  return out + ',"msg":"request"}\n';
}

/** Bytes `s` (printable ASCII, nothing to escape: the line's fixed text) takes in `buf` from `at`; returns the end. */
function putText(buf: Uint8Array, at: number, s: string): number {
  for (let i = 0; i < s.length; i++) buf[at++] = s.charCodeAt(i);
  return at;
}

/** `s` as a JSON string (or null) into `buf`, when written as is; -1 when a character needs escaping or is not ASCII. */
function putString(buf: Uint8Array, at: number, s: string | null | undefined): number {
  if (s === null || s === undefined) return putText(buf, at, 'null');
  buf[at++] = 0x22;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return -1;
    buf[at++] = c;
  }
  buf[at++] = 0x22;
  return at;
}

// The line's fixed text in a few pieces of bytes, each copied whole (TypedArray#set) rather than
// a character at a time, and made again only when what it holds changes: the head once a
// millisecond (its time), the route's piece when the route, decision or reason differ from the
// line before (under load, runs of lines share them), the status's piece likewise.
const latin1 = (s: string): Uint8Array => Buffer.from(s, 'latin1');
const END = latin1(',"msg":"request"}\n');
const head = { time: '', bytes: END };
const mid: { route: string | null; decision: string; reason: Reason | null; bytes: Uint8Array } = { route: null, decision: '', reason: null, bytes: END };
const tail = { status: -1, bytes: END };

function putBytes(buf: Uint8Array, at: number, bytes: Uint8Array): number {
  buf.set(bytes, at);
  return at + bytes.length;
}

/** The fixed text of an access line (188 bytes with every optional field and every value's quotes), rounded up. */
const LINE_FIXED_BYTES = 200;
const len = (s: string | null | undefined): number => (s === null || s === undefined ? 4 : s.length);

/**
 * accessLineAt's line written straight into `buf` at `at` as its bytes, without making it a
 * string first: the batch's writer (LogWriter) spares the string's building, flattening and
 * UTF-8 encoding, ~0.9 µs of a line (README, Performance). Returns the end; -1 when a value needs
 * JSON escaping or is not ASCII, or `buf` may be too short (the caller writes accessLineAt's
 * string instead).
 */
export function accessLineInto(l: AccessLine, time: string, buf: Uint8Array, at: number): number {
  const { requestId, ip, method, path, route, decision, sub, reason, status, upgrade } = l;
  const ms = msJson(l.ms);
  const most = LINE_FIXED_BYTES + time.length + len(requestId) + len(ip) + len(method) + len(path) + route.length + len(sub)
    + decision.length + len(reason) + ms.length + (status >= 100 && status <= 999 ? 3 : `${status}`.length) + (upgrade?.length ?? 0);
  if (at + most > buf.length) return -1;
  // The time (toISOString), the decision, the reason and the upgrade are the gateway's own codes.
  if (time !== head.time) { head.time = time; head.bytes = latin1(`{"level":30,"time":"${time}","service":"cdf-auth-gateway"`); }
  let p = putBytes(buf, at, head.bytes);
  if (requestId !== undefined) {
    p = putString(buf, putText(buf, p, ',"requestId":'), requestId);
    if (p < 0) return -1;
  }
  if (ip !== undefined) {
    p = putString(buf, putText(buf, p, ',"ip":'), ip);
    if (p < 0) return -1;
  }
  p = putString(buf, putText(buf, p, ',"method":'), method);
  if (p < 0) return -1;
  p = putString(buf, putText(buf, p, ',"path":'), path);
  if (p < 0) return -1;
  if (route !== mid.route || decision !== mid.decision || reason !== mid.reason) {
    if (!PLAIN.test(route)) return -1;
    mid.route = route; mid.decision = decision; mid.reason = reason;
    mid.bytes = latin1(`,"route":"${route}","decision":"${decision}","reason":${reason === null ? 'null' : `"${reason}"`},"sub":`);
  }
  p = putString(buf, putBytes(buf, p, mid.bytes), sub);
  if (p < 0) return -1;
  if (status !== tail.status) { tail.status = status; tail.bytes = latin1(`,"status":${status},"ms":`); }
  p = putText(buf, putBytes(buf, p, tail.bytes), ms);
  if (upgrade !== undefined) {
    p = putText(buf, p, ',"upgrade":"');
    p = putText(buf, p, upgrade);
    buf[p++] = 0x22;
  }
  return putBytes(buf, p, END);
}

export function createLoggers(cfg: Pick<LogConfig, 'level'>, destination?: DestinationStream): Loggers {
  // stdout: access lines are collected and written in batches; the rarer other lines (start,
  // warnings, errors) are written at once, behind the access lines collected before them. A
  // caller's own destination (tests, embedding) gets each line as it is made.
  const out = destination === undefined ? stdoutWriter() : null;
  const dest: DestinationStream = out === null ? destination! : { write: (line: string) => out.pushNow(line), flush: (cb?: () => void) => { out.flushSync(); cb?.(); } } as DestinationStream;
  const common = { level: cfg.level, base: { service: 'cdf-auth-gateway' }, timestamp: pino.stdTimeFunctions.isoTime };
  const access = pino(common, dest);
  let accessOn = access.isLevelEnabled('info');
  access.on('level-change', () => { accessOn = access.isLevelEnabled('info'); });
  // To stdout an access line is formatted with its batch (LogWriter.pushLater), stamped now.
  const emit = out === null ? (line: AccessLine) => { dest.write(accessLineJson(line)); } : (line: AccessLine) => out.pushLater(line, isoNow());
  return {
    logger: pino({
      ...common,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: { err: errSerializer, error: errSerializer, url: pathOnly },
      mixin: requestFields,
    }, dest),
    access,
    // The level is read once per change, not per request (pino's isLevelEnabled: ~0.1 µs in place).
    writeAccess: (line) => { if (accessOn) emit(line); },
    flushAccess: () => { out?.flushSync(); },
  };
}

let stdout: LogWriter<AccessLine> | null = null;
/** The one writer of stdout (every gateway in the process shares it, as they share the descriptor). */
function stdoutWriter(): LogWriter<AccessLine> {
  if (stdout === null) {
    nonBlockingStdout();
    stdout = new LogWriter(1, {}, accessLineAt, accessLineInto);
  }
  return stdout;
}
