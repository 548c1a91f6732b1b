// OpenID Connect Back-Channel Logout 1.0: the IdP POSTs a signed logout_token naming an IdP
// session (sid) or a user (sub); every gateway session of it ends, on every replica (through
// revocations.ts). The token is checked as §2.6 asks: signature by the issuer's keys (the
// verifier's key sets and policy), iss, aud (the login project's client id), iat and exp, the
// logout event, sid and/or sub, no nonce, and a jti seen for the first time.
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { newOutcome } from '../http/respond.js';
import type { StateHolder } from '../state.js';
import { LRUCache } from 'lru-cache';
import { decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { Logger } from 'pino';
import type { KeyObject } from 'node:crypto';
import type { GatewayConfig, LoginProjectConfig } from '../config/types.js';
import type { Clock } from '../clock.js';
import { InvalidTokenError, LogoutTokenError, NotFoundError, PayloadTooLargeError } from '../errors.js';
import type { TokenVerifier } from '../token/verify.js';
import type { SharedRedis } from '../shared/redis.js';
import type { Revocations } from './revocations.js';

export const LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
export const BACKCHANNEL_PATH = '/auth/backchannel-logout';
/** Logout tokens issued longer ago than this are refused (and their jti need not be kept longer). */
export const MAX_TOKEN_AGE_SEC = 600;
/** A form with one JWT in it; anything larger is not a logout request. */
const MAX_BODY_BYTES = 16 * 1024;
const MAX_JTI_CHARS = 256;

/** Logout-token ids already used: in the shared redis when configured, else in this process. */
export interface JtiStore {
  /** true the first time `key` is seen within `ttlMs`. */
  firstUse(key: string, ttlMs: number): Promise<boolean>;
}

export function createJtiStore(redis: SharedRedis | null): JtiStore {
  if (redis !== null) return { firstUse: (key, ttlMs) => redis.set(`${redis.prefix}jti:${key}`, '1', ttlMs, true) };
  const seen = new LRUCache<string, true>({ max: 100_000, ttlAutopurge: false });
  return {
    async firstUse(key, ttlMs) {
      if (seen.has(key)) return false;
      seen.set(key, true, { ttl: Math.max(1, Math.ceil(ttlMs)) });
      return true;
    },
  };
}

export interface LogoutRequest {
  /** Login projects whose sessions end (their issuer and client id match the token). */
  readonly projects: readonly string[];
  readonly sid: string | null;
  readonly sub: string | null;
}

/** What validating a logout token needs (from the current gateway state). */
export interface BackchannelDeps {
  readonly config: GatewayConfig;
  readonly verifier: TokenVerifier;
  readonly jti: JtiStore;
  readonly clock: Clock;
}

const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);

/** Checks a logout token; throws LogoutTokenError (400) or a 503 when the issuer's keys cannot be had. */
export async function validateLogoutToken(token: string, deps: BackchannelDeps): Promise<LogoutRequest> {
  const { config, verifier, clock } = deps;
  let alg: unknown, kid: unknown, typ: unknown, iss: unknown;
  try {
    ({ alg, kid, typ } = decodeProtectedHeader(token));
    ({ iss } = decodeJwt(token));
  } catch {
    throw new LogoutTokenError('not a JWT');
  }
  const projects = Object.values(config.login?.projects ?? {}).filter((p) => p.issuer === iss);
  if (typeof iss !== 'string' || projects.length === 0) throw new LogoutTokenError('iss is not the issuer of a login project');
  if (typeof alg !== 'string' || (kid !== undefined && typeof kid !== 'string')) throw new LogoutTokenError('malformed header');
  // Explicit typing (§2.4) when the IdP uses it; an access or ID token type is never a logout token.
  if (typ !== undefined && !(typeof typ === 'string' && /^(application\/)?logout\+jwt$/i.test(typ))) throw new LogoutTokenError('typ is not logout+jwt');
  let keys: readonly KeyObject[] | null;
  try {
    keys = await verifier.issuerKeys(iss, alg, kid);
  } catch (err) {
    if (err instanceof InvalidTokenError) throw new LogoutTokenError(`no key: ${err.reason}`);
    throw err; // keys unavailable: 503, the IdP may retry
  }
  if (keys === null || keys.length === 0) throw new LogoutTokenError('alg not allowed for the issuer');
  const payload = await verified(token, keys, {
    issuer: iss, audience: [...new Set(projects.map((p) => p.clientId))], algorithms: [alg],
    currentDate: new Date(clock()), clockTolerance: config.tokens.clockToleranceSec,
    maxTokenAge: MAX_TOKEN_AGE_SEC, requiredClaims: ['iat', 'exp', 'jti', 'events'],
  });

  const events = payload.events;
  const event = events !== null && typeof events === 'object' && !Array.isArray(events) ? (events as Record<string, unknown>)[LOGOUT_EVENT] : undefined;
  if (event === null || typeof event !== 'object' || Array.isArray(event)) throw new LogoutTokenError('events has no back-channel logout event');
  if (Object.hasOwn(payload, 'nonce')) throw new LogoutTokenError('nonce present (an ID token, not a logout token)');
  const sid = str(payload.sid);
  const sub = str(payload.sub);
  if (sid === null && sub === null) throw new LogoutTokenError('neither sid nor sub');
  const jti = str(payload.jti);
  if (jti === null || jti.length > MAX_JTI_CHARS) throw new LogoutTokenError('jti missing or too long');

  const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
  const matching: LoginProjectConfig[] = projects.filter((p) => aud.includes(p.clientId));
  // Remembered while the token could still be accepted: until exp or the age limit, whichever is first.
  const tolerance = config.tokens.clockToleranceSec;
  const until = Math.min(payload.exp!, payload.iat! + MAX_TOKEN_AGE_SEC) + tolerance;
  if (!(await deps.jti.firstUse(`${iss} ${jti}`, until * 1000 - clock()))) throw new LogoutTokenError('jti replayed');
  return { projects: matching.map((p) => p.name), sid, sub };
}

