// Long cookie values (sessions holding Entra tokens with many groups) split across several
// cookies, because browsers drop a cookie over ~4 KB (name, value and attributes together).
//
//   short:  name=<value>
//   long:   name.0=<count>~<part 0>   name.1=<part 1>   …   name.<count-1>=<part count-1>
//
// The count on the first chunk makes a partial set (a chunk dropped or left over from a larger
// earlier value) detectable here; a set mixing chunks of two values is caught by the seal.
// joinCookie refuses anything but the exact shape splitCookie writes.

export interface CookieOut { readonly name: string; readonly value: string }

/** Per cookie value: leaves room under the browsers' 4096 bytes for the name and attributes. */
export const DEFAULT_MAX_BYTES = 3800;
/** At most this many chunks: bounds the work per request and the header size (10 × 3800 B). */
export const MAX_CHUNKS = 10;
const COUNT_SEP = '~';
/** RFC 6265 cookie-octet: the value must need no quoting or encoding. */
const COOKIE_OCTETS = /^[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*$/;
/** Chunk indexes in canonical decimal: 0, 1, … 9 (MAX_CHUNKS ≤ 10), never 00 or 01. */
const CANONICAL_INDEX = /^(0|[1-9][0-9]*)$/;
const ANY_INDEX = /^[0-9]+$/;

/**
 * One cookie `name` when value.length ≤ maxBytes, else `${name}.0` … each ≤ maxBytes. Throws
 * (programmer error) when the value is not made of cookie-octets or needs more than MAX_CHUNKS.
 */
export function splitCookie(name: string, value: string, maxBytes: number = DEFAULT_MAX_BYTES): CookieOut[] {
  if (!COOKIE_OCTETS.test(value)) throw new TypeError('splitCookie: value must be cookie-octets (ASCII, no space, ", comma, ; or \\)');
  if (!Number.isInteger(maxBytes) || maxBytes < 8) throw new RangeError('splitCookie: maxBytes must be an integer ≥ 8');
  if (value.length <= maxBytes) return [{ name, value }];
  // The count prefix (at most "10~") is taken from the first chunk's room.
  for (let count = 2; count <= MAX_CHUNKS; count++) {
    const prefix = `${count}${COUNT_SEP}`;
    const first = maxBytes - prefix.length;
    // The smallest count that fits, so the last chunk is never empty.
    if (first + (count - 1) * maxBytes < value.length) continue;
    const out: CookieOut[] = [{ name: `${name}.0`, value: prefix + value.slice(0, first) }];
    for (let i = 1, at = first; i < count; i++, at += maxBytes) {
      out.push({ name: `${name}.${i}`, value: value.slice(at, at + maxBytes) });
    }
    return out;
  }
  throw new RangeError(`splitCookie: value of ${value.length} chars needs more than ${MAX_CHUNKS} cookies of ${maxBytes}`);
}

/** The chunk index of `key` for cookie `name` (any digits), or null when `key` is no chunk of it. */
function chunkSuffix(name: string, key: string): string | null {
  if (key.length <= name.length + 1 || !key.startsWith(name) || key[name.length] !== '.') return null;
  const suffix = key.slice(name.length + 1);
  return ANY_INDEX.test(suffix) ? suffix : null;
}

/**
 * The value from a parsed cookie map, or null when absent, empty, or not exactly the shape
 * splitCookie writes: both plain and chunked forms present, a missing, extra, empty or
 * non-canonically numbered chunk, or a count that disagrees or exceeds MAX_CHUNKS.
 */
export function joinCookie(name: string, cookies: Readonly<Record<string, string | undefined>>): string | null {
  const plain = Object.hasOwn(cookies, name) ? cookies[name] : undefined;
  const chunks = new Map<number, string>();
  for (const key of Object.keys(cookies)) {
    const suffix = chunkSuffix(name, key);
    if (suffix === null) continue;
    const value = cookies[key];
    if (!CANONICAL_INDEX.test(suffix) || typeof value !== 'string' || value.length === 0) return null;
    if (chunks.size >= MAX_CHUNKS) return null;
    chunks.set(Number(suffix), value);
  }
  if (chunks.size === 0) return typeof plain === 'string' && plain.length > 0 ? plain : null;
  if (plain !== undefined) return null;
  const first = chunks.get(0);
  if (first === undefined) return null;
  const sep = first.indexOf(COUNT_SEP);
  const countText = first.slice(0, sep);
  if (sep < 1 || !CANONICAL_INDEX.test(countText)) return null;
  const count = Number(countText);
  if (count < 2 || count > MAX_CHUNKS || chunks.size !== count) return null;
  const parts = [first.slice(sep + 1)];
  for (let i = 1; i < count; i++) {
    const part = chunks.get(i);
    if (part === undefined) return null;
    parts.push(part);
  }
  if (parts[0] === '') return null;
  return parts.join('');
}

/** Every name in `cookies` that belongs to `name` (plain, or `${name}.<digits>`), to expire stale ones. */
export function cookieNamesOf(name: string, cookies: Readonly<Record<string, string | undefined>>): string[] {
  return Object.keys(cookies).filter((key) => key === name || chunkSuffix(name, key) !== null);
}
