// Bearer JWT verification: the hot path of every API request.
//
// Signatures are checked with node:crypto (signature.ts) against KeyObjects cached per issuer
// (keys.ts), on the event loop (batched) or on the thread pool depending on the CPUs the
// process may use (cpu-budget.ts). Claims are checked by jose's rules (claims.ts), on the one
// decode of the payload, before the signature: a token refused for its claims costs no RSA. A token that
// verifies a second time (admission.ts) is kept in an LRU, keyed by its SHA-256 and bounded in
// entries and bytes, until its `exp` or until the key that verified it goes away.
import type * as nodeCrypto from 'node:crypto';
import { errors as joseErrors, type JWTPayload } from 'jose';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../clock.js';
import type { IssuerConfig, TokensConfig } from '../config/types.js';
import { activeSpan, withSpan } from '../tracing.js';
import { InvalidTokenError, KeysUnavailableError } from '../errors.js';
import { noopMetrics, type Metrics, type VerifyOutcome } from '../metrics.js';
import type { KeyEntry } from './jwk.js';
import { IssuerKeys, type IssuerStatus } from './keys.js';
import { audienceMatches, claimMap, principalBytes, principalFromClaims, readClaim, type ClaimMap, type Principal } from './principal.js';
import { cpuBudget } from './cpu-budget.js';
import { SignatureChecker, algSpec, type SignatureMode } from './signature.js';
import { headerFields, isB64url } from './jws.js';
import { digest } from './digest.js';
import { checkClaims, claimRules, decodeClaims, type ClaimRules } from './claims.js';
import { Doorkeeper } from './admission.js';

export type { SignatureMode } from './signature.js';

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
  /** Default: 'thread-pool' when the process may use more than one CPU, else 'batched'. */
  signatures?: SignatureMode;
  /** Default CACHE_MAX_BYTES; for tests. */
  cacheMaxBytes?: number;
}

export interface Readiness {
  ready: boolean;
  issuers: IssuerStatus[];
}

const REQUIRED_CLAIMS = ['aud', 'exp', 'iat', 'iss', 'sub'];
/** For profiles whose audience is another claim (Cognito's client_id): checked after the claim rules. */
const REQUIRED_CLAIMS_NO_AUD = ['exp', 'iat', 'iss', 'sub'];

interface IssuerRuntime {
  readonly config: IssuerConfig;
  readonly algorithms: ReadonlySet<string>;
  readonly keys: IssuerKeys;
  /** The claim rules of this issuer alone. */
  readonly claimRules: ClaimRules;
  /** Where this issuer's tokens keep groups, scopes and the audience (its profile). */
  readonly claims: ClaimMap;
  /** The audience is `aud` (checked by the claim rules); false: another claim, checked in claims(). */
  readonly audIsAud: boolean;
}

interface CacheEntry {
  readonly principal: Principal;
  readonly key: KeyEntry;
  readonly keys: IssuerKeys;
}

/** A token refused for its signature: valid while `keys` still holds the key set `set`. */
interface RefusedEntry {
  readonly keys: IssuerKeys;
  readonly set: object;
}
/** Refused tokens remembered (about 150 bytes each). */
const REFUSED_ENTRIES = 1000;
/** One shared, immutable error for every remembered refusal (no stack: a 4xx GatewayError captures none). */
const REFUSED_BEFORE_ERROR = new InvalidTokenError('signature', 'signature does not verify (refused before)');

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

const NOT_THREE_PARTS = -1;
const NOT_BASE64URL = -2;

/**
 * The index of a compact JWS's second dot: exactly three non-empty base64url parts. Else
 * NOT_THREE_PARTS or NOT_BASE64URL (negative).
 */
function jwsSecondDot(token: string): number {
  const dot1 = token.indexOf('.');
  const dot2 = dot1 < 0 ? -1 : token.indexOf('.', dot1 + 1);
  if (dot2 < 0 || token.indexOf('.', dot2 + 1) >= 0) return NOT_THREE_PARTS;
  return isB64url(token.slice(0, dot1)) && isB64url(token.slice(dot1 + 1, dot2)) && isB64url(token.slice(dot2 + 1)) ? dot2 : NOT_BASE64URL;
}

