// A stand-in token issuer for the benchmarks: one RS256 2048-bit key, a static JWKS served on
// 127.0.0.1 (the gateway fetches it once), and token minting with jose.
import http from 'node:http';
import { once } from 'node:events';
import { generateKeyPair, exportJWK, SignJWT } from 'jose';

export const AUDIENCE = 'https://cdf.bench';
export const GROUP = 'readers';

export async function startIssuer() {
  const kid = 'bench-key-1';
  const { publicKey, privateKey } = await generateKeyPair('RS256', { modulusLength: 2048 });
  // Same kid, different key: the gateway finds the key and the signature fails to verify.
  const { privateKey: wrongKey } = await generateKeyPair('RS256', { modulusLength: 2048 });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  const jwks = Buffer.from(JSON.stringify({ keys: [jwk] }));

  let jwksHits = 0;
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/jwks') {
      jwksHits++;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': jwks.length });
      res.end(jwks);
      return;
    }
    if (req.method === 'GET' && req.url === '/.well-known/openid-configuration') {
      const body = Buffer.from(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
      return;
    }
    res.writeHead(404).end();
  });
  server.keepAliveTimeout = 1000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const issuer = `http://127.0.0.1:${server.address().port}`;

  /** A valid token; `n` makes it distinct (sub and jti). Expires in `ttlSec` (default 2 h). */
  async function mint(n = 0, { ttlSec = 7200, key = privateKey } = {}) {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ groups: [GROUP], scp: 'user_impersonation', jti: `bench-${n}-${now}` })
      .setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' })
      .setIssuer(issuer)
      .setAudience(AUDIENCE)
      .setSubject(`bench-user-${n}`)
      .setIssuedAt(now)
      .setExpirationTime(now + ttlSec)
      .sign(key);
  }

  /** `count` distinct valid tokens, minted `batch` at a time (jose signs on the thread pool). */
  async function mintMany(count, { batch = 256, offset = 0 } = {}) {
    const out = new Array(count);
    for (let i = 0; i < count; i += batch) {
      const jobs = [];
      for (let j = i; j < Math.min(count, i + batch); j++) jobs.push(mint(offset + j).then((t) => { out[j] = t; }));
      await Promise.all(jobs);
    }
    return out;
  }

  const badSignature = () => mint(-1, { key: wrongKey });

  async function close() {
    server.closeAllConnections?.();
    server.close();
  }

  return { issuer, jwksUri: `${issuer}/jwks`, audience: AUDIENCE, mint, mintMany, badSignature, close, jwksHits: () => jwksHits };
}
