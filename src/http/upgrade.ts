// WebSocket upgrades (Node's 'upgrade' event on the gateway's server). An upgrade is decided
// exactly like a GET on its route — bearer token or session cookie, the route's allow rules —
// and a session needs a same-origin (or allowedRedirectOrigins) Origin: browsers send cookies
// on cross-site WebSocket handshakes and SameSite=Lax does not stop them. Refused → an ordinary
// HTTP error on the socket, never 101; allowed → tunnelled (upstream/websocket.ts).
//
// Why not @fastify/http-proxy's `websocket: true`: it authenticates through Fastify hooks on a
// separate `ws` server per prefix, re-frames every message (ws parses and re-sends), and gives no
// place to close a socket when its session ends. A raw upgrade request and two piped sockets
// keep the bytes untouched, the backpressure TCP's, and the close under our control.
import http, { type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { BadRequestError, GatewayError, type Reason } from '../errors.js';
import type { CompiledRoute } from '../policy/rules.js';
import type { Principal } from '../token/principal.js';
import type { Session } from '../session/store.js';
import { openTunnel, UpgradeRefusedError, type TunnelRequest } from '../upstream/websocket.js';
import type { ForwardContext } from '../upstream/headers.js';
import type { SessionBinding, SocketRegistry } from './sockets.js';
import { decisionFor } from './respond.js';
import { answerOnSocket } from './raw-answer.js';
import { requestId } from '../request/id.js';

/** What the decision gives an upgrade (the pipeline's Allowed, narrowed to what a tunnel needs). */
export interface UpgradeAllowed {
  readonly route: CompiledRoute;
  readonly path: string;
  readonly principal: Principal | null;
  readonly session: Session | null;
  /** The session as a binding for the socket's lifecycle (null without a session). */
  readonly binding: SessionBinding | null;
  readonly forward: ForwardContext;
  readonly secret: string | null;
  /** Set-Cookie lines (a refreshed session) sent with the 101. */
  readonly setCookies: readonly string[] | null;
}

/** Decides an upgrade; throws a GatewayError to refuse it. */
export type DecideUpgrade = (req: IncomingMessage) => Promise<UpgradeAllowed>;

/** One access line / request metric per upgrade. */
export type RecordUpgrade = (req: IncomingMessage, o: { requestId: string; route: string; status: number; decision: string; reason: Reason | null; sub: string | null; path: string | null; ms: number }) => void;

export interface UpgradeDeps {
  readonly decide: DecideUpgrade;
  readonly sockets: SocketRegistry;
  readonly record: RecordUpgrade;
  /** Non-WebSocket upgrades (h2c) are served as ordinary requests by this server. */
  readonly server: http.Server;
  readonly onError: (err: unknown) => void;
}

export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const u = req.headers.upgrade;
  return typeof u === 'string' && u.toLowerCase().split(',').some((p) => p.trim() === 'websocket');
}

export function upgradeHandler(deps: UpgradeDeps) {
  return (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (!isWebSocketUpgrade(req)) { serveAsRequest(deps.server, req, socket as Socket, head); return; }
    socket.on('error', () => socket.destroy());
    const started = performance.now();
    const id = requestId(req);
    const o = { requestId: id, route: '-', status: 101, decision: 'websocket', reason: null as Reason | null, sub: null as string | null, path: null as string | null };
    const done = () => deps.record(req, { ...o, ms: Math.round((performance.now() - started) * 100) / 100 });
    void (async () => {
      let allowed: UpgradeAllowed;
      try {
        if (req.method !== 'GET') throw new BadRequestError('Bad request: a WebSocket upgrade must be a GET');
        allowed = await deps.decide(req);
      } catch (err) {
        const gw = toGatewayError(err, deps.onError);
        Object.assign(o, { status: gw.status, decision: decisionFor(gw.status), reason: gw.code }, routeOf(err));
        answerOnSocket(socket, gw, id);
        done();
        return;
      }
      o.route = allowed.route.id;
      o.path = allowed.path;
      o.sub = allowed.principal?.sub ?? null;
      const t: TunnelRequest = {
        route: allowed.route, path: allowed.path, url: req.url!, forward: allowed.forward, secret: allowed.secret, setCookies: allowed.setCookies, requestId: id,
      };
      try {
        const tunnel = await openTunnel(req, socket, head, t);
        deps.sockets.add(allowed.route.id, tunnel, allowed.binding);
      } catch (err) {
        const gw = toGatewayError(err, deps.onError);
        Object.assign(o, { status: gw.status, reason: gw.code, decision: gw instanceof UpgradeRefusedError ? 'upstream_refused' : decisionFor(gw.status) });
        answerOnSocket(socket, gw, id, gw instanceof UpgradeRefusedError ? gw.body : undefined);
      }
      done();
    })();
  };
}

/** The refusal's route and path, when the decision attached them. */
function routeOf(err: unknown): { route?: string; path?: string | null } {
  const e = err as { route?: string; path?: string | null };
  return { ...(typeof e.route === 'string' ? { route: e.route } : {}), ...(e.path !== undefined ? { path: e.path } : {}) };
}

function toGatewayError(err: unknown, onError: (err: unknown) => void): GatewayError {
  if (err instanceof GatewayError) return err;
  onError(err);
  return new GatewayError(500, 'Internal error', { detail: err instanceof Error ? err.message : String(err) });
}


/**
 * `Upgrade: h2c` and other non-WebSocket upgrades: the upgrade is ignored (RFC 9110 §7.8 lets a
 * server do so) and the request is served as usual on this connection, which then closes.
 */
function serveAsRequest(server: http.Server, req: IncomingMessage, socket: Socket, head: Buffer): void {
  if (head.length > 0) socket.unshift(head);
  const res = new http.ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket);
  res.once('finish', () => { res.detachSocket(socket); socket.destroySoon(); });
  server.emit('request', req, res);
}