export class TokenVerifier {
  private readonly issuers: ReadonlyMap<string, IssuerRuntime>;
  private readonly tokens: TokensConfig;
  private readonly clock: Clock;
  private readonly metrics: Metrics;
  private readonly cache: LRUCache<string, CacheEntry> | null;
  /** Which verified tokens the cache takes: those verified before (see admission.ts). */
  private readonly admission: Doorkeeper | null;
  /**
   * Tokens whose signature did not verify, by digest, with the key set that refused them: the
   * same token against the same keys fails the same way, so a client retrying a forged or
   * corrupted token is refused without a second RSA check. Any change of the key set voids it.
   */
  private readonly refused: LRUCache<string, RefusedEntry> | null;
  /** Where signatures are checked (see the file comment). */
  readonly signatures: SignatureMode;
  /**
   * The claim rules of all issuers at once (`iss` any configured issuer). Exact when every
   * issuer accepts the same audiences; else `sharedAudiences` is false, the audiences are the
   * union, and the issuer's own rules are applied after.
   */
  private readonly claimRules: ClaimRules;
  private readonly sharedAudiences: boolean;
  private readonly checker: SignatureChecker;

  constructor(opts: VerifierOptions) {
    this.tokens = opts.tokens;
    this.clock = opts.clock ?? systemClock;
    this.metrics = opts.metrics ?? noopMetrics;
    this.signatures = opts.signatures ?? (cpuBudget() > 1 ? 'thread-pool' : 'batched');
    this.checker = new SignatureChecker(this.signatures, opts.tokens.maxTokenBytes);
    const deps = { clock: this.clock, metrics: this.metrics, logger: opts.logger, fetch: opts.fetch };
    const clockTolerance = opts.tokens.clockToleranceSec;
    const issuers = new Map<string, IssuerRuntime>();
    let allAud = true;
    for (const config of opts.issuers) {
      const claims = claimMap(config);
      const audIsAud = claims.audience.length === 1 && claims.audience[0] === 'aud';
      allAud &&= audIsAud;
      issuers.set(config.issuer, {
        config,
        // Only asymmetric algorithms we implement; `none` and HS* can never get in.
        algorithms: new Set(config.algorithms.filter((a) => algSpec(a) !== undefined)),
        keys: new IssuerKeys(config, opts.tokens, deps),
        claimRules: audIsAud
          ? claimRules({ clockTolerance, requiredClaims: REQUIRED_CLAIMS, issuers: [config.issuer], audiences: config.audiences })
          : claimRules({ clockTolerance, requiredClaims: REQUIRED_CLAIMS_NO_AUD, issuers: [config.issuer] }),
        claims,
        audIsAud,
      });
    }
    this.issuers = issuers;
    const first = opts.issuers[0]?.audiences ?? [];
    // An issuer whose audience is another claim (Cognito) makes the shared check audience-free.
    this.sharedAudiences = allAud && opts.issuers.every((i) => sameSet(i.audiences, first));
    const allIssuers = opts.issuers.map((i) => i.issuer);
    this.claimRules = allAud
      ? claimRules({ clockTolerance, requiredClaims: REQUIRED_CLAIMS, issuers: allIssuers, audiences: [...new Set(opts.issuers.flatMap((i) => i.audiences))] })
      : claimRules({ clockTolerance, requiredClaims: REQUIRED_CLAIMS_NO_AUD, issuers: allIssuers });
    this.cache = opts.tokens.cacheSize > 0
      ? new LRUCache<string, CacheEntry>({
        max: opts.tokens.cacheSize,
        maxSize: opts.cacheMaxBytes ?? CACHE_MAX_BYTES,
        // The 32-byte key, the entry and the principal it holds.
        sizeCalculation: (e) => 96 + principalBytes(e.principal),
      })
      : null;
    this.admission = opts.tokens.cacheSize > 0 ? new Doorkeeper(opts.tokens.cacheSize) : null;
    this.refused = opts.tokens.cacheSize > 0 ? new LRUCache<string, RefusedEntry>({ max: REFUSED_ENTRIES }) : null;
  }

