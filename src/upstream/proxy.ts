// Streams an authorised request to its upstream with undici directly: one keep-alive Pool per
// upstream origin, the response written straight into the raw ServerResponse (no intermediate
// Readable, no redirects followed), transport failures mapped to 502/504.
//
// Until the upstream's response headers arrive nothing is written to the client: a failure is
// handed to reply.send() as a GatewayError, and server.ts's error handler answers as for any
// other error. Once they arrive the reply is hijacked and the body is piped by hand (with backpressure);
// Fastify's onResponse hooks still run when the raw response finishes.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Pool, type Dispatcher } from 'undici';
import { BadGatewayError, GatewayTimeoutError, PayloadTooLargeError, RequestTimeoutError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { CONNECTION_ERRORS, TIMEOUT_CODES, codes, failureKind } from './failures.js';
import { endTrace, traceUpstream, type UpstreamTrace } from './trace.js';
import type { CompiledRoute } from '../policy/rules.js';
import { clientResponseHeadersRaw, upstreamRequestHeaders, type ForwardContext } from './headers.js';
import { watchBody } from './body.js';
import { redirectBases } from './location.js';
import { upstreamCorsHeaders } from '../http/cors.js';
import { REQUEST_ID_HEADER } from '../request/id.js';
import { runInRequest } from '../request/context.js';

/** Per-request state the proxy reads; built by the handler for forward(). */
export interface ProxyState {
  readonly route: CompiledRoute;
  readonly forward: ForwardContext;
  readonly secret: string | null;
  /** The gateway's own Set-Cookie lines (session renewal) added to the upstream's response. */
  readonly setCookies: readonly string[] | null;
  /** The caller was authenticated by a session cookie (the response must stay out of shared caches). */
  readonly viaSession: boolean;
  /** The gateway's public origin: upstream redirects into the route's base path are rewritten onto it. */
  readonly publicUrl: string;
  readonly startedAt: number; // performance.now()
  bodyTooLarge: boolean;
  /** The client stopped sending the body for bodyIdleTimeoutMs. */
  bodyIdle: boolean;
}

// Retried once, on connection errors only, and only when there is no body to replay.
const RETRY_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Characters a canonical path may hold raw that WHATWG URL (and so reply-from) percent-encodes. */
const URL_ENCODED = /["<>`{}]/g;
const encodeChar = (c: string) => '%' + c.charCodeAt(0).toString(16).toUpperCase();

function hasBody(raw: IncomingMessage): boolean {
  const len = raw.headers['content-length'];
  return raw.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

export interface Proxy {
  /**
   * Streams the request and its response; a failure before the response started is answered
   * through reply.send(GatewayError) (the error handler). Returns nothing to wait for: Fastify
   * would otherwise chain a promise per request. Throws (synchronously) a body over the limit.
   */
  forward(request: FastifyRequest, reply: FastifyReply, state: ProxyState, path: string): void;
  /** Closes the upstream pools (idle keep-alive connections). */
  close(): Promise<void>;
}

export interface ProxyOptions {
  maxBodyBytes: number | null;
  /** A request body idle this long aborts the request (default 30 s). */
  bodyIdleTimeoutMs?: number;
  metrics: Metrics;
  /** Idle upstream keep-alive (default 30 s). */
  keepAliveTimeoutMs?: number;
  /** TCP connect timeout (default 10 s). */
  connectTimeoutMs?: number;
}

export function createProxy(opts: ProxyOptions): Proxy {
  const { maxBodyBytes, metrics } = opts;
  const bodyIdleMs = opts.bodyIdleTimeoutMs ?? 30_000;
  const poolOptions: Pool.Options = {
    keepAliveTimeout: opts.keepAliveTimeoutMs ?? 30_000,
    connect: { timeout: opts.connectTimeoutMs ?? 10_000 },
  };
  // One pool per origin (upstreams may share one); looked up by upstream URL so the hot path
  // never parses a URL. upstreamPath() already carries the upstream's base path.
  const byOrigin = new Map<string, Pool>();
  const pools = new Map<string, Pool>();
  const poolOf = (url: string): Pool => {
    let p = pools.get(url);
    if (p === undefined) {
      const origin = new URL(url).origin;
      p = byOrigin.get(origin) ?? new Pool(origin, poolOptions);
      byOrigin.set(origin, p);
      pools.set(url, p);
    }
    return p;
  };

  return {
    forward(request, reply, state, path) {
      const raw = request.raw;
      let stream: NodeJS.ReadableStream | null = null;
      if (hasBody(raw)) {
        const declared = raw.headers['content-length'];
        if (maxBodyBytes !== null && declared !== undefined && Number(declared) > maxBodyBytes) throw new PayloadTooLargeError();
        stream = watchBody(raw, state, maxBodyBytes, bodyIdleMs);
      }

      let upstreamPath = state.route.upstreamPath(path);
      if (upstreamPath.search(URL_ENCODED) !== -1) upstreamPath = upstreamPath.replace(URL_ENCODED, encodeChar);
      const url = raw.url!;
      const q = url.indexOf('?');
      if (q > 0) upstreamPath += url.slice(q);

      const timeout = state.route.upstream.timeoutMs;
      const headers = upstreamRequestHeaders(raw.headers, state.forward);
      // RFC 9110 §7.6.2 (server.ts answers Max-Forwards: 0 itself and refuses malformed values).
      const mf = headers['max-forwards'];
      if (raw.method === 'OPTIONS' && typeof mf === 'string') headers['max-forwards'] = (BigInt(mf) - 1n).toString();
      const trace = traceUpstream(headers, raw.method!, state, request.observed ?? null);
      const dispatchOpts: Dispatcher.DispatchOptions = {
        method: raw.method! as Dispatcher.HttpMethod,
        path: upstreamPath,
        headers,
        body: stream as never,
        headersTimeout: timeout,
        bodyTimeout: timeout,
      };
      const pool = poolOf(state.route.upstream.url);
      const retryable = stream === null && RETRY_METHODS.has(raw.method!);
      // The request is allowed: now the client may send the body it announced (server.ts
      // answers checkContinue itself, so nothing was sent before the decision).
      const expect = raw.headers.expect;
      if (stream !== null && expect !== undefined && expect.toLowerCase() === '100-continue') reply.raw.writeContinue();
      const settle: Settle = { fail: (err) => failed(request, reply, err), metrics, retried: !retryable, trace };
      pool.dispatch(dispatchOpts, new ProxyHandler(pool, dispatchOpts, request, reply, state, settle) as unknown as Dispatcher.DispatchHandler);
    },
    async close() {
      const all = [...byOrigin.values()];
      byOrigin.clear();
      pools.clear();
      await Promise.all(all.map(async (p) => {
        // Graceful: no request is in flight once the server has drained; don't wait on a stuck one.
        let timer: NodeJS.Timeout | undefined;
        const forced = new Promise<void>((r) => { timer = setTimeout(() => { void p.destroy().then(r, r); }, 2000); timer.unref(); });
        try { await Promise.race([p.close(), forced]); } catch { /* already closed */ } finally { clearTimeout(timer); }
      }));
    },
  };
}

/**
 * Answers a failure before the response started, in the request's context (undici calls back
 * from the connection's): its log lines and spans name the request.
 */
function failed(request: FastifyRequest, reply: FastifyReply, err: Error): void {
  const ctx = request.observed;
  if (ctx === null) { reply.send(err); return; }
  runInRequest(ctx, () => reply.send(err));
}

interface Settle {
  /** The request failed before its response started. */
  fail(err: Error): void;
  readonly metrics: Metrics;
  /** True once no further attempt may be made. */
  retried: boolean;
  trace: UpstreamTrace | null; // the upstream call's span (tracing on), ended once with the call
}

/**
 * One upstream attempt. Written against undici's core handler interface (onConnect/onHeaders/
 * onData/onComplete/onError), which Client calls directly, without the controller wrapper.
 */
class ProxyHandler {
  private abort: ((err?: Error) => void) | null = null;
  private resume: (() => void) | null = null;
  private started = false; // response headers written to the client (or the client is gone)
  private done = false;
  private readonly res: ServerResponse;
  private onDrain: (() => void) | null = null;

  constructor(
    private readonly pool: Pool,
    private readonly opts: Dispatcher.DispatchOptions,
    private readonly request: FastifyRequest,
    private readonly reply: FastifyReply,
    private readonly state: ProxyState,
    private readonly settle: Settle,
  ) {
    this.res = reply.raw;
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true; // 1xx informational: not relayed
    const { request, reply, res, state } = this;
    if (statusCode > 599) {
      this.abort!(new BadGatewayError(`upstream ${state.route.upstream.name}: invalid status ${statusCode}`));
      return false;
    }
    this.settle.metrics.upstreamLatency(state.route.upstream.name, statusCode, (performance.now() - state.startedAt) / 1000);
    if (this.settle.trace !== null) this.settle.trace.span.setAttribute('http.response.status_code', statusCode);
    if (request.raw.aborted || res.destroyed) {
      // The client left before the upstream answered: drop the response, send nothing.
      this.started = true;
      reply.hijack();
      endTrace(this.settle.trace, statusCode);
      this.abort!(new Error('client closed the connection'));
      return false;
    }
    const out = clientResponseHeadersRaw(rawHeaders, state.secret,
      { redirect: redirectBases(state.route, state.publicUrl), session: state.viaSession || state.setCookies !== null });
    if (state.route.cors !== null) upstreamCorsHeaders(out, res); // the gateway's CORS headers win
    // The gateway's request id is the one returned, never the upstream's.
    const id = request.observed?.id;
    if (id === undefined) delete out[REQUEST_ID_HEADER]; else out[REQUEST_ID_HEADER] = id;
    // An HTTP/1 connection cannot be reused until its request body has been consumed.
    if (!request.raw.complete) out.connection = 'close';
    if (state.setCookies !== null) {
      const app = out['set-cookie'];
      out['set-cookie'] = app === undefined ? [...state.setCookies] : [...(typeof app === 'string' ? [app] : app), ...state.setCookies];
    }
    try {
      res.writeHead(statusCode, out);
    } catch (err) {
      for (const name in out) res.removeHeader(name);
      this.abort!(new BadGatewayError(`upstream ${state.route.upstream.name}: unusable response headers`, err));
      return false;
    }
    this.started = true;
    this.resume = resume;
    reply.hijack();
    // The client leaving mid-body aborts the upstream request. A response closes once, and after
    // onComplete/onError the listener does nothing: it is never removed (no once() wrapper, no
    // removal per response; it goes with the response).
    const abort = this.abort!;
    res.on('close', () => { if (!this.done) abort(new Error('client closed the connection')); });
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.res.write(chunk)) return true;
    // Backpressure: undici pauses the socket until resume() is called.
    this.onDrain ??= () => { if (!this.done) this.resume!(); };
    this.res.once('drain', this.onDrain);
    return false;
  }

  onComplete(): void {
    this.done = true;
    this.res.end();
    endTrace(this.settle.trace, null);
  }

  onError(err: Error): void {
    if (this.done) return;
    this.done = true;
    const { request, reply, res, state, settle } = this;
    if (this.started) {
      // Mid-body failure (or the client left): the client sees a truncated response.
      const upstreamFailed = !res.destroyed && !request.raw.destroyed; // else the client left
      if (upstreamFailed) settle.metrics.upstreamFailure(state.route.upstream.name, failureKind(codes(err)));
      endTrace(settle.trace, null, upstreamFailed ? err : undefined);
      if (!res.destroyed) res.destroy();
      return;
    }
    if (state.bodyTooLarge || state.bodyIdle) {
      // The rest of the body is unread: answer, then close rather than drain it.
      void reply.header('connection', 'close');
      endTrace(settle.trace, null);
      settle.fail(state.bodyTooLarge ? new PayloadTooLargeError() : new RequestTimeoutError(`no body bytes for ${state.route.upstream.name}`));
      return;
    }
    const chain = codes(err);
    settle.metrics.upstreamFailure(state.route.upstream.name, err instanceof BadGatewayError ? 'other' : failureKind(chain));
    if (err instanceof BadGatewayError) { endTrace(settle.trace, null, err); settle.fail(err); return; }
    if (!settle.retried && !res.destroyed && chain.some((c) => CONNECTION_ERRORS.has(c))) {
      settle.retried = true;
      const again = new ProxyHandler(this.pool, this.opts, request, reply, state, settle);
      setImmediate(() => this.pool.dispatch(this.opts, again as unknown as Dispatcher.DispatchHandler));
      return;
    }
    const detail = `upstream ${state.route.upstream.name}: ${chain.join(' < ') || err.message}`;
    endTrace(settle.trace, null, err);
    settle.fail(chain.some((c) => TIMEOUT_CODES.has(c)) ? new GatewayTimeoutError(detail, err) : new BadGatewayError(detail, err));
  }
}
