// JWT claim-set validation of an already signature-verified token, by jose (validateClaimsSet
// through UnsecuredJWT.decode) with the gateway's fixed options:
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
/** base64url('{"alg":"none"}'): the header of the unsecured JWT handed to jose. */
const NONE_HEADER = Buffer.from('{"alg":"none"}').toString('base64url');

/**
 * jose's own claim-set validation of the payload segment (base64url, exactly as in the token),
 * wrapped in an unsecured JWT because UnsecuredJWT.decode is the jose export that runs
 * validateClaimsSet without a key. Call it only after the signature has been verified.
 */
export function validateClaims(payloadPart: string, opts: ClaimOptions): JWTPayload {
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
