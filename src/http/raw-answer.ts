// Answers written straight to a socket, outside Fastify: CONNECT's 405, socket-level client errors
// (431, 408, 400) and WebSocket upgrade refusals. CDF's shape (or a refusing upstream's own body),
// the request id, never cached, and the connection closed after.
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { errorBody, type GatewayError } from '../errors.js';
import { REQUEST_ID_HEADER } from '../request/id.js';

/** The whole answer's bytes. `id` is a request id: printable ASCII, safe in a header line. */
export function rawAnswer(gw: GatewayError, id: string, body?: Buffer): Buffer {
  const payload = body ?? Buffer.from(errorBody(gw.status, gw.message));
  const headers: Record<string, string> = { 'content-type': 'application/json', ...gw.headers, [REQUEST_ID_HEADER]: id };
  let head = `HTTP/1.1 ${gw.status} ${STATUS_CODES[gw.status] ?? 'Error'}\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  head += `content-length: ${payload.length}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), payload]);
}

/** Writes the answer and ends the socket (nothing when it is already gone). */
export function answerOnSocket(socket: Duplex, gw: GatewayError, id: string, body?: Buffer): void {
  if (socket.destroyed) return;
  socket.end(rawAnswer(gw, id, body));
}
