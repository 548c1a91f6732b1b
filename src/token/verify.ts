// Bearer JWT verification: the hot path of every API request.
//
// Signatures are checked with node:crypto.verify against KeyObjects cached per issuer (see
// keys.ts) rather than with jose's jwtVerify, which goes through WebCrypto and costs ~3× more
// per RS256 token. Where the RSA arithmetic runs depends on the CPUs the process may use
// (cpu-budget.ts): with one, inline (a thread-pool round trip costs more than it saves); with
// more, on libuv's thread pool, so another core shares it. Claims are validated by jose, on the
// one decode of the payload (see claims()), before the signature: a token refused for its claims
// costs no RSA. Verified tokens are kept in an LRU, keyed by their SHA-256 and bounded in
// entries and bytes, until their `exp` or until the key that verified them goes away.
import { constants, hash, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { TextDecoder } from 'node:util';
import { UnsecuredJWT, errors as joseErrors, type JWTClaimVerificationOptions, type JWTPayload } from 'jose';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../clock.js';
import type { IssuerConfig, TokensConfig } from '../config/types.js';
import { InvalidTokenError, KeysUnavailableError } from '../errors.js';
import { noopMetrics, type Metrics, type VerifyOutcome } from '../metrics.js';
import { IssuerKeys, type IssuerStatus, type KeyEntry } from './keys.js';
import { principalBytes, principalFromClaims, type Principal } from './principal.js';
import { cpuBudget } from './cpu-budget.js';

/** Where signature checks run: on the event loop, or on libuv's thread pool. */
export type SignatureMode = 'inline' | 'thread-pool';

/** Byte bound of the verified-token cache (estimated retained heap of its entries). */
export const CACHE_MAX_BYTES = 8 * 1024 * 1024;

export interface VerifierOptions {
  issuers: readonly IssuerConfig[];
  tokens: TokensConfig;
  clock?: Clock;
  metrics?: Metrics;
  logger?: Logger;
  /** For tests and benchmarks; used for discovery and JWKS fetches. */
  fetch?: typeof fetch;
  /** Default: 'thread-pool' when the process may use more than one CPU, else 'inline'. */
  signatures?: SignatureMode;
  /** Default CACHE_MAX_BYTES; for tests. */
  cacheMaxBytes?: number;
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
/** Effectively no maximum age; set only so that jose checks a future `iat` (see claims()). */
const NO_MAX_AGE = Number.MAX_SAFE_INTEGER;
const REQUIRED_CLAIMS = ['aud', 'exp', 'iat', 'iss', 'sub'];
/** The largest signature of any supported algorithm (RSA-16384; ES512 is 132 bytes). */
const MAX_SIG_BYTES = 2048;

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
  /** jose's claim options for this issuer alone (currentDate set per call). */
  readonly claimOptions: JWTClaimVerificationOptions;
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

/** The cache key: SHA-256 of the token (32 bytes as a one-byte string). The token itself is never kept. */
function digest(token: string): string {
  return hash('sha256', token, 'binary');
}

function keyArg(spec: AlgSpec, key: KeyObject): KeyObject | Record<string, unknown> {
  // RS*: node:crypto's default padding for an RSA KeyObject is PKCS#1 v1.5 (RSASSA-PKCS1-v1_5),
  // so the key goes in as is (no options object on the hot path). EdDSA: digest null.
  return spec.opts === null ? key : { key, ...spec.opts };
}

/**
 * The signature check on libuv's thread pool (crypto.verify with a callback): the RSA arithmetic
 * leaves the event loop, which meanwhile serves other requests. Same check, same inputs as the
 * inline one; any error means "does not verify".
 */
function signatureOkOnPool(spec: AlgSpec, entry: KeyEntry, data: Buffer, sig: Buffer): Promise<boolean> {
  if (spec.sigBytes !== undefined && sig.length !== spec.sigBytes) return Promise.resolve(false);
  return new Promise<boolean>((resolve) => {
    try {
      cryptoVerify(spec.digest, data, keyArg(spec, entry.key) as KeyObject, sig, (err, ok) => resolve(err === null && ok === true));
    } catch {
      resolve(false);
    }
  });
}

/** The signature check on the event loop: no thread hop, no promise. */
function signatureOkInline(spec: AlgSpec, entry: KeyEntry, data: Buffer, sig: Buffer): boolean {
  if (spec.sigBytes !== undefined && sig.length !== spec.sigBytes) return false;
  try {
    return cryptoVerify(spec.digest, data, keyArg(spec, entry.key) as KeyObject, sig);
  } catch {
    return false;
  }
}

function outcomeOf(err: unknown): VerifyOutcome {
  if (err instanceof KeysUnavailableError) return 'unavailable';
  if (err instanceof InvalidTokenError && err.reason === 'expired') return 'expired';
  return 'invalid';
}

/** jose's claim errors → our reasons; anything else is rethrown. */
function claimError(err: unknown): never {
  if (err instanceof joseErrors.JWTExpired) {
    throw new InvalidTokenError(err.claim === 'exp' ? 'expired' : `claim:${err.claim}`, err.message);
  }
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    // A missing or unconfigured `iss` is an unknown issuer, whatever else the claims hold.
    throw new InvalidTokenError(err.claim === 'iss' ? 'unknown_issuer' : `claim:${err.claim}`, err.message);
  }
  if (err instanceof joseErrors.JOSEError) throw new InvalidTokenError('malformed', err.message);
  throw err;
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a);
  return sa.size === new Set(b).size && b.every((x) => sa.has(x));
}

