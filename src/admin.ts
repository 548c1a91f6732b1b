// The admin listener (separate port, never exposed with the proxy): liveness, readiness, metrics.
import Fastify, { type FastifyInstance } from 'fastify';
import type { AdminConfig } from './config/types.js';
import type { PromMetrics } from './metrics.js';
import type { TokenVerifier } from './token/verify.js';

export function createAdmin(deps: {
  config: AdminConfig; metrics: PromMetrics; verifier: () => TokenVerifier; isClosing: () => boolean;
}): FastifyInstance {
  const admin = Fastify({ logger: false });
  admin.get('/healthz', async () => ({ status: 'ok' }));
  admin.get('/readyz', async (_req, reply) => {
    // Not ready while draining, or while any issuer has no usable key set (requests would get 503).
    const verifier = deps.verifier(); // the current state's: a reload may replace it
    const r = verifier.readiness();
    const ready = r.ready && !deps.isClosing();
    // Probes come at any rate (every replica's kubelet, anyone on the admin port): a missing or
    // stale key set is fetched only as often as the cooldown allows, and never waited for.
    if (!r.ready) void verifier.refreshDue();
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', closing: deps.isClosing(), issuers: r.issuers });
  });
  admin.get('/metrics', async (_req, reply) => {
    return reply.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
  return admin;
}
