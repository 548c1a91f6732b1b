// The Fastify instance and what happens below the route handlers: listener limits and timeouts,
// Expect: 100-continue held back until the pipeline has decided, CONNECT answered 405 on the raw
// socket, socket-level client errors (431, 408, 400) answered in CDF's shape (both reported to
// the server for their access line and metrics), bodies passed through unparsed, and
// connections closed whenever the gateway answers before a request body was read to its end.
import Fastify, { type FastifyInstance } from 'fastify';
import { fastifyCookie } from '@fastify/cookie';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ServerConfig } from '../config/types.js';
import { GatewayError, MethodNotAllowedError, type Reason } from '../errors.js';
import { frameworkError } from './respond.js';
import { answerOnSocket, rawAnswer } from './raw-answer.js';
import { REQUEST_ID_HEADER, requestId } from '../request/id.js';

/**
 * What Node's parser refused, by status: a fixed text (nothing of the request's bytes is ever
 * echoed) and the refusal's reason.
 */
const CLIENT_ERRORS: Readonly<Record<number, { readonly message: string; readonly reason: Reason }>> = {
  400: { message: 'Bad request: malformed HTTP request', reason: 'bad_request' },
  408: { message: 'Request timeout: the request did not arrive in time', reason: 'request_timeout' },
  431: { message: 'Request header fields too large', reason: 'header_too_large' },
};

/** A client error answered on its socket: what its access line and the request metrics need. */
export interface ClientErrorAnswer {
  /** The request in flight on the socket (a request timeout while its body arrives), else null: nothing was parsed. */
  readonly req: IncomingMessage | null;
  /** The peer's address. */
  readonly peer: string | undefined;
  readonly requestId: string;
  readonly status: number;
  readonly reason: Reason;
}

/** What is known of a request none of which could be parsed: no headers (so a new request id). */
const UNPARSED = Object.freeze({ headers: Object.freeze({}), headersDistinct: Object.freeze({}) });

/**
 * Node's 'clientError' (the parser refused the bytes, or the headers/request timeout fired before
 * a request was complete): answered in CDF's shape with a request id, and the connection closed.
 * Fastify's own handler answers in Fastify's shape; its guards are kept: nothing for a reset or
 * destroyed socket, nothing written to a socket that cannot take it or whose response already
 * started. `onAnswered` hears of every answer written (and only those).
 */
export function clientErrorHandler(err: Error & { code?: string }, socket: Duplex, onAnswered?: (answer: ClientErrorAnswer) => void): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const res = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (socket.writable && (res === undefined || res === null || !res.headersSent)) {
    const { message, reason } = CLIENT_ERRORS[status]!;
    const req = res?.req ?? null;
    const id = requestId(req ?? UNPARSED); // printable ASCII: safe in a header line
    socket.write(rawAnswer(new GatewayError(status, message, { code: reason }), id));
    // Before destroy(): a destroyed socket no longer knows its peer.
    onAnswered?.({ req, peer: (socket as Socket).remoteAddress, requestId: id, status, reason });
  }
  socket.destroy(err);
}

function hasBody(raw: IncomingMessage): boolean {
  const len = raw.headers['content-length'];
  return raw.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

/** Answers made on the raw socket, never seen by Fastify's hooks: reported here for their access line and metrics. */
export interface RawAnswers {
  /** A CONNECT, answered 405 (it never reaches a route handler), under its request id. */
  connect(req: IncomingMessage, requestId: string): void;
  /** A socket-level client error (431, 408, 400) that was answered. */
  clientError(answer: ClientErrorAnswer): void;
  /** A request target Fastify's router could not decode (`/%zz`), answered 400 under its request id. */
  badTarget(req: IncomingMessage, requestId: string): void;
}

export function createApp(server: ServerConfig, answered: RawAnswers): FastifyInstance {
  const app = Fastify({
    logger: false, // one access line per request is written by the gateway; Fastify's per-request child loggers are not needed
    http: {
      maxHeaderSize: server.maxHeaderBytes,
      // Node's own check answers a missing Host with a bare 400 (no body, no id, no access line):
      // the gateway refuses it itself, in CDF's shape and counted (request/observe.ts, decide()).
      requireHostHeader: false,
      headersTimeout: server.headersTimeoutMs,
      requestTimeout: server.requestTimeoutMs,
      // Node checks the two timeouts above only this often (default 30 s).
      connectionsCheckingInterval: Math.min(1000, server.headersTimeoutMs),
    } as never,
    requestTimeout: server.requestTimeoutMs,
    keepAliveTimeout: server.keepAliveTimeoutMs,
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    bodyLimit: 1024 * 1024, // only applies to parsers that buffer; we register none
    routerOptions: { maxParamLength: 65535 },
    // A target the router cannot decode never reaches the hooks: no request id, no access line
    // unless given here.
    frameworkErrors: (err, request, reply) => {
      const id = requestId(request.raw);
      void reply.header(REQUEST_ID_HEADER, id);
      frameworkError(err, request, reply);
      answered.badTarget(request.raw, id);
    },
    clientErrorHandler: (err: Error, socket: Duplex) => clientErrorHandler(err, socket, answered.clientError),
  });
  app.decorateRequest('outcome', null as never);
  // Its parse/serialize only (src/session/cookies.ts); no hook: the proxy path never reads cookies.
  void app.register(fastifyCookie, { hook: false });
  // Expect: 100-continue — decide first. Node would send 100 Continue before any handler ran;
  // the proxy sends it only once the request is allowed (a refusal is final, body never read).
  app.server.on('checkContinue', (req, res) => app.server.emit('request', req, res));
  // CONNECT never reaches a route handler (Node hands over the socket): answer 405 on it.
  app.server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    const id = requestId(req); // printable ASCII: safe in a header line
    socket.on('error', () => { /* the client may already be gone */ });
    answerOnSocket(socket, new MethodNotAllowedError('CONNECT'), id);
    answered.connect(req, id);
  });
  // Bodies are streamed to the upstream untouched, never parsed or buffered.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
  // Every answer the gateway makes itself (errors, redirects, its endpoints): a request body not
  // (fully) read is never waited for. Answer, then close the connection, so an unread or
  // half-read body can neither hold the connection nor poison its next request.
  app.addHook('onSend', (request, reply, payload, done) => {
    const raw = request.raw;
    if (!raw.complete && hasBody(raw)) void reply.header('connection', 'close');
    done(null, payload);
  });
  return app;
}
