// Bearer JWT verification: the hot path of every API request.
//
// Signatures are checked with node:crypto.verify against KeyObjects cached per issuer (see
// keys.ts) rather than with jose's jwtVerify, which goes through WebCrypto and costs ~3× more
// per RS256 token; the RSA work runs on the libuv thread pool (crypto.verify with a callback),
// so a second core can share it. Claims are still validated by jose (see validateClaims below).
// Verified tokens are kept in an LRU until their `exp` or until the key that verified them goes
// away.
import { constants, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { TextDecoder } from 'node:util';
import { UnsecuredJWT, errors as joseErrors, type JWTPayload } from 'jose';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../clock.js';
import type { IssuerConfig, TokensConfig } from '../config/types.js';
import { InvalidTokenError, KeysUnavailableError } from '../errors.js';
import { noopMetrics, type Metrics, type VerifyOutcome } from '../metrics.js';
import type { KeyEntry } from './jwk.js';
import { IssuerKeys, type IssuerStatus } from './keys.js';
import { principalFromClaims, type Principal } from './principal.js';

export interface VerifierOptions {
  issuers: readonly IssuerConfig[];
  tokens: TokensConfig;
  clock?: Clock;
  metrics?: Metrics;
  logger?: Logger;
  /** For tests and benchmarks; used for discovery and JWKS fetches. */
  fetch?: typeof fetch;
}

export interface Readiness {
  ready: boolean;
  issuers: IssuerStatus[];
}

/** How each supported `alg` is checked with node:crypto. Nothing else (none, HS*) exists here. */
interface AlgSpec {
  readonly digest: string | null;
  readonly kty: KeyEntry['kty'];
  /** Extra options for crypto.verify's key argument; null: pass the KeyObject itself. */
  readonly opts: Readonly<Record<string, unknown>> | null;
  /** ES*: the exact IEEE P1363 signature length (r‖s). */
  readonly sigBytes?: number;
}
const PSS = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST };
const P1363 = { dsaEncoding: 'ieee-p1363' };
const ALGS: Readonly<Record<string, AlgSpec>> = Object.freeze({
  RS256: { digest: 'sha256', kty: 'RSA', opts: null },
  RS384: { digest: 'sha384', kty: 'RSA', opts: null },
  RS512: { digest: 'sha512', kty: 'RSA', opts: null },
  PS256: { digest: 'sha256', kty: 'RSA', opts: PSS },
  PS384: { digest: 'sha384', kty: 'RSA', opts: PSS },
  PS512: { digest: 'sha512', kty: 'RSA', opts: PSS },
  ES256: { digest: 'sha256', kty: 'EC', opts: P1363, sigBytes: 64 },
  ES384: { digest: 'sha384', kty: 'EC', opts: P1363, sigBytes: 96 },
  ES512: { digest: 'sha512', kty: 'EC', opts: P1363, sigBytes: 132 },
  EdDSA: { digest: null, kty: 'OKP', opts: null },
});

/** Base64url alphabet, no padding. */
const B64URL = /^[A-Za-z0-9_-]+$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });
/** base64url('{"alg":"none"}'): the header of the unsecured JWT handed to jose's claim checks. */
const NONE_HEADER = Buffer.from('{"alg":"none"}').toString('base64url');
/** Effectively no maximum age; set only so that jose checks a future `iat` (see validateClaims). */
const NO_MAX_AGE = Number.MAX_SAFE_INTEGER;
const REQUIRED_CLAIMS = ['aud', 'exp', 'iat', 'iss', 'sub'];

/** What the verifier reads from a JOSE header (nothing else in it is ever used). */
interface HeaderFields {
  readonly alg: unknown;
  readonly kid: unknown;
  readonly crit: boolean;
}
/**
 * Header segments seen recently → their fields. An issuer signs every token with the same few
 * headers (alg, kid, typ), so the header is decoded once per key rather than once per token.
 * Only well-formed headers are kept; the map is cleared when full, so a flood of distinct
 * headers costs what it would without the map.
 */
const HEADER_MEMO_MAX = 64;
const HEADER_PART_MAX = 512;
const headerMemo = new Map<string, HeaderFields>();

function headerFields(part: string): HeaderFields | null {
  const memo = headerMemo.get(part);
  if (memo !== undefined) return memo;
  const header = decodeJsonObject(part);
  if (header === null) return null;
  const fields: HeaderFields = Object.freeze({ alg: header.alg, kid: header.kid, crit: Object.hasOwn(header, 'crit') });
  if (part.length <= HEADER_PART_MAX) {
    if (headerMemo.size >= HEADER_MEMO_MAX) headerMemo.clear();
    headerMemo.set(part, fields);
  }
  return fields;
}

