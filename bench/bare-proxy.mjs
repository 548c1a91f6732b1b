// The baseline: Fastify + @fastify/http-proxy with no authentication, logger off, proxying the
// benchmark's API prefix unchanged to the same upstream as the gateway. Runs in its own process;
// reports its port over IPC and exits when the parent goes away.
import Fastify from 'fastify';
import proxy from '@fastify/http-proxy';
import { exitWhenParentStops } from './lib/proc.mjs';

const upstream = process.env.UPSTREAM_URL;
const prefix = process.env.PROXY_PREFIX ?? '/api/v1/projects/bench';
if (!upstream) { console.error('bare-proxy: UPSTREAM_URL is required'); process.exit(2); }

const app = Fastify({ logger: false });
await app.register(proxy, { upstream, prefix, rewritePrefix: prefix });
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) });
const { port } = app.server.address();
if (process.send) process.send({ ready: true, port });
else console.log(`bare proxy listening on http://127.0.0.1:${port}${prefix} → ${upstream}`);

exitWhenParentStops(() => app.close());
