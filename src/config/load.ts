// The configuration loader: YAML text → validated, deeply frozen GatewayConfig. The only place
// that reads the YAML; it sees the environment only through the `env` it is given.
// Every problem is collected before failing, each named by its key path.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type YAMLError } from 'yaml';

import type { GatewayConfig } from './types.js';
import {
  INVALID, checkKeys, childPath, deepFreeze, indexPath, isAbsent, isMapping, report,
  type Checked, type ConfigProblem, type Context, type Schema,
} from './schema.js';
import { loginSchema } from './login.js';
import { checkSharedSecret, sharedRedisSchema } from './redis.js';
import { tracingSchema } from './tracing.js';
import { checkExplicitPairs, checkIssuersNeeded, checkLoginIssuers, explicitValues, routeRefs } from './relations.js';
import { adminSchema, logSchema, serverSchema } from './sections/server.js';
import { issuersSchema, tokensSchema } from './sections/tokens.js';
import { upstreamsSchema } from './sections/upstreams.js';
import { routesSchema } from './sections/routes.js';
import { cdfSectionSchema, checkCdfRules, type CdfConfig } from './cdf.js';

export type { ConfigProblem } from './schema.js';

export class ConfigError extends Error {
  readonly problems: readonly ConfigProblem[];
  constructor(problems: readonly ConfigProblem[]) {
    super(problems.map((p) => `${p.path}: ${p.reason}`).join('\n'));
    this.name = 'ConfigError';
    this.problems = Object.freeze(problems.map((p) => Object.freeze({ path: p.path, reason: p.reason })));
  }
}

interface ParseOptions {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Directory `*File` secrets are resolved against. */
  readonly baseDir: string;
}

const SECTIONS = ['server', 'admin', 'log', 'issuers', 'tokens', 'upstreams', 'routes', 'login', 'redis', 'tracing', 'cdf'] as const;

// ---------------------------------------------------------------------------------------------
// the whole file