interface IssuerRuntime {
  readonly config: IssuerConfig;
  readonly algorithms: ReadonlySet<string>;
  readonly keys: IssuerKeys;
  readonly audiences: string[];
}

interface CacheEntry {
  readonly principal: Principal;
  readonly key: KeyEntry;
  readonly keys: IssuerKeys;
}

/** base64url → a JSON object (not an array), or null. */
function decodeJsonObject(part: string): Record<string, unknown> | null {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(Buffer.from(part, 'base64url')));
  } catch {
    return null;
  }
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}

/** A base64url segment that decodes to whole bytes (length ≡ 1 mod 4 never does). */
function isB64url(part: string): boolean {
  return part.length > 0 && part.length % 4 !== 1 && B64URL.test(part);
}

/**
 * The signature check, on libuv's thread pool (crypto.verify with a callback): the ~30 µs of
 * RSA arithmetic per first-seen token leaves the event loop, which meanwhile serves other
 * requests. Same check, same inputs as the synchronous call; any error means "does not verify".
 */
function signatureOk(spec: AlgSpec, entry: KeyEntry, data: Buffer, sig: Buffer): Promise<boolean> {
  if (spec.sigBytes !== undefined && sig.length !== spec.sigBytes) return Promise.resolve(false);
  return new Promise<boolean>((resolve) => {
    try {
      const key: KeyObject = entry.key;
      // RS*: node:crypto's default padding for an RSA KeyObject is PKCS#1 v1.5 (RSASSA-PKCS1-v1_5),
      // so the key goes in as is (no options object on the hot path). EdDSA: digest null.
      cryptoVerify(spec.digest, data, spec.opts === null ? key : { key, ...spec.opts }, sig, (err, ok) => resolve(err === null && ok === true));
    } catch {
      resolve(false);
    }
  });
}

function outcomeOf(err: unknown): VerifyOutcome {
  if (err instanceof KeysUnavailableError) return 'unavailable';
  if (err instanceof InvalidTokenError && err.reason === 'expired') return 'expired';
  return 'invalid';
}

export class TokenVerifier {
  private readonly issuers: ReadonlyMap<string, IssuerRuntime>;
  private readonly tokens: TokensConfig;
  private readonly clock: Clock;
  private readonly metrics: Metrics;
  private readonly cache: LRUCache<string, CacheEntry> | null;

  constructor(opts: VerifierOptions) {
    this.tokens = opts.tokens;
    this.clock = opts.clock ?? systemClock;
    this.metrics = opts.metrics ?? noopMetrics;
    const deps = { clock: this.clock, metrics: this.metrics, logger: opts.logger, fetch: opts.fetch };
    const issuers = new Map<string, IssuerRuntime>();
    for (const config of opts.issuers) {
      issuers.set(config.issuer, {
        config,
        // Only asymmetric algorithms we implement; `none` and HS* can never get in.
        algorithms: new Set(config.algorithms.filter((a) => Object.hasOwn(ALGS, a))),
        keys: new IssuerKeys(config, opts.tokens, deps),
        audiences: [...config.audiences],
      });
    }
    this.issuers = issuers;
    this.cache = opts.tokens.cacheSize > 0 ? new LRUCache<string, CacheEntry>({ max: opts.tokens.cacheSize }) : null;
  }

  /**
   * The Principal of a valid token. Throws InvalidTokenError (401, with a `reason`) or
   * KeysUnavailableError (503: the issuer has no usable key set).
   */
  async verify(token: string): Promise<Principal> {
    try {
      const cached = this.cached(token);
      if (cached !== null) {
        this.metrics.tokenVerification('cached');
        return cached;
      }
      const principal = await this.verifyUncached(token);
      this.metrics.tokenVerification('valid');
      return principal;
    } catch (err) {
      this.metrics.tokenVerification(outcomeOf(err));
      throw err;
    }
  }

  private cached(token: string): Principal | null {
    // Length first: nothing larger is hashed, parsed or verified.
    if (token.length > this.tokens.maxTokenBytes) throw new InvalidTokenError('too_large', `token of ${token.length} bytes`);
    if (this.cache === null) return null;
    const hit = this.cache.get(token);
    if (hit === undefined) return null;
    // Never past `exp`, never after the verifying key left the issuer's key set (rotation,
    // removal) or the set itself became unusable (older than jwksMaxStaleMs).
    if (hit.principal.expiresAt > this.clock() && hit.keys.stillValid(hit.key)) return hit.principal;
    this.cache.delete(token);
    return null;
  }

