// The Fastify instance and what happens below the route handlers: listener limits and timeouts,
// Expect: 100-continue held back until the pipeline has decided, CONNECT answered 405 on the raw
// socket, socket-level client errors (431, 408, 400) answered in CDF's shape, bodies passed
// through unparsed, and connections closed whenever the gateway answers before a request body
// was read to its end.
import Fastify, { type FastifyInstance } from 'fastify';
import { fastifyCookie } from '@fastify/cookie';
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ServerConfig } from '../config/types.js';
import { ALLOWED_METHODS, errorBody } from '../errors.js';
import { frameworkError } from './respond.js';
import { REQUEST_ID_HEADER, requestId } from '../request/id.js';

/** Safe, fixed texts: nothing of the request's bytes is ever echoed. */
const CLIENT_ERROR_MESSAGES: Readonly<Record<number, string>> = {
  400: 'Bad request: malformed HTTP request',
  408: 'Request timeout: the request did not arrive in time',
  431: 'Request header fields too large',
};

/**
 * Node's 'clientError' (the parser refused the bytes, or the headers/request timeout fired before
 * a request was handed over): answered in CDF's shape and the connection closed. Fastify's own
 * handler answers in Fastify's shape; its guards are kept: nothing for a reset or destroyed
 * socket, nothing written to a socket that cannot take it or whose response already started.
 */
export function clientErrorHandler(err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const res = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (socket.writable && (res === undefined || res === null || !res.headersSent)) {
    const body = errorBody(status, CLIENT_ERROR_MESSAGES[status]!);
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\n`
      + `Content-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy(err);
}

function hasBody(raw: IncomingMessage): boolean {
  const len = raw.headers['content-length'];
  return raw.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

/** `onConnect` records a CONNECT (answered 405 here: it never reaches a route handler) under its request id. */
export function createApp(server: ServerConfig, onConnect: (req: IncomingMessage, requestId: string) => void): FastifyInstance {
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
    frameworkErrors: frameworkError,
    clientErrorHandler,
  });
  app.decorateRequest('outcome', null as never);
  // Its parse/serialize only (src/session/cookies.ts); no hook: the proxy path never reads cookies.
  void app.register(fastifyCookie, { hook: false });
  // Expect: 100-continue — decide first. Node would send 100 Continue before any handler ran;
  // the proxy sends it only once the request is allowed (a refusal is final, body never read).
  app.server.on('checkContinue', (req, res) => app.server.emit('request', req, res));
  // CONNECT never reaches a route handler (Node hands over the socket): answer 405 on it.
  app.server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    const body = errorBody(405, 'Method not allowed');
    const id = requestId(req); // printable ASCII: safe in a header line
    socket.on('error', () => { /* the client may already be gone */ });
    socket.end(`HTTP/1.1 405 Method Not Allowed\r\nAllow: ${ALLOWED_METHODS}\r\nContent-Type: application/json\r\n`
      + `Content-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${id}\r\nConnection: close\r\n\r\n${body}`);
    onConnect(req, id);
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
