// The proxy-engine comparison: the same bare Fastify as bare-proxy.mjs, no authentication, but
// forwarding through the gateway's own engine (dist/upstream/proxy.js: undici Pool.dispatch,
// the gateway's request/response header rules) instead of @fastify/http-proxy
// (@fastify/reply-from). Same route, same upstream. Runs in its own process; reports its port
// over IPC and exits when the parent goes away.
import Fastify from 'fastify';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { exitWhenParentStops } from './lib/proc.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => pathToFileURL(path.join(REPO, process.env.BENCH_GATEWAY_DIST ?? 'dist', p)).href;
const { createProxy } = await import(dist('upstream/proxy.js'));
const { compileRoutes } = await import(dist('policy/rules.js'));
const { parseTarget } = await import(dist('request/target.js'));
const { noopMetrics } = await import(dist('metrics.js'));

const upstream = process.env.UPSTREAM_URL;
const prefix = process.env.PROXY_PREFIX ?? '/api/v1/projects/bench';
if (!upstream) { console.error('bare-undici: UPSTREAM_URL is required'); process.exit(2); }

const up = { name: 'cdf', url: upstream, timeoutMs: 30000, credentials: { type: 'none' } };
const routes = compileRoutes([{ prefix: `${prefix}/`, upstream: 'cdf', rewritePrefix: null, public: true, allow: [], login: null, websockets: false }], { cdf: up });
const proxy = createProxy({ maxBodyBytes: null, metrics: noopMetrics, keepAliveTimeoutMs: 30_000, connectTimeoutMs: 10_000 });
const upstreamHost = new URL(upstream).host;

const app = Fastify({ logger: false });
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
app.setErrorHandler((err, _req, reply) => { if (process.env.BENCH_DEBUG) console.error(err); reply.code(err.status ?? 500).send({ error: { code: err.status ?? 500, message: err.message } }); });
app.addHook('onClose', async () => { await proxy.close(); });
const handler = (request, reply) => {
  const raw = request.raw;
  const { path: p } = parseTarget(raw.url);
  const route = routes.match(p);
  const peer = raw.socket.remoteAddress ?? '';
  return proxy.forward(request, reply, {
    route,
    forward: { peer, proto: 'http', fromTrustedProxy: false, principal: null, credential: null, upstreamHost },
    secret: null, setCookies: null, viaSession: false, publicUrl: 'http://127.0.0.1', startedAt: performance.now(), bodyTooLarge: false, bodyIdle: false,
  }, p);
};
app.route({ method: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'], url: `${prefix}/*`, handler });
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) });
const { port } = app.server.address();
if (process.send) process.send({ ready: true, port });
else console.log(`bare undici proxy listening on http://127.0.0.1:${port}${prefix} → ${upstream}`);

exitWhenParentStops(() => app.close());
