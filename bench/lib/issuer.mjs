// A stand-in token issuer for the benchmarks: one RS256 2048-bit key, a static JWKS served on
// 127.0.0.1 (the gateway fetches it once), and token minting.
//
// The issuer id is a fixed string (the JWKS URL is configured separately), so tokens do not
// depend on the port and can be kept between runs: minting 100,000 RS256 tokens takes about a
// minute of CPU, so the key and the tokens are cached in bench/results/.tokens/ (git-ignored)
// and reused while they stay valid for at least a day. Delete that directory to mint afresh.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { once } from 'node:events';
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, sign } from 'node:crypto';

export const AUDIENCE = 'https://cdf.bench';
export const GROUP = 'readers';
export const ISSUER = 'https://issuer.bench.example';
const KID = 'bench-key-1';
const TOKEN_TTL_SEC = 7 * 86400;
const REUSE_MIN_LEFT_SEC = 86400;

const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const HEADER = b64({ alg: 'RS256', kid: KID, typ: 'JWT' });

function loadOrCreateKeys(dir) {
  const file = dir && path.join(dir, 'keys.json');
  if (file && fs.existsSync(file)) {
    const { main, wrong } = JSON.parse(fs.readFileSync(file, 'utf8'));
    return { main: createPrivateKey({ key: main, format: 'jwk' }), wrong: createPrivateKey({ key: wrong, format: 'jwk' }) };
  }
  const main = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  // Same kid, different key: the gateway finds the key and the signature fails to verify.
  const wrong = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  if (file) {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(file, JSON.stringify({ main: main.export({ format: 'jwk' }), wrong: wrong.export({ format: 'jwk' }) }));
  }
  return { main, wrong };
}

/** `count` distinct GUID-shaped group ids for token `n` (Entra puts object ids in `groups`). */
function guidGroups(n, count) {
  const out = [GROUP];
  for (let g = 1; g < count; g++) out.push(`${(n >>> 0).toString(16).padStart(8, '0')}-${randomUUID().slice(9)}`);
  return out;
}

/**
 * @param {{ cacheDir?: string }} [o] where keys and minted tokens are kept between runs
 */
export async function startIssuer({ cacheDir } = {}) {
  const keys = loadOrCreateKeys(cacheDir);
  const jwk = { ...createPublicKey(keys.main).export({ format: 'jwk' }), kid: KID, alg: 'RS256', use: 'sig' };
  const jwks = Buffer.from(JSON.stringify({ keys: [jwk] }));

  let jwksHits = 0;
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/jwks') {
      jwksHits++;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': jwks.length });
      res.end(jwks);
      return;
    }
    res.writeHead(404).end();
  });
  server.keepAliveTimeout = 1000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const jwksUri = `http://127.0.0.1:${server.address().port}/jwks`;

  /**
   * A valid token; `n` makes it distinct (sub and jti). `groups` > 1 adds GUID-shaped groups
   * (about 52 bytes of token each: 185 make a ~10 KB token).
   */
  function mint(n = 0, { ttlSec = TOKEN_TTL_SEC, key = keys.main, groups = 1 } = {}) {
    const now = Math.floor(Date.now() / 1000);
    const payload = b64({
      iss: ISSUER, aud: AUDIENCE, sub: `bench-user-${n}`, iat: now, exp: now + ttlSec,
      groups: groups > 1 ? guidGroups(n, groups) : [GROUP], scp: 'user_impersonation', jti: `bench-${n}-${now}`,
    });
    const data = `${HEADER}.${payload}`;
    // Signed on libuv's thread pool, so that minting many uses every core.
    return new Promise((resolve, reject) => sign('sha256', Buffer.from(data), key, (err, sig) => (err ? reject(err) : resolve(`${data}.${sig.toString('base64url')}`))));
  }

  /** `count` distinct valid tokens, from the cache when it has them, else minted (and cached). */
  async function mintMany(count, { offset = 0, groups = 1, label = 'pool' } = {}) {
    const file = cacheDir && path.join(cacheDir, `${label}-${count}-${offset}-${groups}.json`);
    if (file && fs.existsSync(file)) {
      const cached = JSON.parse(fs.readFileSync(file, 'utf8'));
      if (cached.exp - Date.now() / 1000 > REUSE_MIN_LEFT_SEC && cached.tokens.length === count) return { tokens: cached.tokens, cached: true };
    }
    const tokens = new Array(count);
    for (let i = 0; i < count; i += 256) {
      const jobs = [];
      for (let j = i; j < Math.min(count, i + 256); j++) jobs.push(mint(offset + j, { groups }).then((t) => { tokens[j] = t; }));
      await Promise.all(jobs);
    }
    if (file) fs.writeFileSync(file, JSON.stringify({ exp: Math.floor(Date.now() / 1000) + TOKEN_TTL_SEC, tokens }));
    return { tokens, cached: false };
  }

  const badSignature = () => mint(-1, { key: keys.wrong });

  async function close() {
    server.closeAllConnections?.();
    server.close();
  }

  return { issuer: ISSUER, jwksUri, audience: AUDIENCE, mint, mintMany, badSignature, close, jwksHits: () => jwksHits };
}
