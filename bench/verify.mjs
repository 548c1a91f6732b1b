// Micro-benchmark: µs per RS256 token verification, our TokenVerifier against jose and bare
// node:crypto, in one run on one machine.
//
//   npx tsc -p tsconfig.build.json && taskset -c 0 node bench/verify.mjs [--tokens 2000] [--rounds 5]
//   (pinned to one CPU: the gateway's own choice there is inline; unpinned, the thread pool)
//
// (a) jose jwtVerify with a CryptoKey            (WebCrypto per call)
// (b) jose jwtVerify with createLocalJWKSet      (key lookup + WebCrypto)
// (c) bare node:crypto.verify, cached KeyObject  (the floor: signature only)
// (d) TokenVerifier, cache off, distinct tokens  (first-seen: claims, key, signature), inline, (d') on the thread pool
//     and, with tokens in flight, (d'') batched per event-loop turn (the gateway's choice on one CPU)
// (e) TokenVerifier, cache hit
//
// Then the same distinct tokens 50 in flight (as under load), with the CPU each costs: on the
// event loop (what limits one Node process's throughput) and in the whole process (event loop
// plus libuv's thread pool, where the gateway runs crypto.verify).
import { createPublicKey, generateKeyPairSync, verify as cryptoVerify } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { SignJWT, createLocalJWKSet, exportJWK, importJWK, jwtVerify } from 'jose';
import { TokenVerifier } from '../dist/token/verify.js';

const { values } = parseArgs({ options: { tokens: { type: 'string', default: '2000' }, rounds: { type: 'string', default: '5' } } });
const N = Number(values.tokens);
const ROUNDS = Number(values.rounds);

const ISS = 'https://idp.bench.example';
const AUD = 'https://cdf.example';
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...(await exportJWK(publicKey)), kid: 'bench-1', alg: 'RS256', use: 'sig' };
const jwks = { keys: [jwk] };
const cryptoKey = await importJWK(jwk, 'RS256');
const keyObject = createPublicKey({ key: jwk, format: 'jwk' });

const now = Math.floor(Date.now() / 1000);
const tokens = [];
for (let i = 0; i < N; i++) {
  tokens.push(await new SignJWT({ sub: `user-${i}`, groups: ['readers', 'writers'], scp: 'user_impersonation', email: `u${i}@example.com` })
    .setProtectedHeader({ alg: 'RS256', kid: 'bench-1', typ: 'JWT' })
    .setIssuer(ISS).setAudience(AUD).setIssuedAt(now).setExpirationTime(now + 3600)
    .sign(privateKey));
}

const tokensConfig = {
  jwksTimeoutMs: 1000, jwksCooldownMs: 30000, jwksCacheMaxAgeMs: 600000, jwksMaxStaleMs: 3600000, jwksMaxBytes: 1048576,
  clockToleranceSec: 30, maxTokenBytes: 12288,
};
const issuers = [{ issuer: ISS, jwksUri: `${ISS}/jwks`, audiences: [AUD], algorithms: ['RS256'] }];
const fakeFetch = async () => new Response(JSON.stringify(jwks), { status: 200, headers: { 'content-type': 'application/json' } });
const uncached = new TokenVerifier({ issuers, tokens: { ...tokensConfig, cacheSize: 0 }, fetch: fakeFetch, signatures: 'inline' });
const uncachedPool = new TokenVerifier({ issuers, tokens: { ...tokensConfig, cacheSize: 0 }, fetch: fakeFetch, signatures: 'thread-pool' });
const uncachedBatched = new TokenVerifier({ issuers, tokens: { ...tokensConfig, cacheSize: 0 }, fetch: fakeFetch, signatures: 'batched' });
const cached = new TokenVerifier({ issuers, tokens: { ...tokensConfig, cacheSize: 10000 }, fetch: fakeFetch });
await uncached.warmUp();
await uncachedPool.warmUp();
await uncachedBatched.warmUp();
await cached.warmUp();
if (![uncached, uncachedPool, uncachedBatched, cached].every((v) => v.readiness().ready)) throw new Error('verifiers not ready');
const defaultMode = new TokenVerifier({ issuers, tokens: tokensConfig }).signatures;
const affinity = /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '?';
console.log(`CPUs allowed: ${affinity} (os.availableParallelism() ${availableParallelism()}); the gateway here would check signatures ${defaultMode}`);

const localSet = createLocalJWKSet(jwks);
const opts = { issuer: ISS, audience: AUD, algorithms: ['RS256'] };

