// A WebSocket tunnel to an upstream, once the upgrade has been authorised: a raw HTTP/1.1
// upgrade request with the same header rules as any proxied request (the upstream's credential
// and identity headers added; the client's Authorization, cookies and spoofable headers dropped)
// plus `Connection: Upgrade` + `Upgrade: websocket`, the one hop-by-hop exception. A 101 from the
// upstream is relayed and the two sockets are piped (backpressure both ways); anything else is
// answered as an ordinary HTTP error — never 101, never a plain 200.
//
// The gateway can close a tunnel itself (session logged out or expired: 1008): the upstream→client
// byte stream is cut at a frame boundary and a close frame is sent in its place.
import http, { type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Transform, type TransformCallback } from 'node:stream';
import { randomBytes } from 'node:crypto';
import type { CompiledRoute } from '../policy/rules.js';
import { BadGatewayError, GatewayError, GatewayTimeoutError } from '../errors.js';
import { clientResponseHeaders, upstreamRequestHeaders, type ForwardContext } from './headers.js';
import { REQUEST_ID_HEADER } from '../request/id.js';

/** What an authorised upgrade needs; built by the transport from the decision. */
export interface TunnelRequest {
  readonly route: CompiledRoute;
  /** The canonical request path that matched `route`. */
  readonly path: string;
  /** The raw request-target (its query is passed on). */
  readonly url: string;
  readonly forward: ForwardContext;
  /** The upstream credential's secret value (scrubbed from relayed headers). */
  readonly secret: string | null;
  /** The gateway's own Set-Cookie lines (a refreshed session), added to the 101. */
  readonly setCookies?: readonly string[] | null;
  /** The upgrade's request id: sent upstream and returned on the 101 (the upstream's own is replaced). */
  readonly requestId?: string;
}

export interface Tunnel {
  /** Ends the tunnel from the gateway's side with a close frame to the client (e.g. 1008). */
  close(code: number, reason: string): void;
  /** Resolves when both sockets are closed. */
  readonly closed: Promise<void>;
}

/** The upstream did not switch protocols: its answer, to relay as an ordinary response. */
export class UpgradeRefusedError extends GatewayError {
  constructor(status: number, readonly body: Buffer, headers: Record<string, string>) {
    super(status, http.STATUS_CODES[status] ?? 'Refused', { headers, code: 'upstream_error', detail: `upstream answered the upgrade with ${status}` });
  }
}

const MAX_REFUSAL_BODY = 64 * 1024;
/** How long a gateway-side close waits for the current frame to finish before cutting hard. */
const CLOSE_GRACE_MS = 2000;

/** A close frame; `masked` for the client→server direction (RFC 6455 §5.3). */
export function closeFrame(code: number, reason: string, masked: boolean): Buffer {
  const payload = Buffer.concat([Buffer.from([code >> 8, code & 0xff]), Buffer.from(reason.slice(0, 120), 'utf8')]);
  const head = Buffer.from([0x88, (masked ? 0x80 : 0) | payload.length]);
  if (!masked) return Buffer.concat([head, payload]);
  const mask = randomBytes(4);
  const out = Buffer.from(payload);
  for (let i = 0; i < out.length; i++) out[i]! ^= mask[i & 3]!;
  return Buffer.concat([head, mask, out]);
}

/**
 * Passes WebSocket frames through untouched while tracking frame boundaries, so that a close
 * frame can be put in at a boundary and the rest of the stream dropped.
 */
export class FrameCutter extends Transform {
  private header: Buffer = Buffer.alloc(0);
  private remaining = 0; // payload bytes of the current frame still to pass
  private cut: Buffer | null = null;
  private done = false;

  /** After the current frame, send `frame` and end. */
  cutWith(frame: Buffer): void {
    if (this.done) return;
    this.cut = frame;
    if (this.remaining === 0 && this.header.length === 0) this.finishCut();
  }

  private finishCut(): void {
    this.done = true;
    this.push(this.cut);
    this.push(null);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let i = 0;
    while (i < chunk.length && !this.done) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - i);
        this.push(chunk.subarray(i, i + n));
        this.remaining -= n;
        i += n;
      } else {
        // Collect the header (2 to 14 bytes) before passing it on.
        const need = this.headerLength();
        const take = Math.min(need - this.header.length, chunk.length - i);
        this.header = Buffer.concat([this.header, chunk.subarray(i, i + take)]);
        i += take;
        if (this.header.length === this.headerLength()) {
          this.remaining = this.payloadLength();
          this.push(this.header);
          this.header = Buffer.alloc(0);
        }
      }
      if (this.remaining === 0 && this.header.length === 0 && this.cut !== null) this.finishCut();
    }
    cb();
  }

  private headerLength(): number {
    const h = this.header;
    if (h.length < 2) return 2;
    const len7 = h[1]! & 0x7f;
    const mask = h[1]! & 0x80 ? 4 : 0;
    return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + mask;
  }

  private payloadLength(): number {
    const h = this.header;
    const len7 = h[1]! & 0x7f;
    if (len7 === 126) return h.readUInt16BE(2);
    if (len7 === 127) return Number(h.readBigUInt64BE(2));
    return len7;
  }
}

