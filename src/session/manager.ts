// Sessions on the request path: read the session cookie, keep the access token fresh (one
// refresh per session however many requests wait), turn the session into the same Principal a
// bearer token gives, and write or clear the cookies. The stores and the cookie crypto live in
// store.ts and seal.ts; the /auth/* endpoints in routes.ts.
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { LoginConfig } from '../config/types.js';
import type { Clock } from '../clock.js';
import type { Metrics } from '../metrics.js';
import { GatewayError } from '../errors.js';
import { isAuthenticationFailure } from '../errors.js';
import type { Principal } from '../token/principal.js';
import type { TokenVerifier } from '../token/verify.js';
import { joinCookie } from './chunks.js';
import { clearCookie, isAmbiguous, parseCookies, writeCookie, type CookieNames } from './cookies.js';
import { describe, isRejection, type LoginClient, type Tokens } from './oidc.js';
import { newSessionId, type Session, type SessionStore } from './store.js';
import type { RefreshCoordinator, RefreshOutcome } from './refresh-lock.js';
import type { Revocations } from './revocations.js';

export interface SessionAuth {
  readonly session: Session;
  readonly principal: Principal;
  /** Set-Cookie lines to send (the session was refreshed or touched), or null. */
  readonly setCookies: string[] | null;
}

/** What authenticate() found: a usable session, or none (with cookies to clear, if any). */
export type SessionResult = SessionAuth | { readonly session: null; readonly setCookies: string[] | null };

export interface SessionManagerDeps {
  readonly login: LoginConfig;
  readonly names: CookieNames;
  readonly store: SessionStore;
  readonly clients: ReadonlyMap<string, LoginClient>;
  readonly verifier: TokenVerifier;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Ended sessions (logout, back-channel logout), shared by the replicas when redis is. */
  readonly revocations: Revocations;
  /** One refresh per session across replicas; null: one replica (in-process single flight only). */
  readonly coordinator: RefreshCoordinator | null;
}

/**
 * A store that is still being created (redis connects asynchronously): every call waits for it.
 * `ready` rejects when it cannot be created, so listen() fails the start with the reason.
 */
export function deferredStore(creating: Promise<SessionStore>, kind: SessionStore['kind']): SessionStore & { ready: Promise<void> } {
  const ready = creating.then(() => undefined);
  ready.catch(() => { /* reported by listen() and by each call */ });
  return {
    kind,
    ready,
    save: async (s) => (await creating).save(s),
    load: async (v, now) => (await creating).load(v, now),
    revoke: async (s) => (await creating).revoke(s),
    close: async () => { await creating.then((st) => st.close(), () => undefined); },
  };
}

/** A refresh's outcome: new tokens, refused by the IdP (the session ends), or the IdP unreachable. */
type Refreshed = { session: Session; cookie: string } | 'ended' | 'unavailable';

export class SessionManager {
  readonly names: CookieNames;
  readonly store: SessionStore;
  private readonly deps: SessionManagerDeps;
  private readonly idleMs: number;
  /** Rewrite the cookie (idle timeout) at most this often per session. */
  private readonly touchMs: number;
  private readonly inflight = new Map<string, Promise<Refreshed>>();
  /**
   * Refresh results by session id + the old token, briefly: requests that were already on
   * their way with the old cookie reuse the new tokens instead of refreshing again.
   */
  private readonly recent = new LRUCache<string, { session: Session; cookie: string }>({ max: 10_000, ttl: 60_000 });

  constructor(deps: SessionManagerDeps) {
    this.deps = deps;
    this.names = deps.names;
    this.store = deps.store;
    this.idleMs = deps.login.idleTimeoutSec * 1000;
    this.touchMs = Math.min(60_000, this.idleMs / 4);
  }

  cookies(header: string | string[] | undefined): Record<string, string> {
    return parseCookies(header);
  }