async function verified(token: string, keys: readonly KeyObject[], opts: Parameters<typeof jwtVerify>[2]): Promise<JWTPayload> {
  for (const key of keys) {
    try {
      return (await jwtVerify(token, key, opts)).payload;
    } catch (err) {
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) continue;
      if (err instanceof joseErrors.JWTClaimValidationFailed || err instanceof joseErrors.JWTExpired) throw new LogoutTokenError(`claim ${err.claim}: ${err.reason}`);
      if (err instanceof joseErrors.JOSEError) throw new LogoutTokenError(err.code);
      throw err;
    }
  }
  throw new LogoutTokenError('signature does not verify');
}

/** The revocation keys a logout request ends: the IdP session when named, else every session of the user. */
export function logoutKeys(r: LogoutRequest): string[] {
  return r.projects.map((p) => (r.sid !== null ? `sid:${p}:${r.sid}` : `sub:${p}:${r.sub!}`));
}

/** The form body, read by hand: the gateway has no body parsers (bodies stream to upstreams). */
async function readForm(request: FastifyRequest): Promise<URLSearchParams> {
  const type = (request.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw new LogoutTokenError('not a form (application/x-www-form-urlencoded)');
  if (Number(request.headers['content-length'] ?? 0) > MAX_BODY_BYTES) throw new PayloadTooLargeError();
  const stream = (request.body ?? request.raw) as Readable;
  const chunks: Buffer[] = [];
  let size = 0;
  // The rest of an oversized body is left to node, which discards it after the answer.
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new PayloadTooLargeError();
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

export function registerBackchannelLogout(app: FastifyInstance, deps: { holder: StateHolder; clock: Clock; logger: Logger }): void {
  app.post(BACKCHANNEL_PATH, async (request, reply) => {
    newOutcome(request, BACKCHANNEL_PATH).path = BACKCHANNEL_PATH;
    const state = deps.holder.current;
    const revocations: Revocations | null = state.shared.revocations;
    if (state.config.login === null || revocations === null) throw new NotFoundError();
    void reply.header('cache-control', 'no-store');
    const form = await readForm(request);
    const tokens = form.getAll('logout_token');
    if (tokens.length !== 1 || tokens[0] === '') throw new LogoutTokenError('exactly one logout_token is required');
    const r = await validateLogoutToken(tokens[0]!, { config: state.config, verifier: state.verifier, jti: state.shared.jti, clock: deps.clock });
    // Redis unreachable: 503 (the revocation holds on this replica only; the IdP may retry).
    await revocations.revoke(logoutKeys(r));
    request.outcome.decision = 'logout';
    request.outcome.sub = r.sub;
    deps.logger.info({ projects: r.projects, by: r.sid !== null ? 'sid' : 'sub', sub: r.sub }, 'back-channel logout');
    return reply.code(200).send();
  });
}
