// Secrets given inline or as `xFile` (a path relative to the config file's directory, read once).
// A secret's value never appears in a problem.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

import { INVALID, childPath, isAbsent, report, str, type Checked, type Context } from './core.js';
import { array, type Field } from './objects.js';

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
 * A secret `x` given inline or as `xFile` (one trailing newline stripped). Exactly one of the two
 * keys is required, unless `optional` (then neither gives null).
 */
export function secret(check?: (s: string) => string | undefined): Field<string>;
export function secret(check: ((s: string) => string | undefined) | undefined, optional: true): Field<string | null>;
export function secret(check?: (s: string) => string | undefined, optional = false): Field<string | null> {
  const text = str(undefined, { secret: true });
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
      const r = isAbsent(inline) ? str().check(file, fp, ctx) : text.check(inline, p, ctx);
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
  const list = array(str(check, { secret: true }), { min: 1 });
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
