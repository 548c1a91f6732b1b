// Open WebSocket tunnels, for their lifecycle: a tunnel opened with a session is closed (1008)
// when that session is logged out or revoked here (sessionEnded), when it expires (checked every
// second on the gateway clock), or when a periodic re-read of its cookie finds it gone (revoked
// on another replica, in redis). All tunnels close (1001) when the gateway shuts down.
import type { Clock } from '../clock.js';
import type { Metrics } from '../metrics.js';
import type { Tunnel } from '../upstream/websocket.js';
import type { SessionStore } from '../session/store.js';

/** `store`, telling `ended` about every session it revokes (logout, a new login, a refused refresh). */
export function onRevoke(store: SessionStore, ended: (id: string) => void): SessionStore {
  return {
    kind: store.kind,
    save: (s) => store.save(s),
    load: (v, now) => store.load(v, now),
    revoke: async (s) => { await store.revoke(s); ended(s.id); },
    close: () => store.close(),
  };
}

export const POLICY_VIOLATION = 1008;
export const GOING_AWAY = 1001;

export interface SessionBinding {
  readonly id: string;
  /** Epoch ms: the session's expiry (absolute or idle, whichever is first) when the socket opened. */
  readonly expiresAt: number;
  /** Re-reads the session from its cookie: false once it is gone. Errors count as "still there". */
  readonly stillValid: () => Promise<boolean>;
}

interface Entry { readonly route: string; readonly tunnel: Tunnel; readonly session: SessionBinding | null }

export interface SocketRegistryOptions {
  clock: Clock;
  metrics: Metrics;
  /** Sweep period (default 1000 ms). */
  sweepMs?: number;
  /** How often a session socket's cookie is re-read (default 30000 ms). */
  recheckMs?: number;
}

export class SocketRegistry {
  private readonly open = new Set<Entry>();
  private timer: NodeJS.Timeout | null = null;
  private lastRecheck: number;

  constructor(private readonly opts: SocketRegistryOptions) {
    this.lastRecheck = opts.clock();
  }

  get size(): number { return this.open.size; }

  add(route: string, tunnel: Tunnel, session: SessionBinding | null): void {
    const e: Entry = { route, tunnel, session };
    this.open.add(e);
    this.opts.metrics.webSocket(route, 1);
    void tunnel.closed.then(() => {
      if (this.open.delete(e)) this.opts.metrics.webSocket(route, -1);
      if (this.open.size === 0) this.stop();
    });
    if (session !== null && this.timer === null) {
      this.timer = setInterval(() => { void this.sweep(); }, this.opts.sweepMs ?? 1000);
      this.timer.unref();
    }
  }

  /** The session was logged out or revoked in this process. */
  sessionEnded(id: string): void {
    for (const e of this.open) if (e.session?.id === id) e.tunnel.close(POLICY_VIOLATION, 'session ended');
  }

  closeAll(): void {
    for (const e of this.open) e.tunnel.close(GOING_AWAY, 'gateway shutting down');
    this.stop();
  }

  /** One pass: expired sessions now, and every recheckMs a re-read of each session's cookie. */
  async sweep(): Promise<void> {
    const now = this.opts.clock();
    const recheck = now - this.lastRecheck >= (this.opts.recheckMs ?? 30_000);
    if (recheck) this.lastRecheck = now;
    for (const e of this.open) {
      if (e.session === null) continue;
      if (now >= e.session.expiresAt) { e.tunnel.close(POLICY_VIOLATION, 'session expired'); continue; }
      if (recheck && !(await e.session.stillValid().catch(() => true))) e.tunnel.close(POLICY_VIOLATION, 'session ended');
    }
  }

  private stop(): void {
    if (this.timer !== null) { clearInterval(this.timer); this.timer = null; }
  }
}
