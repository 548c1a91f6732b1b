// prom-client instruments on a registry of our own (never the global one, so several gateways
// can live in one process, as they do in tests). Modules receive the narrow Metrics interface.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { FastCounter, FastHistogram } from './metrics-fast.js';

export type VerifyOutcome = 'valid' | 'cached' | 'invalid' | 'expired' | 'unavailable';
export type FetchOutcome = 'ok' | 'error' | 'timeout';
/** Why an upstream attempt failed: connection refused, reset (or closed early), timed out, anything else. */
export type UpstreamFailure = 'refused' | 'reset' | 'timeout' | 'other';

export interface Metrics {
  request(route: string, status: number, decision: string): void;
  /** A refused request, by its stable reason code. */
  refusal(route: string, reason: string): void;
  /** A configuration reload: applied (`ok`) or refused (`invalid`). */
  configReload(outcome: 'ok' | 'invalid'): void;
  tokenVerification(outcome: VerifyOutcome): void;
  jwksFetch(issuer: string, outcome: FetchOutcome, seconds: number): void;
  upstreamLatency(upstream: string, status: number, seconds: number): void;
  clientCredentialsRefresh(upstream: string, outcome: 'ok' | 'error'): void;
  /** A browser login's end: `ok`, or why it failed (e.g. `idp_error`, `exchange`, `state`). */
  login(project: string, outcome: string): void;
  /** A session's access-token refresh: `ok`, `refused` (the session ended) or `unavailable`. */
  sessionRefresh(project: string, outcome: 'ok' | 'refused' | 'unavailable'): void;
  /** A request arrived (+1) or its response finished or was abandoned (-1). */
  inFlight(delta: 1 | -1): void;
  /** The gateway's own view of a request: arrival to the last byte of its response. */
  requestDuration(route: string, status: number, seconds: number): void;
  upstreamFailure(upstream: string, kind: UpstreamFailure): void;
  /** A WebSocket tunnel opened (+1) or closed (-1). */
  webSocket(route: string, delta: 1 | -1): void;
}

export const noopMetrics: Metrics = {
  request() {}, refusal() {}, configReload() {}, tokenVerification() {}, jwksFetch() {}, upstreamLatency() {}, clientCredentialsRefresh() {},
  login() {}, sessionRefresh() {}, inFlight() {}, requestDuration() {}, upstreamFailure() {}, webSocket() {},
};

/** Request duration buckets: the gateway's own answers take microseconds to milliseconds, proxied ones up to the upstream's timeout. */
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export interface PromMetrics extends Metrics { readonly registry: Registry }

export function createMetrics(opts: { defaultMetrics?: boolean } = {}): PromMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'cdf_gateway_' });
  // Per-request instruments (requests, refusals, verifications, durations) are fast ones
  // (metrics-fast.ts): a series is found by one string key; the rest are prom-client's.
  const requests = new FastCounter('cdf_gateway_requests_total', 'Requests by route, status and decision', ['route', 'status', 'decision'], [registry]);
  const verifications = new FastCounter('cdf_gateway_token_verifications_total', 'Bearer token verification outcomes', ['outcome'], [registry]);
  const jwksFetches = new Counter({
    name: 'cdf_gateway_jwks_fetches_total', help: 'JWKS fetches by issuer and outcome',
    labelNames: ['issuer', 'outcome'] as const, registers: [registry],
  });
  const jwksLatency = new Histogram({
    name: 'cdf_gateway_jwks_fetch_duration_seconds', help: 'JWKS fetch latency in seconds',
    labelNames: ['issuer'] as const, buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry],
  });
  const upstream = new FastHistogram('cdf_gateway_upstream_duration_seconds', 'Upstream response time (to headers) in seconds',
    ['upstream', 'status'], [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], [registry]);
  const ccRefresh = new Counter({
    name: 'cdf_gateway_client_credentials_refreshes_total', help: 'Client-credentials token requests by upstream and outcome',
    labelNames: ['upstream', 'outcome'] as const, registers: [registry],
  });

  const logins = new Counter({
    name: 'cdf_gateway_logins_total', help: 'Browser logins by project and outcome',
    labelNames: ['project', 'outcome'] as const, registers: [registry],
  });
  const refreshes = new Counter({
    name: 'cdf_gateway_session_refreshes_total', help: 'Session access-token refreshes by project and outcome',
    labelNames: ['project', 'outcome'] as const, registers: [registry],
  });

  const refusals = new FastCounter('cdf_gateway_refusals_total', 'Refused requests by route and reason', ['route', 'reason'], [registry]);
  const reloads = new Counter({
    name: 'cdf_gateway_config_reloads_total', help: 'Configuration reloads by outcome',
    labelNames: ['outcome'] as const, registers: [registry],
  });
  const own = ownInstruments(registry);

  return {
    registry,
    request(route, status, decision) {
      requests.labels(route, status, decision).inc();
    },
    refusal(route, reason) {
      refusals.labels(route, reason).inc();
    },
    configReload(outcome) {
      reloads.labels(outcome).inc();
    },
    tokenVerification(outcome) {
      verifications.labels(outcome).inc();
    },
    jwksFetch(issuer, outcome, seconds) {
      jwksFetches.labels(issuer, outcome).inc();
      jwksLatency.labels(issuer).observe(seconds);
    },
    upstreamLatency(name, status, seconds) {
      upstream.labels(name, status).observe(seconds);
    },
    clientCredentialsRefresh(name, outcome) {
      ccRefresh.labels(name, outcome).inc();
    },
    login(project, outcome) {
      logins.labels(project, outcome).inc();
    },
    sessionRefresh(project, outcome) {
      refreshes.labels(project, outcome).inc();
    },
    ...own,
  };
}

/** In-flight requests, request durations, upstream failures and open WebSockets. */
function ownInstruments(registry: Registry): Pick<Metrics, 'inFlight' | 'requestDuration' | 'upstreamFailure' | 'webSocket'> {
  // Counted in a number and handed to the gauge when scraped: Gauge.inc() validates and hashes
  // its (empty) label set on each call, twice per request (~0.35 µs each in place).
  let inFlightNow = 0;
  new Gauge({
    name: 'cdf_gateway_requests_in_flight', help: 'Requests being handled (arrived, response not finished)', registers: [registry],
    collect() { this.set(inFlightNow); },
  });
  const duration = new FastHistogram('cdf_gateway_request_duration_seconds', 'Request duration as the gateway sees it (arrival to response end), by route and status',
    ['route', 'status'], DURATION_BUCKETS, [registry]);
  const upstreamFailures = new Counter({
    name: 'cdf_gateway_upstream_failures_total', help: 'Failed upstream attempts by upstream and kind (refused, reset, timeout, other)',
    labelNames: ['upstream', 'kind'] as const, registers: [registry],
  });
  const webSockets = new Gauge({
    name: 'cdf_gateway_websockets_open', help: 'Open WebSocket tunnels by route',
    labelNames: ['route'] as const, registers: [registry],
  });
  return {
    inFlight(delta) { inFlightNow += delta; },
    requestDuration(route, status, seconds) { duration.labels(route, status).observe(seconds); },
    upstreamFailure(upstream, kind) { upstreamFailures.labels(upstream, kind).inc(); },
    webSocket(route, delta) { webSockets.labels(route).inc(delta); },
  };
}