  /**
   * The one place a token is looked up and verified. Synchronous when the answer is known: the
   * Principal of a token verified before (still valid), or the refusal of a token that is too
   * large or whose signature failed before (returned, not thrown: the 401 path builds no promise
   * and unwinds nothing). Else the promise of the full verification, which rejects with
   * InvalidTokenError (401, with a `reason`) or KeysUnavailableError (503).
   * `unseen` runs (and may throw) only for a token not found in either cache, before anything
   * else is done with it.
   */
  check(token: string, unseen?: (token: string) => void): Principal | InvalidTokenError | Promise<Principal> {
    // Length first: nothing larger is hashed, parsed or verified.
    if (token.length > this.tokens.maxTokenBytes) return this.refusal(new InvalidTokenError('too_large', `token of ${token.length} bytes`));
    const key = this.cache === null ? null : digest(token);
    if (key !== null) {
      const hit = this.cached(key);
      if (hit !== null) {
        this.metrics.tokenVerification('cached');
        return hit;
      }
      const refused = this.refused!.get(key);
      if (refused !== undefined && refused.keys.generation === refused.set) return this.refusal(REFUSED_BEFORE_ERROR);
    }
    // A compact JWS (three base64url parts) is a token68 too: `unseen` (the token68 check) runs
    // only for a token that is not one, sparing a first-seen token a second scan of its length.
    const dot2 = jwsSecondDot(token);
    if (dot2 < 0) unseen?.(token);
    return this.verifyFresh(token, key, dot2);
  }

  /** check(), always as a promise. */
  verify(token: string): Promise<Principal> {
    let r: Principal | InvalidTokenError | Promise<Principal>;
    try {
      r = this.check(token);
    } catch (err) {
      return Promise.reject(err);
    }
    return r instanceof Promise ? r : r instanceof InvalidTokenError ? Promise.reject(r) : Promise.resolve(r);
  }

  private refusal(err: InvalidTokenError): InvalidTokenError {
    this.metrics.tokenVerification(outcomeOf(err));
    return err;
  }

  /**
   * A first-seen token: synchronous when nothing has to wait (a current key set, signatures
   * checked inline), its refusal returned (InvalidTokenError) or thrown (KeysUnavailableError);
   * else a promise.
   */
  private verifyFresh(token: string, key: string | null, dot2: number): Principal | InvalidTokenError | Promise<Principal> {
    // A span only for first-seen tokens (the crypto); no closure is built with tracing off.
    if (activeSpan() !== null) return this.settled(withSpan('verify token', async () => this.verifyUncached(token, key, dot2)));
    let r: Principal | Promise<Principal>;
    try {
      r = this.verifyUncached(token, key, dot2);
    } catch (err) {
      this.metrics.tokenVerification(outcomeOf(err));
      if (err instanceof InvalidTokenError) return err;
      throw err;
    }
    if (r instanceof Promise) return this.settled(r);
    this.metrics.tokenVerification('valid');
    return r;
  }