  private async verifyUncached(token: string): Promise<Principal> {
    // 1. Exactly three non-empty base64url parts.
    const dot1 = token.indexOf('.');
    const dot2 = dot1 < 0 ? -1 : token.indexOf('.', dot1 + 1);
    if (dot2 < 0 || token.indexOf('.', dot2 + 1) >= 0) throw new InvalidTokenError('malformed', 'not three parts');
    const headerPart = token.slice(0, dot1);
    const payloadPart = token.slice(dot1 + 1, dot2);
    const sigPart = token.slice(dot2 + 1);
    if (!isB64url(headerPart) || !isB64url(payloadPart) || !isB64url(sigPart)) {
      throw new InvalidTokenError('malformed', 'part is empty or not base64url');
    }
    const header = headerFields(headerPart);
    if (header === null) throw new InvalidTokenError('malformed', 'header is not a JSON object');
    const payload = decodeJsonObject(payloadPart);
    if (payload === null) throw new InvalidTokenError('malformed', 'payload is not a JSON object');

    // 2. The issuer, by exact `iss`; the algorithm from its allow-list; no extensions.
    const iss = payload.iss;
    const issuer = typeof iss === 'string' ? this.issuers.get(iss) : undefined;
    if (issuer === undefined) throw new InvalidTokenError('unknown_issuer', 'iss is not a configured issuer');
    const alg = header.alg;
    if (typeof alg !== 'string' || !issuer.algorithms.has(alg)) throw new InvalidTokenError('alg', 'alg not allowed for issuer');
    const spec = ALGS[alg]!;
    // We implement no JWS extensions, so any `crit` is one we do not understand (RFC 7515 §4.1.11).
    if (header.crit) throw new InvalidTokenError('crit', 'crit header present');
    // jku, x5u, jwk, x5c are deliberately never read: keys come only from the issuer's JWKS.
    const kid = header.kid;
    if (kid !== undefined && typeof kid !== 'string') throw new InvalidTokenError('malformed', 'kid is not a string');

    // 3. Key and signature over the ASCII bytes of header.payload.
    const candidates = await issuer.keys.keysFor(alg, kid);
    const data = Buffer.from(token.slice(0, dot2), 'latin1');
    const sig = Buffer.from(sigPart, 'base64url');
    let key: KeyEntry | undefined;
    for (const c of candidates) {
      if (c.kty === spec.kty && await signatureOk(spec, c, data, sig)) { key = c; break; }
    }
    if (key === undefined) throw new InvalidTokenError('signature', 'signature does not verify');

    // 4. Claims, by jose.
    const claims = this.validateClaims(issuer, payloadPart);
    const principal = principalFromClaims(claims, token);

    // 5. Cache until exp (checked on every hit) or until `key` leaves the key set.
    if (this.cache !== null && principal.expiresAt > this.clock()) {
      this.cache.set(token, { principal, key, keys: issuer.keys });
    }
    return principal;
  }

  /**
   * jose's claim-set checks (iss, aud, exp, nbf, iat, presence) on an already verified payload.
   *
   * Why this is safe: the signature was verified above over the token's ORIGINAL header and
   * payload. Here the same payload segment, byte for byte, is wrapped in an unsecured JWT
   * (`{"alg":"none"}` header, empty signature) only because UnsecuredJWT.decode is the jose
   * export that runs validateClaimsSet without a key. Nothing here decides authenticity; an
   * attacker's `alg: none` token never gets here (its alg is not in any allow-list, and it has
   * no verifying key). `maxTokenAge` is effectively infinite: it is set because jose rejects an
   * `iat` in the future (beyond clockTolerance) only when maxTokenAge is given.
   */
  private validateClaims(issuer: IssuerRuntime, payloadPart: string): JWTPayload {
    try {
      return UnsecuredJWT.decode(`${NONE_HEADER}.${payloadPart}.`, {
        issuer: issuer.config.issuer,
        audience: issuer.audiences,
        clockTolerance: this.tokens.clockToleranceSec,
        requiredClaims: REQUIRED_CLAIMS,
        maxTokenAge: NO_MAX_AGE,
        currentDate: new Date(this.clock()),
      }).payload;
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) {
        throw new InvalidTokenError(err.claim === 'exp' ? 'expired' : `claim:${err.claim}`, err.message);
      }
      if (err instanceof joseErrors.JWTClaimValidationFailed) {
        throw new InvalidTokenError(`claim:${err.claim}`, err.message);
      }
      if (err instanceof joseErrors.JOSEError) throw new InvalidTokenError('malformed', err.message);
      throw err;
    }
  }

  readiness(): Readiness {
    const issuers = [...this.issuers.values()].map((i) => i.keys.status());
    return { ready: issuers.every((i) => i.ready), issuers };
  }

  /** Fetch every issuer's keys once (in parallel). Never throws; failures show in readiness(). */
  async warmUp(): Promise<void> {
    await Promise.all([...this.issuers.values()].map((i) => i.keys.refresh()));
  }

  close(): void {
    for (const i of this.issuers.values()) i.keys.close();
    this.cache?.clear();
  }
}