  /**
   * For requests that do not read the session (public routes, bearer-only routes, a bearer token
   * presented): the lines clearing the session cookie when it came more than once, else null.
   * A Cookie header without the session cookie's name is not parsed (one substring check).
   */
  clearIfAmbiguous(header: string | string[] | undefined): string[] | null {
    if (header === undefined) return null;
    const name = this.names.session;
    if (typeof header === 'string' ? !header.includes(name) : !header.some((h) => h.includes(name))) return null;
    const cookies = parseCookies(header);
    return isAmbiguous(name, cookies) ? clearCookie(this.names, name, cookies) : null;
  }

  /** The session in these cookies, or null (absent, tampered, expired, revoked). */
  async read(cookies: Readonly<Record<string, string>>): Promise<Session | null> {
    if (isAmbiguous(this.names.session, cookies)) return null;
    const value = joinCookie(this.names.session, cookies);
    if (value === null) return null;
    const s = await this.store.load(value, this.deps.clock());
    return s === null || this.deps.revocations.isRevoked(s) ? null : s;
  }

  /**
   * The session for a request to a route of `project` (null: any project), refreshed if its
   * access token is about to expire, as a Principal verified like a bearer token.
   */
  async authenticate(cookies: Readonly<Record<string, string>>, project: string | null): Promise<SessionResult> {
    // Two session cookies of one name: no session, whichever might be ours; both are cleared.
    if (isAmbiguous(this.names.session, cookies)) return { session: null, setCookies: clearCookie(this.names, this.names.session, cookies) };
    const value = joinCookie(this.names.session, cookies);
    if (value === null) return { session: null, setCookies: null };
    const now = this.deps.clock();
    let session = await this.store.load(value, now);
    if (session !== null && this.deps.revocations.isRevoked(session)) session = null;
    if (session === null) return { session: null, setCookies: clearCookie(this.names, this.names.session, cookies) };
    if (project !== null && session.project !== project) return { session: null, setCookies: null };

    let cookie: string | null = null;
    if (session.accessTokenExp * 1000 - now <= this.deps.login.refreshBeforeSec * 1000) {
      const refreshed = session.refreshToken === null ? 'unavailable' : await this.refresh(session);
      if (refreshed === 'ended') return { session: null, setCookies: await this.end(session, cookies) };
      if (refreshed !== 'unavailable') ({ session, cookie } = refreshed);
      else if (session.accessTokenExp * 1000 <= now) return { session: null, setCookies: await this.end(session, cookies) };
    }
    let principal: Principal;
    try {
      principal = await this.deps.verifier.verify(session.accessToken);
    } catch (err) {
      if (err instanceof GatewayError && isAuthenticationFailure(err)) {
        this.deps.logger.info({ project: session.project, sub: session.sub, reason: err.detail }, 'session token no longer valid');
        return { session: null, setCookies: await this.end(session, cookies) };
      }
      throw err;
    }
    if (cookie === null && now - session.lastSeenAt >= this.touchMs) {
      session = { ...session, lastSeenAt: now };
      cookie = await this.store.save(session);
    }
    if (principal.email === null && session.email !== null) principal = Object.freeze({ ...principal, email: session.email });
    return { session, principal, setCookies: cookie === null ? null : this.write(cookie, session, cookies) };
  }

  /** A new session after a login (a new id every time: no fixation). */
  async establish(project: string, tokens: Tokens, principal: Principal, cookies: Readonly<Record<string, string>>): Promise<{ session: Session; setCookies: string[] }> {
    const now = this.deps.clock();
    const claims = tokens.claims ?? {};
    const str = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
    const session: Session = {
      id: newSessionId(),
      project,
      sub: principal.sub,
      name: str(claims.name) ?? str(claims.preferred_username),
      email: principal.email ?? str(claims.email),
      groups: principal.groups,
      accessToken: tokens.accessToken,
      accessTokenExp: Math.floor(principal.expiresAt / 1000),
      refreshToken: tokens.refreshToken,
      // Nothing reads the ID token after the login (logout names the client, not the token): it is
      // not kept. The field stays, always null, so gateways that still expect it read new sessions.
      idToken: null,
      idpSid: str(claims.sid),
      createdAt: now,
      expiresAt: now + this.deps.login.sessionTtlSec * 1000,
      lastSeenAt: now,
    };
    const cookie = await this.store.save(session);
    return { session, setCookies: this.write(cookie, session, cookies) };
  }