  /** Counts the outcome of a verification that had to wait. */
  private settled(p: Promise<Principal>): Promise<Principal> {
    return p.then(
      (principal) => { this.metrics.tokenVerification('valid'); return principal; },
      (err: unknown) => { this.metrics.tokenVerification(outcomeOf(err)); throw err; },
    );
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

  /** Throws what refuses the token; a promise only when the keys or the signature make it wait. */
  private verifyUncached(token: string, cacheKey: string | null, dot2: number): Principal | Promise<Principal> {
    // 1. Exactly three non-empty base64url parts (jwsSecondDot).
    if (dot2 < 0) throw new InvalidTokenError('malformed', dot2 === NOT_THREE_PARTS ? 'not three parts' : 'part is empty or not base64url');
    const dot1 = token.indexOf('.');
    const headerPart = token.slice(0, dot1);
    const payloadPart = token.slice(dot1 + 1, dot2);
    const sigPart = token.slice(dot2 + 1);
    const header = headerFields(headerPart);
    if (header === null) throw new InvalidTokenError('malformed', 'header is not a JSON object');

    // 2. Claims, by jose's rules, on the one decode of the payload; this also pins `iss` to a configured issuer.
    const { claims, issuer } = this.claims(payloadPart);

    // 3. The algorithm from the issuer's allow-list; no extensions.
    const alg = header.alg;
    if (typeof alg !== 'string' || !issuer.algorithms.has(alg)) throw new InvalidTokenError('alg', 'alg not allowed for issuer');
    const spec = algSpec(alg)!;
    // We implement no JWS extensions, so any `crit` is one we do not understand (RFC 7515 §4.1.11).
    if (header.crit) throw new InvalidTokenError('crit', 'crit header present');
    // jku, x5u, jwk, x5c are deliberately never read: keys come only from the issuer's JWKS.
    const kid = header.kid;
    if (kid !== undefined && typeof kid !== 'string') throw new InvalidTokenError('malformed', 'kid is not a string');

    // 4. Key and signature over the ASCII bytes of header.payload: the last check.
    const keys = issuer.keys.keysFor(alg, kid);
    const signed = (candidates: readonly KeyEntry[]): Principal | Promise<Principal> => {
      const key = this.checker.check(spec, candidates, token, dot2, sigPart);
      return key instanceof Promise
        ? key.then((found) => this.accepted(found, candidates, claims, issuer, cacheKey))
        : this.accepted(key, candidates, claims, issuer, cacheKey);
    };
    return keys instanceof Promise ? keys.then(signed) : signed(keys);
  }

  /** The principal of a token whose signature `found` verified (undefined: none did), cached. */
  private accepted(found: KeyEntry | undefined, candidates: readonly KeyEntry[], claims: JWTPayload, issuer: IssuerRuntime, cacheKey: string | null): Principal {
    if (found === undefined) {
      if (cacheKey !== null && candidates.length > 0) this.refused!.set(cacheKey, { keys: issuer.keys, set: issuer.keys.generation });
      throw new InvalidTokenError('signature', 'signature does not verify');
    }

    // 5. Cache, from its second verification, until exp (checked on every hit) or until `key`
    // leaves the key set.
    const principal = principalFromClaims(claims, issuer.claims);
    if (cacheKey !== null && principal.expiresAt > this.clock() && this.admission!.seenBefore(cacheKey)) {
      this.cache!.set(cacheKey, { principal, key: found, keys: issuer.keys });
    }
    return principal;
  }

  /**
   * jose's claim-set checks (presence, iss, aud, nbf, exp, iat: claims.ts) on the token's payload,
   * decoded once. Nothing here decides authenticity: the signature is verified next, over the
   * token's original header and payload. A future `iat` (beyond the clock tolerance) is refused,
   * as jose does when given a maximum token age.
   */
  private claims(payloadPart: string): { claims: JWTPayload; issuer: IssuerRuntime } {
    const now = Math.floor(this.clock() / 1000);
    try {
      const claims = decodeClaims(payloadPart);
      checkClaims(claims, this.claimRules, now);
      const issuer = this.issuers.get(claims.iss!)!;
      // Issuers with different audiences: the token's own issuer's rules too (only in such configs).
      if (!this.sharedAudiences) checkClaims(claims, issuer.claimRules, now);
      if (!issuer.audIsAud && !audienceMatches(readClaim(claims, issuer.claims.audience), issuer.config.audiences)) {
        throw new InvalidTokenError('claim:aud', `${issuer.claims.audience.join('.')} is not an accepted audience`);
      }
      return { claims, issuer };
    } catch (err) {
      if (err instanceof InvalidTokenError) throw err;
      return claimError(err);
    }
  }

  /**
   * The issuer's keys able to check a signature made with `alg` (and `kid`), for the other JWTs
   * it signs (back-channel logout tokens), under the same key-set policy as access tokens.
   * null: not a configured issuer, or `alg` not allowed for it. Throws like verify() does
   * (KeysUnavailableError, InvalidTokenError unknown_kid).
   */
  async issuerKeys(iss: string, alg: string, kid: string | undefined): Promise<readonly nodeCrypto.KeyObject[] | null> {
    const issuer = this.issuers.get(iss);
    const spec = algSpec(alg);
    if (issuer === undefined || spec === undefined || !issuer.algorithms.has(alg)) return null;
    return (await issuer.keys.keysFor(alg, kid)).filter((k) => k.kty === spec.kty).map((k) => k.key);
  }

  readiness(): Readiness {
    const issuers = [...this.issuers.values()].map((i) => i.keys.status());
    return { ready: issuers.every((i) => i.ready), issuers };
  }

  /**
   * For the readiness probe: fetch the keys of every issuer whose set is missing or due, but only
   * as far as the cooldown allows (a fetch in flight is joined). Never throws.
   */
  async refreshDue(): Promise<void> {
    await Promise.all([...this.issuers.values()].map((i) => i.keys.refreshIfAllowed()));
  }

  /** Fetch every issuer's keys once (in parallel), cooldown or not. Never throws; failures show in readiness(). */
  async warmUp(): Promise<void> {
    await Promise.all([...this.issuers.values()].map((i) => i.keys.refresh()));
  }

  close(): void {
    for (const i of this.issuers.values()) i.keys.close();
    this.cache?.clear();
    this.admission?.clear();
  }
}