function bareAsync(token) {
  const dot = token.lastIndexOf('.');
  return new Promise((resolve, reject) => cryptoVerify('sha256', Buffer.from(token.slice(0, dot), 'latin1'), keyObject,
    Buffer.from(token.slice(dot + 1), 'base64url'), (err, ok) => (err || !ok ? reject(err ?? new Error('bad signature')) : resolve())));
}

function bare(token) {
  const dot = token.lastIndexOf('.');
  const ok = cryptoVerify('sha256', Buffer.from(token.slice(0, dot), 'latin1'), keyObject, Buffer.from(token.slice(dot + 1), 'base64url'));
  if (!ok) throw new Error('bad signature');
}

const cases = [
  ['(a) jose jwtVerify, CryptoKey', async (tok) => { await jwtVerify(tok, cryptoKey, opts); }],
  ['(b) jose jwtVerify, createLocalJWKSet', async (tok) => { await jwtVerify(tok, localSet, opts); }],
  ['(c) node:crypto.verify, cached KeyObject', async (tok) => { bare(tok); }],
  ['(d) TokenVerifier, cache off, inline', async (tok) => { await uncached.verify(tok); }],
  ['(d\') TokenVerifier, cache off, thread pool', async (tok) => { await uncachedPool.verify(tok); }],
  ['(e) TokenVerifier, cache hit', async () => { await cached.verify(tokens[0]); }],
];
await cached.verify(tokens[0]);

// Rounds interleave the cases and each case keeps its best round, so a noisy (shared) machine
// penalises every case alike and the figures stay comparable within one run.
async function runOnce(fn) {
  const t0 = performance.now();
  for (let i = 0; i < N; i++) await fn(tokens[i]);
  return ((performance.now() - t0) * 1000) / N;
}
for (const [, fn] of cases) for (let i = 0; i < Math.min(N, 500); i++) await fn(tokens[i]); // JIT warm-up
const best = cases.map(() => Infinity);
for (let r = 0; r < ROUNDS; r++) {
  for (let c = 0; c < cases.length; c++) best[c] = Math.min(best[c], await runOnce(cases[c][1]));
}
const results = cases.map(([name], c) => [name, best[c]]);
const floor = results[2][1];
console.log(`RS256-2048, ${N} distinct tokens, best of ${ROUNDS} interleaved rounds, sequential awaits, node ${process.version}\n`);
console.log(`${'case'.padEnd(44)}${'µs/op'.padStart(10)}${'ops/s'.padStart(12)}${'× (c)'.padStart(9)}`);
for (const [name, us] of results) {
  console.log(`${name.padEnd(44)}${us.toFixed(1).padStart(10)}${Math.round(1e6 / us).toString().padStart(12)}${(us / floor).toFixed(2).padStart(9)}`);
}

// 50 in flight: wall time, event-loop time and process CPU per token.
const IN_FLIGHT = 50;
async function runConcurrent(fn) {
  let next = 0;
  const elu0 = performance.eventLoopUtilization();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => { while (next < N) await fn(tokens[next++]); }));
  const wall = performance.now() - t0;
  const elu = performance.eventLoopUtilization(elu0);
  const cpu = process.cpuUsage(cpu0);
  return { wall: (wall * 1000) / N, loop: (elu.active * 1000) / N, cpu: (cpu.user + cpu.system) / N };
}
const conc = [
  ['(c) node:crypto.verify, sync', async (tok) => { bare(tok); }],
  ['(c\') node:crypto.verify, thread pool', bareAsync],
  ['(d) TokenVerifier, cache off, inline', async (tok) => { await uncached.verify(tok); }],
  ['(d\') TokenVerifier, cache off, thread pool', async (tok) => { await uncachedPool.verify(tok); }],
  ['(d\'\') TokenVerifier, cache off, batched', async (tok) => { await uncachedBatched.verify(tok); }],
];
const bestC = conc.map(() => null);
for (let r = 0; r < ROUNDS; r++) {
  for (let c = 0; c < conc.length; c++) {
    const x = await runConcurrent(conc[c][1]);
    if (bestC[c] === null || x.loop < bestC[c].loop) bestC[c] = x;
  }
}
console.log(`\n${IN_FLIGHT} in flight, round with the least event-loop time per token (µs per token)\n`);
console.log(`${'case'.padEnd(44)}${'wall'.padStart(8)}${'event loop'.padStart(12)}${'process CPU'.padStart(13)}`);
for (let c = 0; c < conc.length; c++) {
  const x = bestC[c];
  console.log(`${conc[c][0].padEnd(44)}${x.wall.toFixed(1).padStart(8)}${x.loop.toFixed(1).padStart(12)}${x.cpu.toFixed(1).padStart(13)}`);
}
uncached.close();
uncachedPool.close();
uncachedBatched.close();
cached.close();