/** Opens the upstream side and, once it switches protocols, joins the two sockets. */
export function openTunnel(req: IncomingMessage, socket: Duplex, head: Buffer, t: TunnelRequest): Promise<Tunnel> {
  const upstreamUrl = new URL(t.route.upstream.url);
  const q = t.url.indexOf('?');
  const path = t.route.upstreamPath(t.path) + (q > 0 ? t.url.slice(q) : '');
  const headers: Record<string, string | string[]> = { ...upstreamRequestHeaders(req.headers, t.forward), connection: 'Upgrade', upgrade: 'websocket' };
  if (t.requestId !== undefined) headers[REQUEST_ID_HEADER] = t.requestId;
  const timeout = t.route.upstream.timeoutMs;

  return new Promise<Tunnel>((resolve, reject) => {
    const up = http.request({
      host: upstreamUrl.hostname.replace(/^\[|\]$/g, ''), port: upstreamUrl.port || 80, method: 'GET', path, headers,
      agent: false, // a fresh connection: it becomes the tunnel
    });
    const timer = setTimeout(() => up.destroy(new GatewayTimeoutError(`upstream ${t.route.upstream.name}: no answer to the upgrade within ${timeout} ms`)), timeout);
    const fail = (err: Error) => { clearTimeout(timer); reject(err); };
    up.on('error', (err) => fail(err instanceof GatewayError ? err : new BadGatewayError(`upstream ${t.route.upstream.name}: ${(err as { code?: string }).code ?? err.message}`, err)));
    socket.once('close', () => up.destroy());
    up.on('response', (res) => {
      // Not switched: relay an error answer; a 1xx/2xx/3xx would look like success to nobody.
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => { if ((size += c.length) <= MAX_REFUSAL_BODY) chunks.push(c); });
      res.on('end', () => {
        const status = res.statusCode ?? 502;
        if (status < 400) { fail(new BadGatewayError(`upstream ${t.route.upstream.name} answered the upgrade with ${status}`)); return; }
        const keep: Record<string, string> = {};
        const ct = res.headers['content-type'];
        if (typeof ct === 'string') keep['content-type'] = ct;
        fail(new UpgradeRefusedError(status, Buffer.concat(chunks), keep));
      });
      res.on('error', fail);
    });
    up.on('upgrade', (res, upSocket, upHead) => {
      clearTimeout(timer);
      const out = clientResponseHeaders(res.headers as Record<string, string | string[] | undefined>, t.secret);
      let lines = 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n';
      if (t.requestId !== undefined) out[REQUEST_ID_HEADER] = t.requestId;
      if (t.setCookies) out['set-cookie'] = [...(out['set-cookie'] === undefined ? [] : [out['set-cookie']].flat()), ...t.setCookies];
      for (const [k, v] of Object.entries(out)) for (const one of Array.isArray(v) ? v : [v]) lines += `${k}: ${one}\r\n`;
      socket.write(lines + '\r\n');
      if (head.length > 0) upSocket.write(head);
      resolve(join(socket, upSocket, upHead));
    });
    up.end();
  });
}

function join(client: Duplex, upstream: Duplex, upHead: Buffer): Tunnel {
  const cutter = new FrameCutter();
  let closing = false;
  const closed = new Promise<void>((resolve) => {
    let open = 2;
    const one = () => { if (--open === 0) resolve(); };
    client.once('close', one);
    upstream.once('close', one);
  });
  // Either side going away takes the other with it; errors are just closes here.
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  client.once('close', () => upstream.destroy());
  upstream.once('close', () => { if (!closing) cutter.end(); }); // closing: the close frame is on its way
  cutter.once('end', () => client.end());
  if (upHead.length > 0) cutter.write(upHead);
  upstream.pipe(cutter).pipe(client, { end: false });
  client.pipe(upstream);
  return {
    closed,
    close(code, reason) {
      if (closing) return;
      closing = true;
      // The client hears why (after the frame in flight, if any); the upstream is then dropped.
      client.unpipe(upstream);
      cutter.once('end', () => upstream.destroy());
      cutter.cutWith(closeFrame(code, reason, false));
      const hard = setTimeout(() => { client.destroy(); upstream.destroy(); }, CLOSE_GRACE_MS);
      hard.unref();
      client.once('close', () => clearTimeout(hard));
    },
  };
}