function yamlProblem(err: YAMLError, text: string): ConfigProblem {
  const pos = err.linePos?.[0];
  const where = pos ? `line ${pos.line}, column ${pos.col}` : 'yaml';
  const first = err.message.split('\n', 1)[0] ?? err.message;
  let reason = `YAML syntax error: ${first.replace(/ at line \d+, column \d+:?$/, '')}`;
  // The classic: a bare ${NAME} inside { } or [ ], where braces are YAML flow indicators.
  const line = pos ? text.split(/\r?\n/)[pos.line - 1] ?? '' : '';
  if (/[{[][^"']*\$\{/.test(line)) reason += ' (inside { } or [ ], quote ${…} values: "${NAME}")';
  return { path: where, reason };
}

/**
 * Every key written twice in the same mapping, at its key path with both positions. Keys are
 * compared as the loaded mapping compares them (as strings: `1` and "1" are the same key).
 * Aliases are not followed: an anchored mapping's duplicate is reported once, where it is written.
 */
function duplicateKeys(contents: unknown, lines: LineCounter): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const at = (range: readonly number[] | null | undefined) => {
    const pos = range == null ? undefined : lines.linePos(range[0]!);
    return pos === undefined ? 'unknown position' : `line ${pos.line}, column ${pos.col}`;
  };
  const walk = (node: unknown, path: string): void => {
    if (isMap(node)) {
      const seen = new Map<string, string>();
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
        const here = key === undefined ? path : childPath(path, key);
        if (key !== undefined) {
          const where = at((pair.key as { range?: readonly number[] | null }).range);
          const first = seen.get(key);
          if (first === undefined) seen.set(key, where);
          else out.push({ path: here === '' ? '(root)' : here, reason: `duplicate key at ${where} (first at ${first}): keys must be unique` });
        }
        walk(pair.value, here);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item, indexPath(path, i)));
    }
  };
  walk(contents, '');
  return out;
}

function section<T>(raw: Record<string, unknown>, key: string, schema: Schema<T>, ctx: Context): Checked<T> {
  return schema.check(isAbsent(raw[key]) ? {} : raw[key], key, ctx);
}

function validate(raw: Record<string, unknown>, ctx: Context) {
  checkKeys(raw, SECTIONS, '', ctx);
  const set = explicitValues(raw, ctx);

  const server = section(raw, 'server', serverSchema(set), ctx);
  const admin = section(raw, 'admin', adminSchema(set), ctx);
  const log = section(raw, 'log', logSchema, ctx);
  const tokens = section(raw, 'tokens', tokensSchema(set), ctx);
  const issuers = isAbsent(raw.issuers) ? report(ctx, 'issuers', 'required') : issuersSchema.check(raw.issuers, 'issuers', ctx);
  const upstreams = isAbsent(raw.upstreams) ? report(ctx, 'upstreams', 'required') : upstreamsSchema.check(raw.upstreams, 'upstreams', ctx);
  const login = isAbsent(raw.login) ? null : loginSchema.check(raw.login, 'login', ctx);
  const redis = isAbsent(raw.redis) ? null : sharedRedisSchema.check(raw.redis, 'redis', ctx);
  const tracing = isAbsent(raw.tracing) ? null : tracingSchema.check(raw.tracing, 'tracing', ctx);
  // Route references are checked against the names written, even if an upstream itself is invalid.
  const routes = isAbsent(raw.routes) ? report(ctx, 'routes', 'required')
    : routesSchema(routeRefs(raw), ctx.env).check(raw.routes, 'routes', ctx);

  const cdf = isAbsent(raw.cdf) ? null : cdfSectionSchema.check(raw.cdf, 'cdf', ctx);

  // Rules between keys, on whatever values are valid.
  if (routes !== INVALID && cdf !== INVALID) checkCdfRules(routes, cdf, ctx);
  checkIssuersNeeded(raw, ctx);
  checkExplicitPairs(set, ctx);
  checkLoginIssuers(raw, ctx);
  if (redis !== INVALID) checkSharedSecret(redis, !isAbsent(raw.login), upstreams === INVALID ? null : upstreams, ctx);

  if (ctx.problems.length > 0 || login === INVALID || server === INVALID || admin === INVALID || log === INVALID || tokens === INVALID
      || issuers === INVALID || upstreams === INVALID || routes === INVALID || redis === INVALID || tracing === INVALID
      || cdf === INVALID) {
    return undefined;
  }
  const config: { server: typeof server; admin: typeof admin; log: typeof log; issuers: typeof issuers; tokens: typeof tokens;
    upstreams: typeof upstreams; routes: typeof routes; login: typeof login; redis: typeof redis; tracing: typeof tracing; cdf?: CdfConfig } = {
    server, admin, log, issuers, tokens, upstreams, routes, login, redis, tracing,
  };
  // `cdf` only when configured: the section is optional and most files have none.
  if (cdf !== null) config.cdf = cdf;
  return config;
}

/** The validated configuration before freezing; types.ts derives GatewayConfig from it. */
export type ValidatedConfig = NonNullable<ReturnType<typeof validate>>;

/**
 * Parses and validates a configuration. `${NAME}` is read from `opts.env` only; `*File` paths are
 * relative to `opts.baseDir`. Throws ConfigError listing every problem found.
 */
export function parseConfig(yamlText: string, opts: ParseOptions): GatewayConfig {
  // Duplicate keys are found by duplicateKeys (every one, with its path), not by the parser, which
  // would make them syntax errors: a file whose only fault is duplicates is still checked in full.
  const lines = new LineCounter();
  const doc = parseDocument(yamlText, { prettyErrors: true, uniqueKeys: false, version: '1.2', lineCounter: lines });
  const duplicates = duplicateKeys(doc.contents, lines);
  if (doc.errors.length > 0) throw new ConfigError([yamlProblem(doc.errors[0]!, yamlText), ...duplicates]);
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError([...duplicates, { path: 'yaml', reason: `YAML error: ${(err as Error).message}` }]);
  }
  if (isAbsent(raw)) throw new ConfigError([{ path: '(root)', reason: 'the configuration is empty' }]);
  if (!isMapping(raw)) throw new ConfigError([...duplicates, { path: '(root)', reason: 'must be a mapping of sections' }]);

  // The rest of the file is checked as loaded (the last of duplicate keys wins there).
  const ctx: Context = { env: opts.env, baseDir: opts.baseDir, problems: [...duplicates] };
  const config = validate(raw, ctx);
  if (config === undefined) {
    throw new ConfigError(ctx.problems.length > 0 ? ctx.problems : [{ path: '(root)', reason: 'invalid configuration' }]);
  }
  return deepFreeze(config);
}

/** Reads and parses a configuration file; `*File` secrets are relative to its directory. */
export function loadConfigFile(file: string, env: Readonly<Record<string, string | undefined>>): GatewayConfig {
  const abs = resolve(file);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError([{ path: file, reason: `cannot read the configuration file (${code})` }]);
  }
  return parseConfig(text, { env, baseDir: dirname(abs) });
}