  /** Revokes the session server-side and returns the lines clearing its cookies. */
  async end(session: Session | null, cookies: Readonly<Record<string, string>>): Promise<string[]> {
    if (session !== null) await this.revoke(session);
    return clearCookie(this.names, this.names.session, cookies);
  }

  /** Ends the session in the store and on every replica (a shared-state outage is logged: the store's revocation stands). */
  async revoke(session: Session): Promise<void> {
    await this.store.revoke(session);
    await this.deps.revocations.revoke([`id:${session.id}`]).catch((err: unknown) => {
      this.deps.logger.warn({ project: session.project, err: (err as Error).message }, 'session revocation not shared with the other replicas');
    });
  }

  private write(cookie: string, session: Session, cookies: Readonly<Record<string, string>>): string[] {
    const maxAge = (session.expiresAt - this.deps.clock()) / 1000;
    return writeCookie(this.names, this.names.session, cookie, maxAge, cookies);
  }

  /** One refresh per session at a time (per process here; across replicas by the coordinator). */
  private refresh(session: Session): Promise<Refreshed> {
    // Keyed by the token being replaced (its signature's tail), not its exp: two tokens can share an exp second.
    const key = `${session.id}:${session.accessToken.slice(-24)}`;
    const done = this.recent.get(key);
    if (done !== undefined) return Promise.resolve(done);
    let p = this.inflight.get(key);
    if (p === undefined) {
      const coordinator = this.deps.coordinator;
      const outcome = coordinator === null ? this.doRefresh(session) : coordinator.run(session, () => this.doRefresh(session));
      p = outcome.then(async (r): Promise<Refreshed> => {
        if (typeof r === 'string') return r;
        const saved = { session: r, cookie: await this.store.save(r) };
        this.recent.set(key, saved);
        return saved;
      }).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private async doRefresh(session: Session): Promise<RefreshOutcome> {
    const client = this.deps.clients.get(session.project);
    if (client === undefined || session.refreshToken === null) return 'ended';
    let tokens: Tokens;
    let principal: Principal;
    try {
      tokens = await client.refresh(session.refreshToken);
      principal = await this.deps.verifier.verify(tokens.accessToken);
    } catch (err) {
      if (err instanceof GatewayError && err.status >= 500) throw err;
      if (!isRejection(err)) {
        // The IdP is unreachable: the session lives on while its access token does.
        this.deps.logger.warn({ project: session.project, reason: describe(err) }, 'session refresh failed; will retry');
        this.deps.metrics.sessionRefresh(session.project, 'unavailable');
        return 'unavailable';
      }
      this.deps.logger.info({ project: session.project, sub: session.sub, reason: describe(err) }, 'session refresh refused; session ended');
      this.deps.metrics.sessionRefresh(session.project, 'refused');
      return 'ended';
    }
    if (principal.sub !== session.sub) {
      this.deps.logger.warn({ project: session.project, sub: session.sub }, 'refreshed token names another subject; session ended');
      this.deps.metrics.sessionRefresh(session.project, 'refused');
      return 'ended';
    }
    this.deps.metrics.sessionRefresh(session.project, 'ok');
    return {
      ...session,
      accessToken: tokens.accessToken,
      accessTokenExp: Math.floor(principal.expiresAt / 1000),
      refreshToken: tokens.refreshToken ?? session.refreshToken,
      idToken: null,
      groups: principal.groups,
      lastSeenAt: this.deps.clock(),
    };
  }

  async close(): Promise<void> {
    await this.store.close();
  }
}
