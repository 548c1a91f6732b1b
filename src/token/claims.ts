// The JWT claim-set checks of jose (jose 6, `validateClaimsSet` in lib/jwt_claims_set.js), for
// the options the verifier uses, on a payload decoded once by node's native base64url.
//
// Why not jose's own entry: the only public one that checks claims without a key,
// UnsecuredJWT.decode, decodes base64 in JavaScript (atob, a byte loop, a TextDecoder) and
// parses an `alg: none` header on every call: ~5 µs of a first-seen token's ~35 on one core,
// where the rules themselves cost well under 1. The rules are jose's, in jose's order, with
// jose's error classes and messages, so a refusal reads the same; test/token/claims.test.ts
// holds this module to jose's own decode over a corpus of claim sets.
import { isAscii } from 'node:buffer';
import { errors, type JWTPayload } from 'jose';

/** What a token's claims must satisfy: jose's options, minus what the verifier never sets. */
export interface ClaimRules {
  /** Accepted `iss` values. */
  readonly issuers: readonly string[];
  /** Accepted `aud` values (one must match); undefined: `aud` is neither required nor checked. */
  readonly audiences: readonly string[] | undefined;
  /** Claims that must be present, in the order jose checks them (see claimRules). */
  readonly present: readonly string[];
  /** Seconds of clock skew allowed for exp, nbf and iat (≥ 0). */
  readonly clockTolerance: number;
}

/**
 * Rules as jose builds them from `{ requiredClaims, issuer, audience, clockTolerance,
 * maxTokenAge }`; with a maxTokenAge (the verifier sets one so that a future `iat` is refused,
 * and `iat` is then required) and no `subject` option.
 */
export function claimRules(opts: { requiredClaims: readonly string[]; issuers: readonly string[]; audiences?: readonly string[]; clockTolerance: number }): ClaimRules {
  // jose: [...requiredClaims, 'iat' (maxTokenAge), 'aud' (audience), 'iss' (issuer)], reversed, deduplicated.
  const order = [...opts.requiredClaims, 'iat'];
  if (opts.audiences !== undefined) order.push('aud');
  order.push('iss');
  return Object.freeze({
    issuers: Object.freeze([...opts.issuers]),
    audiences: opts.audiences === undefined ? undefined : Object.freeze([...opts.audiences]),
    present: Object.freeze([...new Set(order.reverse())]),
    clockTolerance: opts.clockTolerance,
  });
}

/** jose's strict decoder: invalid UTF-8 fails; a leading BOM is dropped. */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const NOT_AN_OBJECT = 'JWT Claims Set must be a top-level JSON object';

/**
 * A payload segment (already checked to be base64url) → its claim set, a JSON object; else
 * jose's JWTInvalid. ASCII, the usual case, needs no UTF-8 decoder.
 */
export function decodeClaims(payloadPart: string): JWTPayload {
  const bytes = Buffer.from(payloadPart, 'base64url');
  let claims: unknown;
  try {
    claims = JSON.parse(isAscii(bytes) ? bytes.toString('latin1') : strictUtf8.decode(bytes));
  } catch {
    throw new errors.JWTInvalid(NOT_AN_OBJECT);
  }
  // JSON.parse gives plain objects, arrays or primitives: jose's isObject is this.
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) throw new errors.JWTInvalid(NOT_AN_OBJECT);
  return claims as JWTPayload;
}

function unexpected(claims: JWTPayload, claim: string): never {
  throw new errors.JWTClaimValidationFailed(`unexpected "${claim}" claim value`, claims, claim, 'check_failed');
}

/** jose's validateNumericDate: absent → undefined (`iat`, always required, is present by now); present → a number. */
function numericDate(claims: JWTPayload, claim: 'iat' | 'nbf' | 'exp'): number | undefined {
  const value = claims[claim];
  if (value === undefined) return undefined;
  if (typeof value !== 'number') throw new errors.JWTClaimValidationFailed(`"${claim}" claim must be a number`, claims, claim, 'invalid');
  return value;
}

/** Throws jose's JWTClaimValidationFailed or JWTExpired for the first rule `claims` breaks at `now` (seconds). */
export function checkClaims(claims: JWTPayload, rules: ClaimRules, now: number): void {
  for (let i = 0; i < rules.present.length; i++) {
    const claim = rules.present[i]!;
    if (!Object.hasOwn(claims, claim)) throw new errors.JWTClaimValidationFailed(`missing required "${claim}" claim`, claims, claim, 'missing');
  }
  if (!rules.issuers.includes(claims.iss as string)) unexpected(claims, 'iss');
  if (rules.audiences !== undefined) {
    const aud = claims.aud;
    const audiences = rules.audiences;
    const ok = typeof aud === 'string' ? audiences.includes(aud) : Array.isArray(aud) && audiences.some((a) => aud.includes(a));
    if (!ok) unexpected(claims, 'aud');
  }
  const tolerance = rules.clockTolerance;
  const iat = numericDate(claims, 'iat')!;
  const nbf = numericDate(claims, 'nbf');
  if (nbf !== undefined && nbf > now + tolerance) {
    throw new errors.JWTClaimValidationFailed('"nbf" claim timestamp check failed', claims, 'nbf', 'check_failed');
  }
  const exp = numericDate(claims, 'exp');
  if (exp !== undefined && exp <= now - tolerance) throw new errors.JWTExpired('"exp" claim timestamp check failed', claims, 'exp', 'check_failed');
  // jose's maxTokenAge check with no maximum: only an `iat` in the future fails. (An `iat` of
  // -Infinity, past any maximum, fails as too old.)
  const age = now - iat;
  if (age - tolerance > Number.MAX_SAFE_INTEGER) {
    throw new errors.JWTExpired('"iat" claim timestamp check failed (too far in the past)', claims, 'iat', 'check_failed');
  }
  if (age < -tolerance) {
    throw new errors.JWTClaimValidationFailed('"iat" claim timestamp check failed (it should be in the past)', claims, 'iat', 'check_failed');
  }
}
