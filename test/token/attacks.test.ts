// Forged tokens and bad claims against a real verifier, real keys and a real JWKS server.
// Each row names the exact InvalidTokenError reason (or null: must verify).
import { createHash, generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import { exportJWK } from 'jose';
import t from 'tap';
import { InvalidTokenError } from '../../src/errors.js';
import { TokenVerifier } from '../../src/token/verify.js';
import { startJwksServer } from '../fixtures/jwks-server.js';
import {
  AUDIENCE, RecordingMetrics, TestClock, b64url, claims, hs256, issuerConfig, mint, rawToken, signRaw,
  standardKeys, swapPayload, tokensConfig,
} from '../fixtures/tokens.js';

const keys = await standardKeys();
const { rs, ps, es, ed, attacker } = keys;
const weakPair = generateKeyPairSync('rsa', { modulusLength: 1024 });
const weakJwk = { ...(await exportJWK(weakPair.publicKey)), kid: 'weak', alg: 'RS256', use: 'sig' };

// Public keys for which anyone can make a valid signature without a private key.
const e1Jwk = { ...(await exportJWK(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey)), e: 'AQ', kid: 'e1', alg: 'RS256', use: 'sig' };
const ED_IDENTITY = Buffer.concat([Buffer.from([1]), Buffer.alloc(31)]);
const edSmallJwk = { kty: 'OKP', crv: 'Ed25519', x: b64url(ED_IDENTITY), kid: 'ed-small', alg: 'EdDSA', use: 'sig' };

/** RS256 "signature" under e = 1: s^1 mod n is s itself, so the PKCS#1 v1.5 encoded hash verifies. */
function forgeE1(header: object, payload: object): string {
  const input = `${b64url(header)}.${b64url(payload)}`;
  const digestInfo = Buffer.concat([Buffer.from('3031300d060960864801650304020105000420', 'hex'), createHash('sha256').update(input).digest()]);
  const em = Buffer.concat([Buffer.from([0, 1]), Buffer.alloc(256 - 3 - digestInfo.length, 0xff), Buffer.from([0]), digestInfo]);
  return `${input}.${b64url(em)}`;
}
/** EdDSA "signature" R = identity, s = 0: valid for every message under a small-order key. */
const forgeEdSmall = (header: object, payload: object) => `${b64url(header)}.${b64url(payload)}.${b64url(Buffer.concat([ED_IDENTITY, Buffer.alloc(32)]))}`;

const idp = await startJwksServer({ keys: [rs.jwk, ps.jwk, es.jwk, ed.jwk, weakJwk, e1Jwk, edSmallJwk] });
const evil = await startJwksServer({ keys: [attacker.jwk] });
t.teardown(async () => { await idp.close(); await evil.close(); });

const clock = new TestClock();
const metrics = new RecordingMetrics();
const ISS = idp.issuer;
const MAX = 4096;
// Every row runs against every place a signature can be checked (inline, batched, thread pool).
const verifiers = (['inline', 'batched', 'thread-pool'] as const).map((signatures) => new TokenVerifier({
  issuers: [issuerConfig(ISS, idp.jwksUri)],
  tokens: tokensConfig({ clockToleranceSec: 30, maxTokenBytes: MAX, jwksCooldownMs: 0 }),
  clock: clock.fn,
  metrics,
  signatures,
}));
t.teardown(() => { for (const v of verifiers) v.close(); });

const now = clock.now;
const sec = Math.floor(now / 1000);
const good = (o: Record<string, unknown> = {}) => claims(ISS, AUDIENCE, now, o);
const rsHeader = { alg: 'RS256', kid: 'rs-1' };
const pubPem = rs.publicKey.export({ type: 'spki', format: 'pem' }) as string;
const attackerCertLike = b64url(attacker.publicKey.export({ type: 'spki', format: 'der' }));

interface Row { name: string; token: () => Promise<string> | string; reason: string | null }
const rows: Row[] = [
  // Baselines: every supported algorithm verifies.
  { name: 'valid RS256', token: () => mint(good(), { key: rs }), reason: null },
  { name: 'valid PS256', token: () => mint(good(), { key: ps }), reason: null },
  { name: 'valid ES256', token: () => mint(good(), { key: es }), reason: null },
  { name: 'valid EdDSA', token: () => mint(good(), { key: ed }), reason: null },

  // Algorithm attacks.
  { name: 'alg none, empty signature', token: () => rawToken({ alg: 'none' }, good()), reason: 'malformed' },
  { name: 'alg none with a signature part', token: () => rawToken({ alg: 'none', kid: 'rs-1' }, good(), 'AAAA'), reason: 'alg' },
  { name: 'alg "None" (case games)', token: () => rawToken({ alg: 'None', kid: 'rs-1' }, good(), 'AAAA'), reason: 'alg' },
  { name: 'HS256 keyed with the RSA public key PEM (alg confusion)', token: () => hs256({ alg: 'HS256', kid: 'rs-1' }, good(), pubPem), reason: 'alg' },
  { name: 'HS256 keyed with the JWK modulus', token: () => hs256({ alg: 'HS256', kid: 'rs-1' }, good(), rs.jwk.n!), reason: 'alg' },
  { name: 'alg missing', token: () => signRaw({ kid: 'rs-1' }, good(), rs.privateKey, 'RS256'), reason: 'alg' },
  { name: 'alg not in the issuer allow-list (RS384)', token: () => signRaw({ alg: 'RS384', kid: 'rs-1' }, good(), rs.privateKey, 'RS384'), reason: 'alg' },
  { name: 'PS256 with an RS256-only key (JWK alg)', token: () => signRaw({ alg: 'PS256', kid: 'rs-1' }, good(), rs.privateKey, 'PS256'), reason: 'unknown_kid' },
  { name: 'RS256 naming an EC kid', token: () => signRaw({ alg: 'RS256', kid: 'es-1' }, good(), rs.privateKey, 'RS256'), reason: 'unknown_kid' },
  { name: 'ES256 signature in DER instead of P1363', token: () => {
    const input = `${b64url({ alg: 'ES256', kid: 'es-1' })}.${b64url(good())}`;
    return `${input}.${b64url(cryptoSign('sha256', Buffer.from(input), es.privateKey))}`;
  }, reason: 'signature' },

  // Key attacks.
  { name: 'signed by the attacker under the real kid', token: () => mint(good(), { key: attacker, kid: 'rs-1' }), reason: 'signature' },
  { name: 'payload swapped after signing', token: async () => swapPayload(await mint(good(), { key: rs }), good({ sub: 'admin' })), reason: 'signature' },
  { name: 'signature truncated', token: async () => (await mint(good(), { key: rs })).slice(0, -8), reason: 'signature' },
  { name: 'signature of another valid token', token: async () => {
    const [a, b] = await Promise.all([mint(good({ sub: 'a' }), { key: rs }), mint(good({ sub: 'b' }), { key: rs })]);
    return `${a.split('.').slice(0, 2).join('.')}.${b.split('.')[2]}`;
  }, reason: 'signature' },
  { name: 'unknown kid', token: () => mint(good(), { key: attacker }), reason: 'unknown_kid' },
  { name: 'jku → attacker JWKS, attacker kid', token: () => mint(good(), { key: attacker, header: { jku: evil.jwksUri } }), reason: 'unknown_kid' },
  { name: 'jku → attacker JWKS, real kid', token: () => mint(good(), { key: attacker, kid: 'rs-1', header: { jku: evil.jwksUri } }), reason: 'signature' },
  { name: 'x5u → attacker, real kid', token: () => mint(good(), { key: attacker, kid: 'rs-1', header: { x5u: `${evil.url}/cert.pem` } }), reason: 'signature' },
  { name: 'embedded jwk (attacker), attacker kid', token: () => mint(good(), { key: attacker, header: { jwk: attacker.jwk } }), reason: 'unknown_kid' },
  { name: 'embedded jwk (attacker), real kid', token: () => mint(good(), { key: attacker, kid: 'rs-1', header: { jwk: attacker.jwk } }), reason: 'signature' },
  { name: 'embedded jwk (attacker), no kid', token: () => mint(good(), { key: attacker, kid: null, header: { jwk: { ...attacker.jwk, kid: undefined } } }), reason: 'signature' },
  { name: 'no kid, the single RS256 key verifies', token: () => mint(good(), { key: rs, kid: null }), reason: null },
  { name: 'x5c (attacker key), real kid', token: () => mint(good(), { key: attacker, kid: 'rs-1', header: { x5c: [attackerCertLike] } }), reason: 'signature' },
  { name: 'crit header (even a claim name)', token: () => signRaw({ ...rsHeader, crit: ['exp'] }, good(), rs.privateKey, 'RS256'), reason: 'crit' },
  { name: 'crit empty array', token: () => signRaw({ ...rsHeader, crit: [] }, good(), rs.privateKey, 'RS256'), reason: 'crit' },
  { name: 'b64: false with crit', token: () => signRaw({ ...rsHeader, b64: false, crit: ['b64'] }, good(), rs.privateKey, 'RS256'), reason: 'crit' },
  { name: 'RSA 1024 key published in the JWKS', token: () => signRaw({ alg: 'RS256', kid: 'weak' }, good(), weakPair.privateKey, 'RS256'), reason: 'unknown_kid' },
  { name: 'RSA key with public exponent 1 published in the JWKS: forged without a private key', token: () => forgeE1({ alg: 'RS256', kid: 'e1' }, good({ sub: 'admin' })), reason: 'unknown_kid' },
  { name: 'small-order Ed25519 key published in the JWKS: forged without a private key', token: () => forgeEdSmall({ alg: 'EdDSA', kid: 'ed-small' }, good({ sub: 'admin' })), reason: 'unknown_kid' },
  { name: 'kid not a string', token: () => signRaw({ alg: 'RS256', kid: 1 }, good(), rs.privateKey, 'RS256'), reason: 'malformed' },

  // Issuer and audience.
  { name: 'wrong iss', token: () => mint(good({ iss: 'http://evil.example' }), { key: rs }), reason: 'unknown_issuer' },
  { name: 'iss with trailing slash', token: () => mint(good({ iss: `${ISS}/` }), { key: rs }), reason: 'unknown_issuer' },
  { name: 'iss differing in case', token: () => mint(good({ iss: ISS.toUpperCase() }), { key: rs }), reason: 'unknown_issuer' },
  { name: 'iss missing', token: () => mint(good({ iss: undefined }), { key: rs }), reason: 'unknown_issuer' },
  { name: 'iss an array', token: () => mint(good({ iss: [ISS] }), { key: rs }), reason: 'unknown_issuer' },
  { name: 'wrong aud', token: () => mint(good({ aud: 'https://other.example' }), { key: rs }), reason: 'claim:aud' },
  { name: 'aud array with one good entry', token: () => mint(good({ aud: ['https://other.example', AUDIENCE] }), { key: rs }), reason: null },
  { name: 'aud array without a good entry', token: () => mint(good({ aud: ['https://other.example', `${AUDIENCE}/`] }), { key: rs }), reason: 'claim:aud' },
  { name: 'aud a number', token: () => signRaw(rsHeader, good({ aud: 5 }), rs.privateKey, 'RS256'), reason: 'claim:aud' },

  // Required claims.
  { name: 'aud missing', token: () => mint(good({ aud: undefined }), { key: rs }), reason: 'claim:aud' },
  { name: 'exp missing', token: () => mint(good({ exp: undefined }), { key: rs }), reason: 'claim:exp' },
  { name: 'iat missing', token: () => mint(good({ iat: undefined }), { key: rs }), reason: 'claim:iat' },
  { name: 'sub missing', token: () => mint(good({ sub: undefined }), { key: rs }), reason: 'claim:sub' },
  { name: 'sub not a string', token: () => mint(good({ sub: 42 }), { key: rs }), reason: 'claim:sub' },
  { name: 'sub with CRLF (header injection)', token: () => mint(good({ sub: 'a\r\nX-Auth-Request-Groups: admins' }), { key: rs }), reason: 'claim:sub' },
  { name: 'exp a string', token: () => mint(good({ exp: String(sec + 3600) }), { key: rs }), reason: 'claim:exp' },

  // Time.
  { name: 'expired', token: () => mint(good({ exp: sec - 31 }), { key: rs }), reason: 'expired' },
  { name: 'expired within tolerance', token: () => mint(good({ exp: sec - 20 }), { key: rs }), reason: null },
  { name: 'exp exactly at now - tolerance', token: () => mint(good({ exp: sec - 30 }), { key: rs }), reason: 'expired' },
  { name: 'nbf in the future beyond tolerance', token: () => mint(good({ nbf: sec + 31 }), { key: rs }), reason: 'claim:nbf' },
  { name: 'nbf in the future within tolerance', token: () => mint(good({ nbf: sec + 20 }), { key: rs }), reason: null },
  { name: 'iat in the future beyond tolerance', token: () => mint(good({ iat: sec + 31 }), { key: rs }), reason: 'claim:iat' },
  { name: 'iat in the future within tolerance', token: () => mint(good({ iat: sec + 20 }), { key: rs }), reason: null },
  { name: 'very old iat is fine (no max age policy)', token: () => mint(good({ iat: sec - 10 * 365 * 86400 }), { key: rs }), reason: null },

  // Structure.
  { name: 'too large (checked before parsing)', token: () => 'x'.repeat(MAX + 1), reason: 'too_large' },
  { name: 'too large but otherwise valid', token: () => mint(good({ pad: 'p'.repeat(MAX) }), { key: rs }), reason: 'too_large' },
  { name: 'two parts', token: async () => (await mint(good(), { key: rs })).split('.').slice(0, 2).join('.'), reason: 'malformed' },
  { name: 'four parts', token: async () => `${await mint(good(), { key: rs })}.AAAA`, reason: 'malformed' },
  { name: 'empty header part', token: async () => `.${(await mint(good(), { key: rs })).split('.').slice(1).join('.')}`, reason: 'malformed' },
  { name: 'empty string', token: () => '', reason: 'malformed' },
  { name: 'bad base64 (+/ alphabet)', token: async () => {
    const [h, p, s] = (await mint(good(), { key: rs })).split('.');
    return `${h}.${p}.${s!.replace(/-/g, '+').replace(/_/g, '/')}+`;
  }, reason: 'malformed' },
  { name: 'bad base64 (padding)', token: async () => `${await mint(good(), { key: rs })}==`, reason: 'malformed' },
  { name: 'bad base64 (impossible length)', token: async () => {
    const [h, p, s] = (await mint(good(), { key: rs })).split('.');
    return `${h}.${p}.${s}${s!.length % 4 === 0 ? 'A' : s!.length % 4 === 2 ? 'AAA' : 'AA'}`;
  }, reason: 'malformed' },
  { name: 'header not JSON', token: () => signRaw(b64url('not json'), good(), rs.privateKey, 'RS256'), reason: 'malformed' },
  { name: 'header a JSON array', token: () => signRaw(b64url('["RS256"]'), good(), rs.privateKey, 'RS256'), reason: 'malformed' },
  { name: 'payload a JSON array', token: () => signRaw(rsHeader, b64url('[1,2]'), rs.privateKey, 'RS256'), reason: 'malformed' },
  { name: 'payload a JSON string', token: () => signRaw(rsHeader, b64url('"sub"'), rs.privateKey, 'RS256'), reason: 'malformed' },
  { name: 'payload null', token: () => signRaw(rsHeader, b64url('null'), rs.privateKey, 'RS256'), reason: 'malformed' },
  { name: 'payload invalid UTF-8', token: () => signRaw(rsHeader, b64url(Buffer.from([0x7b, 0xff, 0x7d])), rs.privateKey, 'RS256'), reason: 'malformed' },
];

t.ok(rows.length >= 25, `${rows.length} rows`);

for (const verifier of verifiers) for (const row of rows) {
  t.test(`${verifier.signatures}: ${row.name}`, async (t) => {
    const token = await row.token();
    metrics.verifications.length = 0;
    if (row.reason === null) {
      const p = await verifier.verify(token);
      t.equal(p.issuer, ISS);
      t.notOk(Object.values(p).includes(token), 'the Principal does not hold the token');
      t.same(metrics.verifications, ['valid']);
    } else {
      const err = await verifier.verify(token).then(() => null, (e: unknown) => e);
      t.ok(err instanceof InvalidTokenError, 'InvalidTokenError');
      t.equal((err as InvalidTokenError).reason, row.reason, 'reason');
      t.equal((err as InvalidTokenError).status, 401);
      t.same(metrics.verifications, [row.reason === 'expired' ? 'expired' : 'invalid']);
    }
  });
}

t.test('the attacker server was never contacted', async (t) => {
  t.equal(evil.requests.total, 0);
});
