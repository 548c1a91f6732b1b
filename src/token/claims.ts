// JWT claim-set validation of an already signature-verified payload.
//
// validateClaims() is the hot-path implementation: a line-by-line transcription of jose's
// validateClaimsSet (jose 6, lib/jwt_claims_set.js) for the one option set the gateway uses
// (below), working on the payload object the verifier has already decoded instead of decoding
// the segment a second time. joseValidateClaims() runs jose itself (UnsecuredJWT.decode) with
// the same options; it is the reference: test/token/claims-diff.test.ts runs both over the
// forged-claim tables and random claim sets and requires the same outcome (accepted, or the
// same InvalidTokenError reason) every time.
//
// The options, fixed:
//   issuer: the issuer's exact `iss`; audience: the issuer's audiences (at least one must be
//   in `aud`); requiredClaims: aud exp iat iss sub; clockTolerance: tokens.clockToleranceSec;
//   maxTokenAge: effectively infinite (set only so that an `iat` in the future beyond the
//   tolerance is refused); currentDate: the injected clock; no `typ` and no `subject` option.
import { UnsecuredJWT, errors as joseErrors, type JWTPayload } from 'jose';
import { InvalidTokenError } from '../errors.js';

export interface ClaimOptions {
  /** The exact `iss` required. */
  readonly issuer: string;
  /** At least one of these must be in `aud`. */
  readonly audiences: readonly string[];
  /** Seconds (≥ 0). */
  readonly clockToleranceSec: number;
  /** Milliseconds since the epoch. */
  readonly now: number;
}

/** Effectively no maximum age; set only so that jose checks a future `iat`. */
const NO_MAX_AGE = Number.MAX_SAFE_INTEGER;
const REQUIRED_CLAIMS = ['aud', 'exp', 'iat', 'iss', 'sub'];
/**
 * jose's presence-check order for these options: requiredClaims plus iat (maxTokenAge), aud
 * (audience), iss (issuer), reversed, first occurrence kept.
 */
const PRESENCE_ORDER = [...new Set([...REQUIRED_CLAIMS, 'iat', 'aud', 'iss'].reverse())];
/** base64url('{"alg":"none"}'): the header of the unsecured JWT handed to jose. */
const NONE_HEADER = Buffer.from('{"alg":"none"}').toString('base64url');

function failed(claim: string, message: string): never {
  throw new InvalidTokenError(`claim:${claim}`, message);
}

function numericDate(claims: Record<string, unknown>, claim: string, required: boolean): number | undefined {
  const value = claims[claim];
  if (value === undefined && !required) return undefined;
  if (typeof value !== 'number') failed(claim, `"${claim}" claim must be a number`);
  return value;
}

/**
 * The claim checks on a decoded payload (a plain JSON object). Returns the payload; throws
 * InvalidTokenError with jose's claim as reason (`claim:<name>`, or `expired` for `exp`).
 */
export function validateClaims(claims: Record<string, unknown>, opts: ClaimOptions): JWTPayload {
  for (const claim of PRESENCE_ORDER) {
    if (!Object.hasOwn(claims, claim)) failed(claim, `missing required "${claim}" claim`);
  }
  if (claims.iss !== opts.issuer) failed('iss', 'unexpected "iss" claim value');
  const aud = claims.aud;
  const audOk = typeof aud === 'string' ? opts.audiences.includes(aud)
    : Array.isArray(aud) ? opts.audiences.some((a) => aud.includes(a)) : false;
  if (!audOk) failed('aud', 'unexpected "aud" claim value');

  const tolerance = opts.clockToleranceSec;
  if (!Number.isFinite(tolerance) || tolerance < 0) throw new TypeError('Invalid clockTolerance option input');
  const now = Math.floor(opts.now / 1000);
  if (!Number.isFinite(now)) throw new TypeError('Invalid currentDate option input');
  const iat = numericDate(claims, 'iat', true)!;
  const nbf = numericDate(claims, 'nbf', false);
  if (nbf !== undefined && nbf > now + tolerance) failed('nbf', '"nbf" claim timestamp check failed');
  const exp = numericDate(claims, 'exp', false);
  if (exp !== undefined && exp <= now - tolerance) throw new InvalidTokenError('expired', '"exp" claim timestamp check failed');
  const age = now - iat;
  if (age - tolerance > NO_MAX_AGE) failed('iat', '"iat" claim timestamp check failed (too far in the past)');
  if (age < -tolerance) failed('iat', '"iat" claim timestamp check failed (it should be in the past)');
  return claims as JWTPayload;
}

/**
 * The reference: jose's own claim-set validation of the payload segment (base64url, exactly as
 * in the token), wrapped in an unsecured JWT because UnsecuredJWT.decode is the jose export that
 * runs validateClaimsSet without a key. Same options, same error mapping. Not on the hot path.
 */
export function joseValidateClaims(payloadPart: string, opts: ClaimOptions): JWTPayload {
  try {
    return UnsecuredJWT.decode(`${NONE_HEADER}.${payloadPart}.`, {
      issuer: opts.issuer,
      audience: [...opts.audiences],
      clockTolerance: opts.clockToleranceSec,
      requiredClaims: REQUIRED_CLAIMS,
      maxTokenAge: NO_MAX_AGE,
      currentDate: new Date(opts.now),
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
