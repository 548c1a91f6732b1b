// The start-up line: what this gateway was configured to do, so an operator reading the log can
// tell which config it runs. Names, URLs, counts and modes only: never a secret, a header value
// or credentials inside a URL.
import type { GatewayConfig } from './config/types.js';

/** host[:port] of a URL (credentials, path and query dropped); the text unchanged if it is no URL. */
function hostOf(url: string): string {
  try { return new URL(url).host; } catch { return '(invalid url)'; }
}

export function startupSummary(config: GatewayConfig): Record<string, unknown> {
  const { login, tracing } = config;
  return {
    publicUrl: config.server.publicUrl,
    trustedProxies: config.server.trustedProxies.length,
    issuers: config.issuers.map((i) => i.issuer),
    upstreams: Object.values(config.upstreams).map((u) => `${u.name}=${u.url} (${u.credentials.type})`),
    routes: config.routes.map((r) => `${r.prefix} -> ${r.upstream}${r.public ? ' (public)' : ''}${r.login ? ` (login ${r.login})` : ''}`),
    login: login === null ? null : {
      projects: Object.keys(login.projects),
      sessionStore: login.sessionStore,
      redis: login.redis === null ? null : hostOf(login.redis.url),
    },
    tracing: tracing === null ? null : {
      endpoint: hostOf(tracing.otlpEndpoint), serviceName: tracing.serviceName, sampleRatio: tracing.sampleRatio,
      headers: Object.keys(tracing.headers),
    },
    logLevel: config.log.level,
    accessLog: config.log.accessLog,
  };
}
