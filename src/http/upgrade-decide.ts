// The decision for a WebSocket upgrade: the pipeline's decide() with entry 'upgrade' (a GET on
// its route; a session needs a same-origin Origin), turned into what a tunnel needs.
import type { IncomingMessage } from 'node:http';
import { decide } from '../pipeline/decide.js';
import { sessionExpiry } from '../session/store.js';
import type { StateHolder } from '../state.js';
import type { SessionBinding } from './sockets.js';
import type { DecideUpgrade, UpgradeAllowed } from './upgrade.js';

export function decideUpgrade(holder: StateHolder): DecideUpgrade {
  return async (req: IncomingMessage): Promise<UpgradeAllowed> => {
    const state = holder.current;
    const v = await decide(state, {
      entry: 'upgrade', method: 'GET', target: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, httpVersion: req.httpVersion, loginReturn: null,
    });
    if (!v.ok) {
      // The access line wants the route and path of a refusal too.
      throw Object.assign(v.error, { route: v.route?.id ?? '-', path: v.path });
    }
    const route = v.route!;
    const session = v.session;
    const sessions = state.login?.sessions;
    let binding: SessionBinding | null = null;
    if (session !== null && sessions !== undefined) {
      const cookies = sessions.cookies(req.headers.cookie);
      const id = session.id;
      binding = {
        id,
        expiresAt: sessionExpiry(session, state.login!.config.idleTimeoutSec * 1000),
        stillValid: async () => (await sessions.read(cookies))?.id === id,
      };
    }
    const peer = req.socket.remoteAddress ?? '';
    return {
      route, path: v.path!, principal: v.principal, session, binding, setCookies: v.setCookies,
      // Public routes get no credential at all: a key holder never lends its key to anonymous callers.
      secret: v.principal === null ? null : state.credentials.get(route.upstream.name)!.secret(),
      forward: {
        peer, proto: 'http', fromTrustedProxy: state.isTrustedProxy(peer), principal: v.principal, credential: v.credential,
        upstreamHost: state.upstreamHosts.get(route.upstream.name)!,
      },
    } satisfies UpgradeAllowed;
  };
}
