// A tiny declarative validator for the parsed YAML tree. Every check reports into one problem list
// (never throws, never stops at the first problem) and returns either the checked value or
// INVALID. `${NAME}` references are resolved here, in parsed string scalars only, so an
// environment value can never inject YAML structure. `*File` secrets are read here too.

import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';

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

export function report(ctx: Context, path: string, reason: string): Invalid {
  ctx.problems.push({ path: path === '' ? '(root)' : path, reason });
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

// ---------------------------------------------------------------------------------------------
// ${NAME} substitution

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

interface Text { readonly text: string; readonly substituted: boolean }

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
function readText(value: unknown, path: string, ctx: Context): Checked<Text> | undefined {
  return typeof value === 'string' ? substitute(value, path, ctx) : undefined;
}

/** Best-effort boolean read without reporting (used for cross-field decisions). */
export function peekBool(value: unknown, env: Readonly<Record<string, string | undefined>>): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (typeof value !== 'string') return undefined;
  const quiet: Context = { env, baseDir: '.', problems: [] };
  const t = substitute(value, '', quiet);
  if (t === INVALID || !t.substituted) return undefined;
  return parseBool(t.text);
}

function parseBool(text: string): boolean | undefined {
  const t = text.toLowerCase();
  return t === 'true' ? true : t === 'false' ? false : undefined;
}

