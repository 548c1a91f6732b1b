// Streams an authorised request to its upstream with @fastify/reply-from (undici, pooled
// keep-alive connections, no redirects followed) and maps transport failures to 502/504.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Transform, type TransformCallback } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { BadGatewayError, GatewayTimeoutError, PayloadTooLargeError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import type { CompiledRoute } from '../policy/rules.js';
import { clientResponseHeaders, upstreamRequestHeaders, type ForwardContext } from './headers.js';

/** Per-request state the proxy callbacks read; set by the handler before reply.from(). */
export interface ProxyState {
  readonly route: CompiledRoute;
  readonly forward: ForwardContext;
  readonly secret: string | null;
  readonly startedAt: number; // performance.now()
  bodyTooLarge: boolean;
}

declare module 'fastify' {
  interface FastifyRequest { proxy: ProxyState | null }
}

// Retried once, on connection errors only, and only when there is no body to replay.
const RETRY_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const CONNECTION_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE']);
const TIMEOUT_CODES = new Set([
  'FST_REPLY_FROM_GATEWAY_TIMEOUT', 'FST_REPLY_FROM_TIMEOUT', 'FST_REPLY_FROM_HTTP_REQUEST_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT',
]);

function hasBody(raw: IncomingMessage): boolean {
  const len = raw.headers['content-length'];
  return raw.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}
/** Error codes along the cause chain: reply-from wraps undici's errors. */
function codes(err: unknown): string[] {
  const out: string[] = [];
  let e = err as { code?: unknown; cause?: unknown } | undefined;
  for (let i = 0; e && i < 5; i++, e = e.cause as typeof e) if (typeof e.code === 'string') out.push(e.code);
  return out;
}

function retryDelay({ err, req, attempt }: { err?: unknown; req: { method: string; body?: unknown }; attempt: number }): number | null {
  if (!err || attempt > 0 || req.body || !RETRY_METHODS.has(req.method)) return null;
  return codes(err).some((c) => CONNECTION_ERRORS.has(c)) ? 1 : null; // 0 would mean "no retry" to reply-from
}

function rewriteRequestHeaders(request: FastifyRequest): Record<string, string | string[]> {
  return upstreamRequestHeaders(request.raw.headers, request.proxy!.forward);
}

function rewriteHeaders(headers: Record<string, string | string[] | undefined>, request?: FastifyRequest): Record<string, string | string[]> {
  return clientResponseHeaders(headers, request!.proxy!.secret);
}

export interface Proxy {
  forward(request: FastifyRequest, reply: FastifyReply, state: ProxyState, path: string): FastifyReply;
}

export function createProxy(opts: { maxBodyBytes: number | null; metrics: Metrics }): Proxy {
  const { maxBodyBytes, metrics } = opts;
  // upstreamPath() already includes the upstream's base path: only its origin is prepended.
  const origins = new Map<string, string>();
  const originOf = (url: string) => {
    let o = origins.get(url);
    if (o === undefined) { o = new URL(url).origin; origins.set(url, o); }
    return o;
  };

  const onResponse = (request: FastifyRequest, reply: FastifyReply, res: { statusCode: number; stream: NodeJS.ReadableStream }) => {
    const state = request.proxy!;
    metrics.upstreamLatency(state.route.upstream.name, res.statusCode, (performance.now() - state.startedAt) / 1000);
    void reply.send(res.stream);
  };

  const onError = (reply: FastifyReply, { error }: { error: Error & { statusCode?: number; code?: string } }) => {
    const state = reply.request.proxy;
    if (state?.bodyTooLarge) {
      // The rest of the body is unread: answer, then close rather than drain it.
      reply.request.raw.resume();
      void reply.header('connection', 'close').send(new PayloadTooLargeError());
      return;
    }
    const chain = codes(error);
    const detail = `upstream ${state?.route.upstream.name ?? '?'}: ${chain.join(' < ') || error.message}`;
    const timedOut = error.statusCode === 504 || chain.some((c) => TIMEOUT_CODES.has(c));
    void reply.send(timedOut ? new GatewayTimeoutError(detail, error) : new BadGatewayError(detail, error));
  };

  return {
    forward(request, reply, state, path) {
      if (maxBodyBytes !== null && hasBody(request.raw)) limitBody(request, state, maxBodyBytes);
      return reply.from(originOf(state.route.upstream.url) + state.route.upstreamPath(path), {
        timeout: state.route.upstream.timeoutMs,
        rewriteRequestHeaders,
        rewriteHeaders,
        onResponse,
        onError,
        retryDelay,
      } as never);
    },
  };
}

/** Enforces server.maxBodyBytes without buffering: by Content-Length up front, by counting otherwise. */
function limitBody(request: FastifyRequest, state: ProxyState, max: number): void {
  const declared = request.raw.headers['content-length'];
  if (declared !== undefined && Number(declared) > max) throw new PayloadTooLargeError();
  const source = request.body as NodeJS.ReadableStream | undefined;
  if (!source || typeof (source as { pipe?: unknown }).pipe !== 'function') return;
  let seen = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      seen += chunk.length;
      if (seen > max) { state.bodyTooLarge = true; cb(new PayloadTooLargeError()); return; }
      cb(null, chunk);
    },
  });
  source.on('error', (e) => counter.destroy(e));
  (request as { body: unknown }).body = source.pipe(counter);
}
