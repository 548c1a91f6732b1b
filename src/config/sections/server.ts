// The `server`, `admin` and `log` sections.

import {
  array, bool, cidrProblem, hostName, httpUrl, int, adaptive, MAX_TIMER_MS, object, oneOf, refine, str, withDefault,
} from '../schema.js';
import * as defaults from '../defaults.js';
import type { Explicit } from '../defaults.js';

export const positiveMs = int({ min: 1, max: MAX_TIMER_MS });
const port = int({ min: 0, max: 65535 });

export const serverFields = object({
  /** Listen address: an IP address (IPv6 without brackets) or a host name. */
  host: withDefault(hostName(), defaults.DEFAULT_HOST),
  /** 0 picks a free port. Default: defaults.serverPort. */
  port: adaptive(port),
  /** Origin the gateway is reached at by clients; default http://host:port. */
  publicUrl: withDefault(httpUrl({ path: false }), null),
  /** CIDRs (or single addresses) whose X-Forwarded-* headers are believed. Default none. */
  trustedProxies: withDefault(array(str(cidrProblem)), [] as string[]),
  /** Default: defaults.maxHeaderBytes. */
  maxHeaderBytes: adaptive(int({ min: 1024, max: 1_048_576 })),
  /** null: unlimited, streamed. */
  maxBodyBytes: withDefault(int({ min: 1, max: Number.MAX_SAFE_INTEGER }), null),
  /** Default: defaults.headersTimeoutMs. */
  headersTimeoutMs: adaptive(positiveMs),
  /** 0: off (bodies stream; each upstream's timeoutMs bounds waits). */
  requestTimeoutMs: withDefault(int({ min: 0, max: MAX_TIMER_MS }), 0),
  keepAliveTimeoutMs: withDefault(positiveMs, 72000),
  shutdownTimeoutMs: withDefault(positiveMs, 10000),
  /** A request body idle this long aborts the request (408 if nothing was sent yet) and closes the connection. */
  bodyIdleTimeoutMs: withDefault(positiveMs, 30000),
});

/** The publicUrl of a file that sets none: the listener's own address. */
export function listenerPublicUrl(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export function serverSchema(set: Explicit) {
  return refine(serverFields, (s) => {
    const portNumber = defaults.serverPort(set);
    return {
      ...s,
      port: portNumber,
      publicUrl: s.publicUrl === null ? listenerPublicUrl(s.host, portNumber) : new URL(s.publicUrl).origin,
      /** false: publicUrl was not set and follows the listener's host and port (a reload re-derives it). */
      publicUrlSet: s.publicUrl !== null,
      maxHeaderBytes: defaults.maxHeaderBytes(set),
      headersTimeoutMs: defaults.headersTimeoutMs(set),
    };
  });
}

export const adminFields = object({
  host: withDefault(hostName(), defaults.DEFAULT_HOST),
  /** Default: defaults.adminPort. */
  port: adaptive(port),
});

export function adminSchema(set: Explicit) {
  return refine(adminFields, (a) => ({ ...a, port: defaults.adminPort(set) }));
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const logSchema = object({
  level: withDefault(oneOf(LOG_LEVELS), 'info' as const),
  /** One log line per request. */
  accessLog: withDefault(bool(), true),
  /**
   * always: lines logged by a request's asynchronous work (JWKS fetches, token/inspect, refreshes)
   * name it on every Node version; auto: on Node 24 or with tracing (src/request/context.ts).
   */
  requestContext: withDefault(oneOf(['auto', 'always'] as const), 'auto' as const),
});
