// The proxy transport: every request that is not one of the gateway's own endpoints. It asks the
// pipeline, then either answers the refusal or streams the request to the route's upstream.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ALLOWED_METHODS, BadRequestError } from '../errors.js';
import { decide, type Decision } from '../pipeline/decide.js';
import type { GatewayState, StateHolder } from '../state.js';
import type { ProxyState } from '../upstream/proxy.js';
import { newOutcome, refuse } from './respond.js';

const DIGITS = /^[0-9]{1,20}$/;
const ZEROS = /^0+$/;

export function proxyHandler(holder: StateHolder) {
  // Not an async function, and it returns nothing for Fastify to wait on: a request decided
  // without waiting (a cached token) is forwarded in the same tick, and every answer (the
  // upstream's, a refusal, an error) is sent through the reply, never by resolving a promise.
  return function handle(request: FastifyRequest, reply: FastifyReply): void {
    const state = holder.current; // this request finishes on the state it started with
    const raw = request.raw;
    const v = decide(state, {
      entry: 'proxy', method: raw.method!, target: raw.url!, headers: raw.headers, rawHeaders: raw.rawHeaders, httpVersion: raw.httpVersion, loginReturn: raw.url!,
    });
    if (!(v instanceof Promise)) { proceed(state, request, reply, v); return; }
    v.then((d) => { proceed(state, request, reply, d); }).catch((err: unknown) => { reply.send(err); });
  };
}

/** Answers the refusal, or the gateway's own OPTIONS reply, or forwards the request. */
function proceed(state: GatewayState, request: FastifyRequest, reply: FastifyReply, v: Decision): void {
  const raw = request.raw;
  const outcome = newOutcome(request);
  outcome.path = v.path;
  if (v.route !== null) outcome.route = v.route.id;
  if (v.principal !== null) outcome.sub = v.principal.sub;
  if (!v.ok) { refuse(reply, v); return; }
  const route = v.route!;

  // RFC 9110 §7.6.2: an OPTIONS with Max-Forwards: 0 is answered here, not forwarded.
  if (raw.method === 'OPTIONS' && raw.headers['max-forwards'] !== undefined) {
    const mf = String(raw.headers['max-forwards']);
    if (!DIGITS.test(mf)) throw new BadRequestError('Bad request: malformed Max-Forwards');
    if (ZEROS.test(mf)) {
      outcome.decision = v.principal === null ? 'public' : 'allow';
      if (v.setCookies !== null) void reply.header('set-cookie', v.setCookies);
      void reply.code(200).header('allow', ALLOWED_METHODS).header('content-length', '0').send();
      return;
    }
  }
  outcome.decision = v.principal === null ? 'public' : 'allow';
  const peer = raw.socket.remoteAddress ?? '';
  const proxyState: ProxyState = {
    route,
    forward: {
      peer, proto: 'http', fromTrustedProxy: state.isTrustedProxy(peer), principal: v.principal, credential: v.credential,
      upstreamHost: state.upstreamHosts.get(route.upstream.name)!,
    },
    // Public routes get no credential at all: a key holder never lends its key to anonymous callers.
    secret: v.principal === null ? null : state.credentials.get(route.upstream.name)!.secret(),
    setCookies: v.setCookies,
    viaSession: v.session !== null,
    publicUrl: state.config.server.publicUrl,
    startedAt: performance.now(),
    bodyTooLarge: false,
    bodyIdle: false,
  };
  state.proxy.forward(request, reply, proxyState, v.path!);
}
