// The validator's core: the problem list, `${NAME}` substitution and the scalar schemas. Every
// check reports into one problem list (never throws, never stops at the first problem) and
// returns either the checked value or INVALID. `${NAME}` references are resolved here, in parsed
// string scalars only, so an environment value can never inject YAML structure.

import { suggest } from './suggest.js';

export interface ConfigProblem {
  /** Key path, e.g. `upstreams.cdf.credentials.tokenUrl` or `routes[2].allow`. */
  readonly path: string;
  readonly reason: string;
}

export interface Context {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Directory `*File` paths are relative to. */
  readonly baseDir: string;
  readonly problems: ConfigProblem[];
}

export const INVALID: unique symbol = Symbol('invalid');
export type Invalid = typeof INVALID;
export type Checked<T> = T | Invalid;

export interface Schema<T> {
  check(value: unknown, path: string, ctx: Context): Checked<T>;
}
export type Infer<S> = S extends Schema<infer T> ? T : never;

/** Largest delay setTimeout accepts; longer ones fire at once. */
export const MAX_TIMER_MS = 2_147_483_647;

/** How a bad value is quoted in a problem: strings as JSON (shortened), numbers and booleans as is. */
export function show(value: string | number | boolean): string {
  if (typeof value !== 'string') return String(value);
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}…` : value);
}

/**
 * Records a problem at `path`. With `value` (a scalar the user wrote, never a secret) the reason
 * names it: `"nope" is not one of the upstreams (cdf)`.
 */
export function report(ctx: Context, path: string, reason: string, value?: string | number | boolean): Invalid {
  ctx.problems.push({ path: path === '' ? '(root)' : path, reason: value === undefined ? reason : `${show(value)} ${reason}` });
  return INVALID;
}

export function childPath(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

export function indexPath(path: string, i: number): string {
  return `${path}[${i}]`;
}

export function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** YAML `~`, an empty value and a missing key all mean "not given". */
export function isAbsent(value: unknown): value is null | undefined {
  return value === undefined || value === null;
}

/** A scalar as written, for quoting in a problem; undefined for mappings and lists. */
function scalar(value: unknown): string | number | boolean | undefined {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? value : undefined;
}

// ---------------------------------------------------------------------------------------------
// ${NAME} substitution

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface Text { readonly text: string; readonly substituted: boolean }

/** Resolves `${NAME}` (and `$${` → `${`) in one string scalar; reports unset variables. */
export function substitute(raw: string, path: string, ctx: Context): Checked<Text> {
  if (!raw.includes('${')) return { text: raw, substituted: false };
  let out = '';
  let substituted = false;
  let ok = true;
  let i = 0;
  while (i < raw.length) {
    if (raw.startsWith('$${', i)) { out += '${'; i += 3; continue; }
    if (raw.startsWith('${', i)) {
      const end = raw.indexOf('}', i + 2);
      const name = end === -1 ? '' : raw.slice(i + 2, end);
      if (end === -1 || !NAME.test(name)) {
        report(ctx, path, 'invalid ${…} reference: write ${NAME} (letters, digits, _) or $${ for a literal ${');
        ok = false;
        break;
      }
      const value = ctx.env[name];
      if (value === undefined) {
        report(ctx, path, `environment variable ${name} is not set`);
        ok = false;
      } else {
        out += value;
      }
      substituted = true;
      i = end + 1;
      continue;
    }
    out += raw[i];
    i += 1;
  }
  return ok ? { text: out, substituted } : INVALID;
}

/** A string scalar after substitution; undefined when the value is not a string at all. */
export function readText(value: unknown, path: string, ctx: Context): Checked<Text> | undefined {
  return typeof value === 'string' ? substitute(value, path, ctx) : undefined;
}

/**
 * Checks `value` against `schema` without reporting anything: the value, or undefined when it is
 * absent or invalid (its own check reports it). Cross-key rules read the values the user set this
 * way, so they run even when other parts of the file are broken.
 */
export function peek<T>(schema: Schema<T>, value: unknown, ctx: Context): T | undefined {
  if (isAbsent(value)) return undefined;
  const r = schema.check(value, '', { env: ctx.env, baseDir: ctx.baseDir, problems: [] });
  return r === INVALID ? undefined : r;
}

/** `raw[a][b]…`, or undefined where a level is not a mapping. */
export function dig(raw: unknown, ...keys: string[]): unknown {
  let v = raw;
  for (const k of keys) {
    if (!isMapping(v)) return undefined;
    v = v[k];
  }
  return v;
}

function parseBool(text: string): boolean | undefined {
  const t = text.toLowerCase();
  return t === 'true' ? true : t === 'false' ? false : undefined;
}

// ---------------------------------------------------------------------------------------------
// Scalars

export interface StrOptions {
  /** A secret: its value never appears in a problem. */
  readonly secret?: boolean;
  /** How the value is quoted in a problem (e.g. with URL credentials masked). */
  readonly redact?: (s: string) => string;
}

/** A non-empty string; `check` returns a reason (`must …`, `is …`) when the text is unacceptable. */
export function str(check?: (s: string) => string | undefined, opts: StrOptions = {}): Schema<string> {
  const quote = (s: string): string | undefined => (opts.secret === true ? undefined : opts.redact?.(s) ?? s);
  return {
    check(value, path, ctx) {
      const t = readText(value, path, ctx);
      if (t === undefined) {
        const written = opts.secret === true ? undefined : scalar(value);
        return report(ctx, path, typeof value === 'number' || typeof value === 'boolean'
          ? 'must be a string (put it in quotes)' : 'must be a string', written);
      }
      if (t === INVALID) return INVALID;
      if (t.text === '') return report(ctx, path, 'must not be empty');
      const reason = check?.(t.text);
      return reason === undefined ? t.text : report(ctx, path, reason, quote(t.text));
    },
  };
}

export interface IntRange { readonly min: number; readonly max: number }

/** An integer in [min, max]; a string is accepted only when it came from `${NAME}`. */
export function int(range: IntRange): Schema<number> {
  const { min, max } = range;
  const rangeReason = max === Number.MAX_SAFE_INTEGER ? `must be at least ${min}`
    : min === Number.MIN_SAFE_INTEGER ? `must be at most ${max}` : `must be between ${min} and ${max}`;
  return {
    check(value, path, ctx) {
      let n: number;
      if (typeof value === 'number') {
        n = value;
      } else {
        const t = readText(value, path, ctx);
        if (t === INVALID) return INVALID;
        if (t === undefined || !t.substituted || !/^-?\d+$/.test(t.text)) {
          return report(ctx, path, 'must be an integer', t === undefined ? scalar(value) : t.text);
        }
        n = Number(t.text);
      }
      if (!Number.isSafeInteger(n)) return report(ctx, path, 'must be an integer', n);
      if (n < min || n > max) return report(ctx, path, rangeReason, n);
      return n;
    },
  };
}

/** true or false; a string is accepted only when it came from `${NAME}`. */
export function bool(): Schema<boolean> {
  return {
    check(value, path, ctx) {
      if (typeof value === 'boolean') return value;
      const t = readText(value, path, ctx);
      if (t === INVALID) return INVALID;
      const b = t !== undefined && t.substituted ? parseBool(t.text) : undefined;
      return b === undefined ? report(ctx, path, 'must be true or false', t === undefined ? scalar(value) : t.text) : b;
    },
  };
}

/** One of `values` (case-sensitive); `explain` can give a specific reason for a known-bad value. */
export function oneOf<const V extends readonly string[]>(
  values: V, opts: { explain?: (s: string) => string | undefined } = {},
): Schema<V[number]> {
  return {
    check(value, path, ctx) {
      const t = readText(value, path, ctx);
      if (t === INVALID) return INVALID;
      if (t !== undefined && (values as readonly string[]).includes(t.text)) return t.text as V[number];
      const written = t === undefined ? scalar(value) : t.text;
      const special = t === undefined ? undefined : opts.explain?.(t.text);
      if (special !== undefined) return report(ctx, path, special, written);
      const close = t === undefined ? undefined : suggest(t.text, values);
      return report(ctx, path, `must be one of ${values.join(', ')}` + (close !== undefined ? `; did you mean ${close}?` : ''), written);
    },
  };
}

export function literal<const L extends string>(value: L): Schema<L> {
  return oneOf([value] as const) as Schema<L>;
}

/** Best-effort boolean read without reporting (used for cross-field decisions). */
export function peekBool(value: unknown, env: Readonly<Record<string, string | undefined>>): boolean | undefined {
  return peek(bool(), value, { env, baseDir: '.', problems: [] });
}
