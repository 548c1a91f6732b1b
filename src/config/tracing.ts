// The `tracing:` section: OpenTelemetry spans exported over OTLP/HTTP. Absent → tracing off.
import { headerValueProblem, httpUrl, isToken, object, record, report, required, str, withDefault, type Schema } from './schema.js';

/** A number in [0, 1]; `${NAME}` text is read as a number. */
const ratio: Schema<number> = {
  check(value, path, ctx) {
    let n = value;
    if (typeof value === 'string') {
      const t = str().check(value, path, ctx);
      if (typeof t !== 'string') return t;
      n = /^\s*(\d+(\.\d*)?|\.\d+)\s*$/.test(t) ? Number(t) : NaN;
    }
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0 || n > 1) {
      return report(ctx, path, `must be a number from 0 to 1 (got ${JSON.stringify(value)})`);
    }
    return n;
  },
};

/** Export headers carry the collector's credentials: secrets, never quoted in a problem. */
const headerValue = str(headerValueProblem, { secret: true });

/**
 * otlpEndpoint: the OTLP/HTTP collector base URL (spans go to `<otlpEndpoint>/v1/traces`);
 * serviceName (default cdf-auth-gateway); sampleRatio: share of new traces recorded, a caller's
 * sampled flag is followed (default 1); headers: sent with every export, secrets, never logged.
 */
export const tracingSchema = object({
  otlpEndpoint: required(httpUrl({ query: false })),
  serviceName: withDefault(str(), 'cdf-auth-gateway'),
  sampleRatio: withDefault(ratio, 1),
  headers: withDefault(record(headerValue, (k) => (isToken(k) ? undefined : `"${k}" is not a header name`)), {} as Record<string, string>),
});