export class TokenVerifier {
  private readonly issuers: ReadonlyMap<string, IssuerRuntime>;
  private readonly tokens: TokensConfig;
  private readonly clock: Clock;
  private readonly metrics: Metrics;
  private readonly cache: LRUCache<string, CacheEntry> | null;
  /** Where signatures are checked (see the file comment). */
  readonly signatures: SignatureMode;
  /**
   * jose's claim options for all issuers at once (`iss` any configured issuer). Exact when every
   * issuer accepts the same audiences; else `sharedAudiences` is false, the audiences are the
   * union, and the issuer's own options are applied after.
   */
  private readonly claimOptions: JWTClaimVerificationOptions;
  private readonly sharedAudiences: boolean;
  /** Reused by inline checks (nothing else runs between writing and reading them). */
  private readonly dataScratch: Buffer;
  private readonly sigScratch = Buffer.allocUnsafe(MAX_SIG_BYTES);

  constructor(opts: VerifierOptions) {
    this.tokens = opts.tokens;
    this.clock = opts.clock ?? systemClock;
    this.metrics = opts.metrics ?? noopMetrics;
    this.signatures = opts.signatures ?? (cpuBudget() > 1 ? 'thread-pool' : 'inline');
    this.dataScratch = Buffer.allocUnsafe(opts.tokens.maxTokenBytes);
    const deps = { clock: this.clock, metrics: this.metrics, logger: opts.logger, fetch: opts.fetch };
    const common = { clockTolerance: opts.tokens.clockToleranceSec, requiredClaims: REQUIRED_CLAIMS, maxTokenAge: NO_MAX_AGE };
    const issuers = new Map<string, IssuerRuntime>();
    for (const config of opts.issuers) {
      issuers.set(config.issuer, {
        config,
        // Only asymmetric algorithms we implement; `none` and HS* can never get in.
        algorithms: new Set(config.algorithms.filter((a) => Object.hasOwn(ALGS, a))),
        keys: new IssuerKeys(config, opts.tokens, deps),
        claimOptions: { ...common, issuer: config.issuer, audience: [...config.audiences] },
      });
    }
    this.issuers = issuers;
    const first = opts.issuers[0]?.audiences ?? [];
    this.sharedAudiences = opts.issuers.every((i) => sameSet(i.audiences, first));
    this.claimOptions = {
      ...common,
      issuer: opts.issuers.map((i) => i.issuer),
      audience: [...new Set(opts.issuers.flatMap((i) => i.audiences))],
    };
    this.cache = opts.tokens.cacheSize > 0
      ? new LRUCache<string, CacheEntry>({
        max: opts.tokens.cacheSize,
        maxSize: opts.cacheMaxBytes ?? CACHE_MAX_BYTES,
        // The 32-byte key, the entry and the principal it holds.
        sizeCalculation: (e) => 96 + principalBytes(e.principal),
      })
      : null;
  }

  /**
   * The Principal of a valid token. Throws InvalidTokenError (401, with a `reason`) or
   * KeysUnavailableError (503: the issuer has no usable key set).
   */
  async verify(token: string): Promise<Principal> {
    try {
      // Length first: nothing larger is hashed, parsed or verified.
      if (token.length > this.tokens.maxTokenBytes) throw new InvalidTokenError('too_large', `token of ${token.length} bytes`);
      const key = this.cache === null ? null : digest(token);
      const cached = key === null ? null : this.cached(key);
      if (cached !== null) {
        this.metrics.tokenVerification('cached');
        return cached;
      }
      const principal = await this.verifyUncached(token, key);
      this.metrics.tokenVerification('valid');
      return principal;
    } catch (err) {
      this.metrics.tokenVerification(outcomeOf(err));
      throw err;
    }
  }

  /** Entries in the cache and their estimated bytes (for tests and benchmarks). */
  cacheStats(): { entries: number; bytes: number } {
    return { entries: this.cache?.size ?? 0, bytes: this.cache?.calculatedSize ?? 0 };
  }

