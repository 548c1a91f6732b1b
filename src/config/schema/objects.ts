// Lists, mappings and objects built from field declarations. An object schema is the one
// declaration of its options: its keys, their checks and their defaults; the TypeScript type of
// the validated value is inferred from it (see types.ts).

import {
  INVALID, childPath, indexPath, isAbsent, isMapping, oneOf, report, str,
  type Checked, type Context, type Infer, type Schema,
} from './core.js';
import { suggest } from './suggest.js';

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

export interface ArrayOptions {
  /** Minimum number of items (default 0) and the reason reported when there are fewer. */
  readonly min?: number;
  readonly minReason?: string;
}

/** A list whose items all pass `item` (each problem reported at its index). Cross-item checks: uniqueBy. */
export function array<T>(item: Schema<T>, opts: ArrayOptions = {}): Schema<T[]> {
  return {
    check(value, path, ctx) {
      if (!Array.isArray(value)) return report(ctx, path, 'must be a list', typeof value === 'string' ? value : undefined);
      const min = opts.min ?? 0;
      let ok = true;
      if (value.length < min) {
        ok = false;
        report(ctx, path, opts.minReason ?? (min === 1 ? 'must not be empty' : `must have at least ${min} items`));
      }
      const good: T[] = [];
      value.forEach((v: unknown, i) => {
        const r = item.check(v, indexPath(path, i), ctx);
        if (r === INVALID) ok = false; else good.push(r);
      });
      return ok ? good : INVALID;
    },
  };
}

/**
 * `list`, plus: an item whose key (read from the item as written, without reporting) repeats an
 * earlier item's is reported at `<item>.<field>`, whatever other problems either item has.
 * `key` gives the comparable key and the value to quote, or undefined (absent or itself invalid).
 */
export function uniqueBy<T>(
  list: Schema<T[]>, field: string, what: string,
  key: (item: unknown, ctx: Context) => { readonly key: string; readonly shown: string } | undefined,
): Schema<T[]> {
  return {
    check(value, path, ctx) {
      const r = list.check(value, path, ctx);
      if (!Array.isArray(value)) return r;
      const seen = new Map<string, string>();
      let dup = false;
      value.forEach((item: unknown, i) => {
        const k = key(item, ctx);
        if (k === undefined) return;
        const p = indexPath(path, i);
        const first = seen.get(k.key);
        if (first === undefined) { seen.set(k.key, p); return; }
        dup = true;
        report(ctx, childPath(p, field), `is a duplicate ${what} (also ${first})`, k.shown);
      });
      return dup ? INVALID : r;
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

/**
 * A key whose default depends on other keys (see relations.ts): absent gives undefined, and the
 * section's `refine` fills in the default from what the user did set.
 */
export function adaptive<T>(schema: Schema<T>): Field<T | undefined> {
  return withDefault(schema, undefined);
}

type FieldsOut<F> = { -readonly [K in keyof F]: F[K] extends Field<infer T> ? T : never };

export interface ObjectOptions {
  /** Extra explanation for an unknown key (e.g. "used by type client-credentials"). */
  readonly unknownHint?: (key: string) => string | undefined;
}

export interface ObjectSchema<T> extends Schema<T> {
  readonly knownKeys: readonly string[];
  /** One key's value as the user set it, without reporting: undefined when absent or invalid. */
  peek<K extends keyof T & string>(value: unknown, key: K, ctx: Context): Exclude<T[K], undefined> | undefined;
}

/** A mapping with exactly these fields; unknown keys are problems. Every field is checked. */
export function object<F extends Record<string, Field<unknown>>>(fields: F, opts: ObjectOptions = {}): ObjectSchema<FieldsOut<F>> {
  const entries = Object.entries(fields);
  const knownKeys = entries.flatMap(([name, f]) => f.keys(name));
  return {
    knownKeys,
    peek(value, key, ctx) {
      const field = fields[key];
      if (!isMapping(value) || field === undefined || isAbsent(value[key])) return undefined;
      const r = field.read(value, key, '', { env: ctx.env, baseDir: ctx.baseDir, problems: [] });
      return r === INVALID || r === undefined ? undefined : r as Exclude<FieldsOut<F>[typeof key], undefined>;
    },
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

/** Runs `fn` on a value that passed `schema`: derived values and defaults that depend on others. */
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

/** The frozen form of a validated value: every object and list read-only, all the way down. */
export type DeepReadonly<T> =
  T extends ReadonlyArray<infer U> ? ReadonlyArray<DeepReadonly<U>>
    : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
      : T;

/** Freezes a plain data tree (objects and arrays) in place and returns it. */
export function deepFreeze<T>(value: T): DeepReadonly<T> {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value as DeepReadonly<T>;
}