// ---------------------------------------------------------------------------------------------
// Typo suggestions

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
function distance(a: string, b: string): number {
  const d: number[][] = [];
  for (let i = 0; i <= a.length; i++) d.push([i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The closest candidate if `word` looks like a near typo of it (case ignored), else undefined:
 * within 1 edit for words up to 5 characters, 2 beyond, or one a prefix of the other.
 */
export function suggest(word: string, candidates: Iterable<string>): string | undefined {
  const w = word.toLowerCase();
  const limit = w.length <= 5 ? 1 : 2;
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const l = c.toLowerCase();
    // A dropped or added unit suffix (clockTolerance → clockToleranceSec) counts as close too.
    const affix = Math.min(w.length, l.length) >= 5 && (l.startsWith(w) || w.startsWith(l));
    const dd = affix ? Math.min(distance(w, l), limit) : distance(w, l);
    if (dd <= limit && dd < bestD) { best = c; bestD = dd; }
  }
  return best;
}

/** Reports every key of `obj` not in `known`, with a suggestion for near typos. */
export function checkKeys(
  obj: Record<string, unknown>, known: readonly string[], path: string, ctx: Context,
  hint?: (key: string) => string | undefined,
): boolean {
  let ok = true;
  for (const key of Object.keys(obj)) {
    if (known.includes(key)) continue;
    ok = false;
    const close = suggest(key, known);
    const extra = hint?.(key);
    report(ctx, childPath(path, key),
      'unknown key' + (close !== undefined ? `; did you mean "${close}"?` : '') + (extra !== undefined ? ` (${extra})` : ''));
  }
  return ok;
}

// ---------------------------------------------------------------------------------------------
// Scalars

/** A non-empty string; `check` returns a reason when the text is unacceptable. */
export function str(check?: (s: string) => string | undefined): Schema<string> {
  return {
    check(value, path, ctx) {
      const t = readText(value, path, ctx);
      if (t === undefined) {
        return report(ctx, path, typeof value === 'number' || typeof value === 'boolean'
          ? 'must be a string (put it in quotes)' : 'must be a string');
      }
      if (t === INVALID) return INVALID;
      if (t.text === '') return report(ctx, path, 'must not be empty');
      const reason = check?.(t.text);
      return reason === undefined ? t.text : report(ctx, path, reason);
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
        if (t === undefined || !t.substituted || !/^-?\d+$/.test(t.text)) return report(ctx, path, 'must be an integer');
        n = Number(t.text);
      }
      if (!Number.isSafeInteger(n)) return report(ctx, path, 'must be an integer');
      if (n < min || n > max) return report(ctx, path, rangeReason);
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
      return b === undefined ? report(ctx, path, 'must be true or false') : b;
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
      const special = t === undefined ? undefined : opts.explain?.(t.text);
      if (special !== undefined) return report(ctx, path, special);
      const close = t === undefined ? undefined : suggest(t.text, values);
      return report(ctx, path, `must be one of ${values.join(', ')}` + (close !== undefined ? `; did you mean ${close}?` : ''));
    },
  };
}

export function literal<const L extends string>(value: L): Schema<L> {
  return oneOf([value] as const) as Schema<L>;
}

// ---------------------------------------------------------------------------------------------
// URLs, hosts, addresses, paths, header names

export interface UrlRules {
  /** Allow a path other than `/` (default true). */
  readonly path?: boolean;
  /** Allow a query string (default false). */
  readonly query?: boolean;
}

/** Reason the text is not an acceptable http(s) URL, or undefined. Never echoes the value. */
export function httpUrlProblem(s: string, rules: UrlRules = {}): string | undefined {
  if (/[\s\u0000-\u001f\u007f]/.test(s)) return 'must not contain whitespace or control characters';
  if (!/^https?:\/\/[^/?#]/i.test(s)) return 'must be an http(s) URL';
  let u: URL;
  try { u = new URL(s); } catch { return 'must be an http(s) URL'; }
  if (u.hostname === '') return 'must be an http(s) URL';
  if (s.includes('\\')) return 'must not contain a backslash';
  const authority = s.slice(s.indexOf('//') + 2).split(/[/?#]/, 1)[0] ?? '';
  if (authority.includes('@')) return 'must not contain credentials (user:password@)';
  if (s.includes('#')) return 'must not have a fragment';
  if (rules.query !== true && s.includes('?')) return 'must not have a query';
  if (rules.path === false && u.pathname !== '/') return 'must be an origin (scheme, host and port; no path)';
  return undefined;
}

export function httpUrl(rules: UrlRules = {}): Schema<string> {
  return str((s) => httpUrlProblem(s, rules));
}

const DNS_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** A listen address: an IP address (IPv6 without brackets) or a host name. */
export function hostName(): Schema<string> {
  return str((s) => {
    if (isIP(s) !== 0 || DNS_NAME.test(s)) return undefined;
    if (/^\[.*\]$/.test(s)) return 'write IPv6 addresses without brackets';
    return 'must be an IP address or a host name';
  });
}

/** Reason the text is not an IP address or CIDR, or undefined. */
export function cidrProblem(s: string): string | undefined {
  const slash = s.indexOf('/');
  const addr = slash === -1 ? s : s.slice(0, slash);
  const family = isIP(addr);
  if (family === 0 || addr.includes('%')) return 'must be an IP address or CIDR (e.g. 10.0.0.0/8, fd00::/8)';
  if (slash === -1) return undefined;
  const bits = s.slice(slash + 1);
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return `prefix length must be between 0 and ${max}`;
  return undefined;
}

// RFC 3986 pchar minus percent-encoding, plus '/'.
const PATH_CHAR = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/]$/;

/** Reason `s` is not a canonical absolute path prefix, or undefined. */
export function canonicalPathProblem(s: string): string | undefined {
  if (!s.startsWith('/')) return 'must start with /';
  for (const ch of s) {
    if (PATH_CHAR.test(ch)) continue;
    const code = ch.codePointAt(0)!;
    if (code < 0x20 || code === 0x7f) return 'must not contain control characters';
    if (/\s/.test(ch)) return 'must not contain whitespace';
    if (code > 0x7e) return 'must contain only ASCII characters';
    return `must not contain "${ch}"`;
  }
  if (s.includes('//')) return 'must not contain empty segments (//)';
  for (const seg of s.split('/')) {
    if (seg === '.' || seg === '..' || seg.startsWith('.;') || seg.startsWith('..;')) {
      return 'must not contain . or .. segments';
    }
  }
  return undefined;
}

/** An OAuth scope token: no spaces, quotes or backslashes. */
export const scopeToken = (s: string): string | undefined => (/[\s"\\]/.test(s) ? 'must not contain spaces, quotes or backslashes' : undefined);

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** RFC 9110 token (header names, methods). */
export function isToken(s: string): boolean {
  return TOKEN.test(s);
}

// ---------------------------------------------------------------------------------------------
// Collections

export interface ArrayOptions<T> {
  /** Minimum number of items (default 0) and the reason reported when there are fewer. */
  readonly min?: number;
  readonly minReason?: string;
  /** Runs on the items that passed (with their paths), even when others did not. */
  readonly refine?: (items: ReadonlyArray<{ readonly value: T; readonly path: string }>, ctx: Context) => void;
}

export function array<T>(item: Schema<T>, opts: ArrayOptions<T> = {}): Schema<T[]> {
  return {
    check(value, path, ctx) {
      if (!Array.isArray(value)) return report(ctx, path, 'must be a list');
      const min = opts.min ?? 0;
      let ok = true;
      if (value.length < min) {
        ok = false;
        report(ctx, path, opts.minReason ?? (min === 1 ? 'must not be empty' : `must have at least ${min} items`));
      }
      const good: Array<{ value: T; path: string }> = [];
      value.forEach((v: unknown, i) => {
        const p = indexPath(path, i);
        const r = item.check(v, p, ctx);
        if (r === INVALID) ok = false; else good.push({ value: r, path: p });
      });
      const before = ctx.problems.length;
      opts.refine?.(good, ctx);
      if (ctx.problems.length !== before) ok = false;
      return ok ? good.map((g) => g.value) : INVALID;
    },
  };
}

/** A list of non-empty strings with at least one item. */
export function strings(check?: (s: string) => string | undefined): Schema<string[]> {
  return array(str(check), { min: 1 });
}

export function record<T>(item: Schema<T>, key?: (k: string) => string | undefined): Schema<Record<string, T>> {
  return {
    check(value, path, ctx) {
      if (!isMapping(value)) return report(ctx, path, 'must be a mapping');
      let ok = true;
      const out: Array<[string, T]> = [];
      for (const [k, v] of Object.entries(value)) {
        const p = childPath(path, k);
        const bad = key?.(k);
        if (bad !== undefined) { report(ctx, p, bad); ok = false; continue; }
        const r = item.check(v, p, ctx);
        if (r === INVALID) ok = false; else out.push([k, r]);
      }
      return ok ? Object.fromEntries(out) : INVALID;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Objects

export interface Field<T> {
  /** The YAML keys this field reads, given its name. */
  keys(name: string): readonly string[];
  read(obj: Record<string, unknown>, name: string, path: string, ctx: Context): Checked<T>;
}

/** A key that must be present. */
export function required<T>(schema: Schema<T>, reason = 'required'): Field<T> {
  return {
    keys: (name) => [name],
    read(obj, name, path, ctx) {
      const v = obj[name];
      const p = childPath(path, name);
      return isAbsent(v) ? report(ctx, p, reason) : schema.check(v, p, ctx);
    },
  };
}

/** A key that may be absent (or null), giving `def`. */
export function withDefault<T, D>(schema: Schema<T>, def: D): Field<T | D> {
  return {
    keys: (name) => [name],
    read(obj, name, path, ctx) {
      const v = obj[name];
      return isAbsent(v) ? def : schema.check(v, childPath(path, name), ctx);
    },
  };
}

/** Reads `xFile` relative to the config file's directory; one trailing newline stripped. */
function readSecretFile(rel: string, fp: string, ctx: Context): Checked<string> {
  const abs = resolve(ctx.baseDir, rel);
  let content: string;
  try {
    content = readFileSync(abs, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return report(ctx, fp, `cannot read file ${abs} (${code})`);
  }
  const value = content.endsWith('\r\n') ? content.slice(0, -2) : content.endsWith('\n') ? content.slice(0, -1) : content;
  return value === '' ? report(ctx, fp, `file ${abs} is empty`) : value;
}

/**
 * A secret `x` given inline or as `xFile` (a path relative to the config file's directory, read
 * once; one trailing newline stripped). Exactly one of the two keys is required, unless
 * `optional` (then neither gives null).
 */
export function secret(check?: (s: string) => string | undefined): Field<string>;
export function secret(check: ((s: string) => string | undefined) | undefined, optional: true): Field<string | null>;
export function secret(check?: (s: string) => string | undefined, optional = false): Field<string | null> {
  const text = str();
  return {
    keys: (name) => [name, `${name}File`],
    read(obj, name, path, ctx) {
      const fileKey = `${name}File`;
      const inline = obj[name];
      const file = obj[fileKey];
      const p = childPath(path, name);
      const fp = childPath(path, fileKey);
      if (!isAbsent(inline) && !isAbsent(file)) return report(ctx, p, `give either ${name} or ${fileKey}, not both`);
      if (isAbsent(inline) && isAbsent(file)) return optional ? null : report(ctx, p, `required (or ${fileKey})`);
      const at = isAbsent(inline) ? fp : p;
      const r = text.check(isAbsent(inline) ? file : inline, at, ctx);
      if (r === INVALID) return INVALID;
      const value = isAbsent(inline) ? readSecretFile(r, fp, ctx) : r;
      if (value === INVALID) return INVALID;
      const reason = check?.(value);
      return reason === undefined ? value : report(ctx, at, reason);
    },
  };
}

/**
 * One secret or a list of them (newest first, for key rotation): `x: s`, `x: [s1, s2]`, or `xFile`
 * holding one secret per line.
 */
export function secretList(check?: (s: string) => string | undefined): Field<string[]> {
  const one = secret(check);
  const list = array(str(check), { min: 1 });
  return {
    keys: (name) => [name, `${name}File`],
    read(obj, name, path, ctx) {
      const inline = obj[name];
      if (Array.isArray(inline)) {
        if (!isAbsent(obj[`${name}File`])) return report(ctx, childPath(path, name), `give either ${name} or ${name}File, not both`);
        return list.check(inline, childPath(path, name), ctx);
      }
      if (!isAbsent(inline)) {
        const v = one.read(obj, name, path, ctx);
        return v === INVALID ? INVALID : [v];
      }
      const file = obj[`${name}File`];
      if (isAbsent(file)) return report(ctx, childPath(path, name), `required (or ${name}File)`);
      const fp = childPath(path, `${name}File`);
      const rel = str().check(file, fp, ctx);
      if (rel === INVALID) return INVALID;
      const content = readSecretFile(rel, fp, ctx);
      if (content === INVALID) return INVALID;
      const lines = content.split(/\r?\n/).filter((l) => l !== '');
      let ok = true;
      lines.forEach((l, i) => {
        const reason = check?.(l);
        if (reason !== undefined) { report(ctx, fp, `line ${i + 1}: ${reason}`); ok = false; }
      });
      return ok ? lines : INVALID;
    },
  };
}

type FieldsOut<F> = { -readonly [K in keyof F]: F[K] extends Field<infer T> ? T : never };

export interface ObjectOptions {
  /** Extra explanation for an unknown key (e.g. "used by type client-credentials"). */
  readonly unknownHint?: (key: string) => string | undefined;
}

export interface ObjectSchema<T> extends Schema<T> {
  readonly knownKeys: readonly string[];
}

/** A mapping with exactly these fields; unknown keys are problems. Every field is checked. */
export function object<F extends Record<string, Field<unknown>>>(fields: F, opts: ObjectOptions = {}): ObjectSchema<FieldsOut<F>> {
  const entries = Object.entries(fields);
  const knownKeys = entries.flatMap(([name, f]) => f.keys(name));
  return {
    knownKeys,
    check(value, path, ctx) {
      if (!isMapping(value)) return report(ctx, path, 'must be a mapping');
      let ok = checkKeys(value, knownKeys, path, ctx, opts.unknownHint);
      const out: Record<string, unknown> = {};
      for (const [name, f] of entries) {
        const r = f.read(value, name, path, ctx);
        if (r === INVALID) ok = false; else out[name] = r;
      }
      return ok ? (out as FieldsOut<F>) : INVALID;
    },
  };
}

/** Runs `fn` on a value that passed `schema`: cross-field checks and derived values. */
export function refine<T, R>(schema: Schema<T>, fn: (value: T, path: string, ctx: Context) => Checked<R>): Schema<R> {
  return {
    check(value, path, ctx) {
      const r = schema.check(value, path, ctx);
      return r === INVALID ? INVALID : fn(r, path, ctx);
    },
  };
}

/** A mapping whose `tag` key selects one of `variants` (each an object schema that includes the tag). */
export function tagged<V extends Record<string, ObjectSchema<unknown>>>(
  tag: string, variants: V,
): Schema<{ [K in keyof V]: Infer<V[K]> }[keyof V]> {
  const names = Object.keys(variants);
  const tagSchema = oneOf(names);
  return {
    check(value, path, ctx) {
      if (!isMapping(value)) return report(ctx, path, 'must be a mapping');
      const p = childPath(path, tag);
      if (isAbsent(value[tag])) return report(ctx, p, `required: one of ${names.join(', ')}`);
      const t = tagSchema.check(value[tag], p, ctx);
      if (t === INVALID) return INVALID;
      return variants[t]!.check(value, path, ctx) as Checked<{ [K in keyof V]: Infer<V[K]> }[keyof V]>;
    },
  };
}

// ---------------------------------------------------------------------------------------------

/** Freezes a plain data tree (objects and arrays) in place and returns it. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
