// Defaults that depend on other keys. A default never contradicts a value the user did set: it
// adapts to it, so only two explicitly set values can conflict (relations.ts reports those).
// `Explicit` holds the values as written (undefined: not set, or itself invalid).

import { isIP } from 'node:net';

export interface Explicit {
  readonly server: {
    readonly host: string | undefined;
    readonly port: number | undefined;
    readonly maxHeaderBytes: number | undefined;
    readonly headersTimeoutMs: number | undefined;
    readonly requestTimeoutMs: number | undefined;
  };
  readonly admin: { readonly host: string | undefined; readonly port: number | undefined };
  readonly tokens: {
    readonly maxTokenBytes: number | undefined;
    readonly jwksCacheMaxAgeMs: number | undefined;
    readonly jwksMaxStaleMs: number | undefined;
  };
}

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_SERVER_PORT = 8080;
export const DEFAULT_ADMIN_PORT = 9090;
export const DEFAULT_MAX_HEADER_BYTES = 32768;
export const DEFAULT_MAX_TOKEN_BYTES = 12288;
export const DEFAULT_HEADERS_TIMEOUT_MS = 10000;
export const DEFAULT_JWKS_CACHE_MAX_AGE_MS = 600_000;
export const DEFAULT_JWKS_MAX_STALE_MS = 3_600_000;

/**
 * A listen host as the socket would see it: an IP address in canonical form (IPv6 compressed and
 * lower-case, an IPv4-mapped IPv6 address as the IPv4 address), 'any' for 0.0.0.0 / :: (every
 * address), or null for a host name, which may resolve to any address (`localhost` to 127.0.0.1
 * or ::1, another name to 0.0.0.0 or to the other listener's address).
 */
function listenAddress(host: string): string | null {
  if (isIP(host) === 4) return host === '0.0.0.0' ? 'any' : host;
  if (isIP(host) !== 6) return null;
  const v6 = new URL(`http://[${host}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(v6);
  if (mapped !== null) {
    const hi = parseInt(mapped[1]!, 16);
    const lo = parseInt(mapped[2]!, 16);
    return listenAddress(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`);
  }
  return v6 === '::' ? 'any' : v6;
}

/**
 * Whether two listen hosts may be the same interface: the same address, either a wildcard, or
 * either a host name (unknown until resolved). When in doubt, they may.
 */
export function hostsMayOverlap(a: string, b: string): boolean {
  if (a.toLowerCase() === b.toLowerCase()) return true;
  const x = listenAddress(a);
  const y = listenAddress(b);
  return x === null || y === null || x === 'any' || y === 'any' || x === y;
}

/** Whether two listeners may try to bind the same address and port (0 is always a fresh port). */
export function listenersClash(a: { host: string; port: number }, b: { host: string; port: number }): boolean {
  return a.port !== 0 && a.port === b.port && hostsMayOverlap(a.host, b.host);
}

/** server.port: 8080, or 8081 when admin.port is set to 8080 on a host that may be the server's. */
export function serverPort(set: Explicit): number {
  if (set.server.port !== undefined) return set.server.port;
  const admin = { host: set.admin.host ?? DEFAULT_HOST, port: set.admin.port ?? DEFAULT_ADMIN_PORT };
  const clash = listenersClash({ host: set.server.host ?? DEFAULT_HOST, port: DEFAULT_SERVER_PORT }, admin);
  return clash ? DEFAULT_SERVER_PORT + 1 : DEFAULT_SERVER_PORT;
}

/** admin.port: 9090, or 9091 when the server listens on 9090 on a host that may be admin's. */
export function adminPort(set: Explicit): number {
  if (set.admin.port !== undefined) return set.admin.port;
  const server = { host: set.server.host ?? DEFAULT_HOST, port: serverPort(set) };
  const clash = listenersClash({ host: set.admin.host ?? DEFAULT_HOST, port: DEFAULT_ADMIN_PORT }, server);
  return clash ? DEFAULT_ADMIN_PORT + 1 : DEFAULT_ADMIN_PORT;
}

/** tokens.maxTokenBytes: as set, else derived from server.maxHeaderBytes (maxTokenBytesWithin). */
export function maxTokenBytes(set: Explicit): number {
  return set.tokens.maxTokenBytes ?? maxTokenBytesWithin(set.server.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES);
}

/**
 * The default token limit under a header limit: 12288, but at most three quarters of a smaller
 * one: the token travels in the header block, and the rest of the request head needs room too.
 * A reload derives it from the running listener's limit (reload.ts keepListeners).
 */
export function maxTokenBytesWithin(maxHeaderBytes: number): number {
  return Math.min(DEFAULT_MAX_TOKEN_BYTES, Math.floor((maxHeaderBytes * 3) / 4));
}

/** server.maxHeaderBytes: 32768, or room for a larger tokens.maxTokenBytes plus a third (whole KiB). */
export function maxHeaderBytes(set: Explicit): number {
  if (set.server.maxHeaderBytes !== undefined) return set.server.maxHeaderBytes;
  const token = set.tokens.maxTokenBytes;
  if (token === undefined) return DEFAULT_MAX_HEADER_BYTES;
  return Math.max(DEFAULT_MAX_HEADER_BYTES, Math.ceil((token * 4) / 3 / 1024) * 1024);
}

/** server.headersTimeoutMs: 10000, but no more than a smaller, non-zero requestTimeoutMs. */
export function headersTimeoutMs(set: Explicit): number {
  if (set.server.headersTimeoutMs !== undefined) return set.server.headersTimeoutMs;
  const whole = set.server.requestTimeoutMs ?? 0;
  return whole > 0 ? Math.min(DEFAULT_HEADERS_TIMEOUT_MS, whole) : DEFAULT_HEADERS_TIMEOUT_MS;
}

/** tokens.jwksCacheMaxAgeMs: 600000, but no more than a smaller jwksMaxStaleMs. */
export function jwksCacheMaxAgeMs(set: Explicit): number {
  const { jwksCacheMaxAgeMs: age, jwksMaxStaleMs: stale } = set.tokens;
  return age ?? Math.min(DEFAULT_JWKS_CACHE_MAX_AGE_MS, stale ?? Infinity);
}

/** tokens.jwksMaxStaleMs: 3600000, but at least a larger jwksCacheMaxAgeMs. */
export function jwksMaxStaleMs(set: Explicit): number {
  const { jwksCacheMaxAgeMs: age, jwksMaxStaleMs: stale } = set.tokens;
  return stale ?? Math.max(DEFAULT_JWKS_MAX_STALE_MS, age ?? 0);
}
