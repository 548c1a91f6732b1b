// JWK → verification key, refusing every key that must not verify a signature: wrong use,
// private or symmetric material, unsupported types and curves, and weak public keys whose
// "signatures" anyone can make (an RSA exponent of 1 turns the signature into the padded hash;
// an Ed25519 key of small order accepts a fixed signature for every message).
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { JWK } from 'jose';

/** A verification key from the issuer's JWKS. Reused across fetches while its JWK is unchanged. */
export interface KeyEntry {
  readonly kid: string | undefined;
  /** The JWK's `alg`, when it names one: then only that algorithm may use the key. */
  readonly alg: string | undefined;
  /** RSA | EC (P-256, P-384, P-521) | OKP (Ed25519). */
  readonly kty: 'RSA' | 'EC' | 'OKP';
  readonly crv: string | undefined;
  readonly key: KeyObject;
  /** Identity of the JWK material (kid, alg, use, kty and public parameters). */
  readonly fingerprint: string;
}

const EC_CURVES: Readonly<Record<string, string>> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' };
/** RSA modulus bounds: below 2048 is breakable; OpenSSL itself refuses more than 16384. */
const MIN_RSA_BITS = 2048;
const MAX_RSA_BITS = 16384;
/** RSA public exponent bounds (FIPS 186-5 §A.1.1): odd, 2^16 < e < 2^256. */
const MIN_RSA_EXPONENT = 65537n;
const MAX_RSA_EXPONENT_BITS = 256;

/** Whether `entry` may verify a signature made with `alg`. */
export function keyFitsAlg(entry: KeyEntry, alg: string): boolean {
  if (entry.alg !== undefined && entry.alg !== alg) return false;
  switch (entry.kty) {
    case 'RSA': return alg.startsWith('RS') || alg.startsWith('PS');
    case 'EC': return entry.crv !== undefined && EC_CURVES[entry.crv] === alg;
    case 'OKP': return alg === 'EdDSA' && entry.crv === 'Ed25519';
  }
}

const str = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

const bigintOf = (b64url: string): bigint => {
  const hex = Buffer.from(b64url, 'base64url').toString('hex');
  return hex === '' ? 0n : BigInt(`0x${hex}`);
};

/** An RSA public key anyone could forge signatures for, or too costly to use. */
export function weakRsa(n: string, e: string, modulusBits: number): boolean {
  if (modulusBits < MIN_RSA_BITS || modulusBits > MAX_RSA_BITS) return true;
  if ((bigintOf(n) & 1n) === 0n) return true; // an even modulus factors at once
  const exp = bigintOf(e);
  return exp < MIN_RSA_EXPONENT || (exp & 1n) === 0n || exp.toString(2).length > MAX_RSA_EXPONENT_BITS;
}

const P25519 = (1n << 255n) - 19n;
/** y of an Ed25519 point of order 8 (the other is P25519 minus it). */
const Y8 = 2707385501144840649318225287225658788936804267575313519463743609750303402022n;
/** y coordinates of the eight small-order Ed25519 points (orders 1, 2, 4, 8). */
const SMALL_ORDER_Y = new Set([1n, P25519 - 1n, 0n, Y8, P25519 - Y8]);

/**
 * An Ed25519 public key of small order (OpenSSL then accepts R = identity, s = 0 for every
 * message) or not canonically encoded (y ≥ p).
 */
export function weakEd25519(x: string): boolean {
  const bytes = Buffer.from(x, 'base64url');
  if (bytes.length !== 32) return true;
  const le = Buffer.from(bytes);
  le[31]! &= 0x7f; // the top bit is the sign of x
  const y = BigInt(`0x${le.reverse().toString('hex')}`);
  return y >= P25519 || SMALL_ORDER_Y.has(y);
}

/** The public parameters of a JWK we could use, or null. */
function publicMaterial(jwk: JWK): Record<string, string> | null {
  switch (jwk.kty) {
    case 'RSA':
      return str(jwk.n) && str(jwk.e) ? { kty: 'RSA', n: jwk.n, e: jwk.e } : null;
    case 'EC':
      if (!str(jwk.crv) || EC_CURVES[jwk.crv] === undefined || !str(jwk.x) || !str(jwk.y)) return null;
      return { kty: 'EC', crv: jwk.crv, x: jwk.x, y: jwk.y };
    case 'OKP':
      return jwk.crv === 'Ed25519' && str(jwk.x) && !weakEd25519(jwk.x) ? { kty: 'OKP', crv: jwk.crv, x: jwk.x } : null;
    default:
      return null;
  }
}

/**
 * JWK → KeyEntry, or null for keys we never use: `use` other than sig, `key_ops` without
 * verify, symmetric (oct), private (has `d`), unsupported types/curves, weak RSA (modulus under
 * 2048 bits or even, exponent not odd or below 65537) and small-order Ed25519 keys, material
 * node:crypto refuses (EC points off their curve).
 */
export function jwkToEntry(jwk: JWK, previous?: ReadonlyMap<string, KeyEntry>): KeyEntry | null {
  if (jwk === null || typeof jwk !== 'object') return null;
  if (jwk.use !== undefined && jwk.use !== 'sig') return null;
  if (jwk.key_ops !== undefined && (!Array.isArray(jwk.key_ops) || !jwk.key_ops.includes('verify'))) return null;
  if ('d' in jwk) return null;
  if (jwk.kid !== undefined && typeof jwk.kid !== 'string') return null;
  if (jwk.alg !== undefined && typeof jwk.alg !== 'string') return null;
  const material = publicMaterial(jwk);
  if (material === null) return null;
  const fingerprint = JSON.stringify([jwk.kid ?? null, jwk.alg ?? null, material]);
  const reused = previous?.get(fingerprint);
  if (reused !== undefined) return reused;
  let key: KeyObject;
  try {
    key = createPublicKey({ key: material as JsonWebKey, format: 'jwk' });
  } catch {
    return null;
  }
  if (key.type !== 'public') return null;
  if (material.kty === 'RSA' && weakRsa(material.n!, material.e!, key.asymmetricKeyDetails?.modulusLength ?? 0)) return null;
  return Object.freeze({
    kid: jwk.kid, alg: jwk.alg, kty: material.kty as KeyEntry['kty'], crv: material.crv, key, fingerprint,
  });
}
