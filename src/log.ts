// pino options for the whole gateway. We log only objects we build ourselves (never raw request
// headers), and redaction is the second line of defence: any field that could carry a token,
// cookie, API key or client secret is censored wherever it appears.
import pino, { type DestinationStream, type Logger } from 'pino';
import type { LogConfig } from './config/types.js';

const SECRET_KEYS = [
  'authorization', 'Authorization', 'cookie', 'Cookie', 'set-cookie', 'api-key', 'token', 'access_token',
  'id_token', 'refresh_token', 'clientSecret', 'client_secret', 'secret', 'password', 'value', 'code_verifier',
];

export const REDACT_PATHS = [
  ...SECRET_KEYS.map((k) => `["${k}"]`),
  ...SECRET_KEYS.map((k) => `*["${k}"]`),
  ...SECRET_KEYS.map((k) => `*.headers["${k}"]`),
];

/** Drops the query string: queries may carry codes, states or (refused) tokens. */
export function pathOnly(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q) + '?[redacted]';
}

interface LoggableError { name?: string; message?: string; code?: string; detail?: string; status?: number }

/** Errors are logged by type, code and message only: no stacks full of request data, no causes' payloads. */
function errSerializer(err: LoggableError): Record<string, unknown> {
  return { type: err.name, message: err.message, code: err.code, status: err.status, detail: err.detail };
}

export interface Loggers {
  /** Everything but access lines: redacted. */
  readonly logger: Logger;
  /**
   * Access lines only. Their fields are fixed and built by server.ts from non-secret values
   * (method, path without query, route, decision, sub, status, ms), so the wildcard redaction
   * (a scan of every field per path, per line) is not needed on this per-request path.
   */
  readonly access: Logger;
}

/**
 * Standard output, asynchronous and buffered: lines collect until 4 KiB are pending (one write()
 * per ~25 access lines instead of one each) and at most a second. pino writes out what is left,
 * synchronously, when the process exits (process.exit, a fatal uncaught exception, the end of
 * the event loop); Gateway.close() flushes on shutdown.
 */
export const STDOUT_BUFFER = { minLength: 4096, periodicFlush: 1000 } as const;

interface Flushable { write(line: string): unknown; flush(cb?: (err?: Error) => void): void }

export function createLoggers(cfg: Pick<LogConfig, 'level'>, destination?: DestinationStream): Loggers {
  const dest: DestinationStream = destination ?? pino.destination({ dest: 1, sync: false, ...STDOUT_BUFFER });
  let prompt = dest;
  if (destination === undefined) {
    // Lines other than access lines (start, warnings, errors) are rarer and wanted promptly: each
    // starts a write of what is pending unless one is in progress (no fsync).
    const d = dest as unknown as Flushable;
    prompt = { write(line: string) { d.write(line); d.flush(); }, flush: (cb?: (err?: Error) => void) => d.flush(cb) } as DestinationStream;
  }
  const common = { level: cfg.level, base: { service: 'cdf-auth-gateway' }, timestamp: pino.stdTimeFunctions.isoTime };
  return {
    logger: pino({
      ...common,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: { err: errSerializer, error: errSerializer, url: pathOnly },
    }, prompt),
    access: pino(common, dest),
  };
}
