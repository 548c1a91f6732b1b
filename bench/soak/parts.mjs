// The soak's moving parts, each with the fault it can be put into: a token issuer whose JWKS
// endpoint can go down (connection refused) and come back on the same port, an upstream that
// can reset connections, and a redis-server that can be restarted.
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { generateKeyPair, exportJWK, SignJWT } from 'jose';
import { startProcess, stopChild, freePort } from '../lib/proc.mjs';

export const AUDIENCE = 'https://cdf.soak';

/** Bearer-token issuer: mints valid, expired and forged (same kid, other key) tokens; JWKS can go down. */
export async function startIssuer() {
  const kid = 'soak-1';
  const { publicKey, privateKey } = await generateKeyPair('RS256', { modulusLength: 2048 });
  const { privateKey: forger } = await generateKeyPair('RS256', { modulusLength: 2048 });
  const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' }] });
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  let server = null;
  const up = async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/jwks') res.writeHead(200, { 'content-type': 'application/json' }).end(jwks);
      else res.writeHead(404).end();
    });
    server.keepAliveTimeout = 500;
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
  };
  await up();
  let n = 0;
  const mint = ({ ttlSec = 7200, key = privateKey, ageSec = 0 } = {}) => {
    const now = Math.floor(Date.now() / 1000) - ageSec;
    return new SignJWT({ groups: ['readers'], scp: 'user_impersonation' })
      .setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' })
      .setIssuer(issuer).setAudience(AUDIENCE).setSubject(`soak-user-${n++ % 500}`).setJti(`j${n}`)
      .setIssuedAt(now).setExpirationTime(now + ttlSec).sign(key);
  };
  return {
    issuer, jwksUri: `${issuer}/jwks`,
    valid: () => mint(),
    expired: () => mint({ ageSec: 7200, ttlSec: 600 }),
    forged: () => mint({ key: forger }),
    async down() { server.closeAllConnections(); await new Promise((r) => server.close(r)); },
    up,
    close() { server.closeAllConnections(); server.close(); },
  };
}

/** The app behind the gateway: answers with the body size it read; can reset connections; echoes WebSockets. */
export async function startUpstream() {
  let resetEvery = 0;
  let count = 0;
  const server = http.createServer((req, res) => {
    count++;
    if (resetEvery > 0 && count % resetEvery === 0) { req.socket.destroy(); return; }
    let bytes = 0;
    req.on('data', (c) => { bytes += c.length; });
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bytes })));
  });
  let wss = null;
  try {
    const { WebSocketServer } = await import('ws');
    wss = new WebSocketServer({ noServer: true });
    server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (m) => ws.send(m))));
  } catch { /* ws not installed: no WebSocket traffic */ }
  server.keepAliveTimeout = 5000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    /** Reset every n-th request's connection (0: none). */
    resets(n) { resetEvery = n; },
    close() { wss?.close(); server.closeAllConnections(); server.close(); },
  };
}

/** redis-server on a loopback port, persisting to `dir` (append-only file) as a production one would; restart() keeps port and data. */
export async function startRedis(dir) {
  const port = await freePort();
  let child = null;
  const start = async () => {
    child = startProcess('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir], { stdio: 'ignore' });
    for (let i = 0; i < 100; i++) {
      if (await ping(port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('redis-server did not start');
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    async restart() { await stopChild(child, 2000); await start(); },
    stop: () => stopChild(child, 2000),
  };
}

function ping(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write('PING\r\n'));
    s.setTimeout(500, () => { s.destroy(); resolve(false); });
    s.on('data', (d) => { s.destroy(); resolve(d.toString().startsWith('+PONG')); });
    s.on('error', () => resolve(false));
  });
}