  private cached(key: string): Principal | null {
    const hit = this.cache!.get(key);
    if (hit === undefined) return null;
    // Never past `exp`, never after the verifying key left the issuer's key set (rotation,
    // removal) or the set itself became unusable (older than jwksMaxStaleMs).
    if (hit.principal.expiresAt > this.clock() && hit.keys.stillValid(hit.key)) return hit.principal;
    this.cache!.delete(key);
    return null;
  }

  private async verifyUncached(token: string, cacheKey: string | null): Promise<Principal> {
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

    // 2. Claims, by jose, on the one decode of the payload; it also pins `iss` to a configured issuer.
    const { claims, issuer } = this.claims(payloadPart);

    // 3. The algorithm from the issuer's allow-list; no extensions.
    const alg = header.alg;
    if (typeof alg !== 'string' || !issuer.algorithms.has(alg)) throw new InvalidTokenError('alg', 'alg not allowed for issuer');
    const spec = ALGS[alg]!;
    // We implement no JWS extensions, so any `crit` is one we do not understand (RFC 7515 §4.1.11).
    if (header.crit) throw new InvalidTokenError('crit', 'crit header present');
    // jku, x5u, jwk, x5c are deliberately never read: keys come only from the issuer's JWKS.
    const kid = header.kid;
    if (kid !== undefined && typeof kid !== 'string') throw new InvalidTokenError('malformed', 'kid is not a string');

    // 4. Key and signature over the ASCII bytes of header.payload: the last check.
    const candidates = await issuer.keys.keysFor(alg, kid);
    const key = this.signature(spec, candidates, token, dot2, sigPart);
    const found = key instanceof Promise ? await key : key;
    if (found === undefined) throw new InvalidTokenError('signature', 'signature does not verify');

    // 5. Cache until exp (checked on every hit) or until `key` leaves the key set.
    const principal = principalFromClaims(claims);
    if (cacheKey !== null && principal.expiresAt > this.clock()) {
      this.cache!.set(cacheKey, { principal, key: found, keys: issuer.keys });
    }
    return principal;
  }

  /** The candidate key whose signature verifies, if any. Inline: into reused buffers. */
  private signature(spec: AlgSpec, candidates: readonly KeyEntry[], token: string, dot2: number, sigPart: string): KeyEntry | undefined | Promise<KeyEntry | undefined> {
    if (this.signatures === 'inline') {
      const data = this.dataScratch.subarray(0, this.dataScratch.write(token, 0, dot2, 'latin1'));
      if (sigPart.length > (MAX_SIG_BYTES * 4) / 3 + 4) return undefined;
      const sig = this.sigScratch.subarray(0, this.sigScratch.write(sigPart, 'base64url'));
      for (const c of candidates) if (c.kty === spec.kty && signatureOkInline(spec, c, data, sig)) return c;
      return undefined;
    }
    const data = Buffer.from(token.slice(0, dot2), 'latin1');
    const sig = Buffer.from(sigPart, 'base64url');
    return (async () => {
      for (const c of candidates) if (c.kty === spec.kty && await signatureOkOnPool(spec, c, data, sig)) return c;
      return undefined;
    })();
  }

  /**
   * jose's claim-set checks (iss, aud, exp, nbf, iat, presence) on the token's payload.
   *
   * Why this is safe: nothing here decides authenticity; the signature is verified next, over
   * the token's ORIGINAL header and payload. The payload segment, byte for byte, is wrapped in
   * an unsecured JWT (`{"alg":"none"}` header, empty signature) only because
   * UnsecuredJWT.decode is the jose export that runs its claim validation without a key; its
   * decode is the only one of the payload. An attacker's `alg: none` token never verifies (its
   * alg is not in any allow-list, and it has no verifying key). `maxTokenAge` is effectively
   * infinite: it is set because jose rejects an `iat` in the future (beyond clockTolerance) only
   * when maxTokenAge is given.
   */
  private claims(payloadPart: string): { claims: JWTPayload; issuer: IssuerRuntime } {
    const unsecured = `${NONE_HEADER}.${payloadPart}.`;
    const currentDate = new Date(this.clock());
    try {
      const claims = UnsecuredJWT.decode(unsecured, { ...this.claimOptions, currentDate }).payload;
      const issuer = this.issuers.get(claims.iss!)!;
      // Issuers with different audiences: the token's own issuer's (a second decode, only in such configs).
      if (!this.sharedAudiences) UnsecuredJWT.decode(unsecured, { ...issuer.claimOptions, currentDate });
      return { claims, issuer };
    } catch (err) {
      return claimError(err);
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
