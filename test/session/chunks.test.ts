// Chunked cookies: split at the size limit, reassembled only from the exact set that was written.
import t from 'tap';
import { DEFAULT_MAX_BYTES, MAX_CHUNKS, cookieNamesOf, joinCookie, splitCookie, type CookieOut } from '../../src/session/chunks.js';
import { Sealer } from '../../src/session/seal.js';

const NAME = 'cdf-gw';
const toMap = (cs: readonly CookieOut[]): Record<string, string> => Object.fromEntries(cs.map((c) => [c.name, c.value]));
const text = (n: number) => Array.from({ length: n }, (_, i) => 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.'[i % 65]).join('');

t.test('short values stay one plain cookie', async (t) => {
  t.same(splitCookie(NAME, 'abc'), [{ name: NAME, value: 'abc' }]);
  t.same(splitCookie(NAME, text(DEFAULT_MAX_BYTES)), [{ name: NAME, value: text(DEFAULT_MAX_BYTES) }], 'exactly at the limit');
  t.equal(joinCookie(NAME, { [NAME]: 'abc', other: 'x' }), 'abc');
});

t.test('long values split into numbered chunks within the limit and join back', async (t) => {
  for (const [len, max] of [[DEFAULT_MAX_BYTES + 1, undefined], [10_000, undefined], [37_000, undefined], [90, 10], [30, 8]] as const) {
    const v = text(len);
    const cs = splitCookie(NAME, v, max);
    const limit = max ?? DEFAULT_MAX_BYTES;
    t.ok(cs.length >= 2 && cs.length <= MAX_CHUNKS, `${len}/${limit}: ${cs.length} chunks`);
    t.same(cs.map((c) => c.name), cs.map((_, i) => `${NAME}.${i}`));
    t.ok(cs.every((c) => c.value.length > 0 && c.value.length <= limit), 'every chunk within the limit, none empty');
    t.match(cs[0]!.value, new RegExp(`^${cs.length}~`), 'first chunk records the count');
    t.equal(joinCookie(NAME, toMap(cs)), v, 'joins back');
    t.equal(joinCookie(NAME, { ...toMap(cs), unrelated: 'x', [`${NAME}-flow`]: 'y', [`${NAME}.x`]: 'z' }), v, 'other cookies ignored');
  }
});

t.test('split refuses values it cannot write', async (t) => {
  t.throws(() => splitCookie(NAME, text(MAX_CHUNKS * DEFAULT_MAX_BYTES)), RangeError, 'more than MAX_CHUNKS');
  t.doesNotThrow(() => splitCookie(NAME, text(MAX_CHUNKS * DEFAULT_MAX_BYTES - 3)), 'exactly MAX_CHUNKS');
  for (const bad of ['a b', 'a;b', 'a,b', 'a"b', 'a\\b', 'é', 'a\nb']) {
    t.throws(() => splitCookie(NAME, bad), TypeError, JSON.stringify(bad));
  }
  t.throws(() => splitCookie(NAME, 'abc', 0), RangeError);
});

t.test('join refuses anything but the exact set', async (t) => {
  const v = text(10_000);
  const cs = toMap(splitCookie(NAME, v)); // 3 chunks
  t.equal(Object.keys(cs).length, 3);
  const without = (k: string) => { const m = { ...cs }; delete m[k]; return m; };
  const first = cs[`${NAME}.0`]!;
  const cases: Array<[string, Record<string, string | undefined>]> = [
    ['absent', {}],
    ['plain empty', { [NAME]: '' }],
    ['plain undefined', { [NAME]: undefined }],
    ['missing middle chunk', without(`${NAME}.1`)],
    ['missing last chunk', without(`${NAME}.2`)],
    ['missing first chunk', without(`${NAME}.0`)],
    ['extra chunk', { ...cs, [`${NAME}.3`]: 'AAAA' }],
    ['far extra chunk', { ...cs, [`${NAME}.9`]: 'AAAA' }],
    ['first and second swapped', { ...cs, [`${NAME}.0`]: cs[`${NAME}.1`], [`${NAME}.1`]: first }],
    ['plain and chunked both present', { ...cs, [NAME]: 'abc' }],
    ['count says 2', { ...cs, [`${NAME}.0`]: first.replace(/^3~/, '2~') }],
    ['count says 4', { ...cs, [`${NAME}.0`]: first.replace(/^3~/, '4~') }],
    ['count missing', { ...cs, [`${NAME}.0`]: first.replace(/^3~/, '') }],
    ['count 03', { ...cs, [`${NAME}.0`]: first.replace(/^3~/, '03~') }],
    ['count 1', { [`${NAME}.0`]: '1~abc' }],
    ['count 0', { [`${NAME}.0`]: '0~abc' }],
    ['count negative', { [`${NAME}.0`]: '-2~abc', [`${NAME}.1`]: 'x' }],
    ['empty first chunk data', { [`${NAME}.0`]: '2~', [`${NAME}.1`]: 'abc' }],
    ['empty middle chunk', { ...cs, [`${NAME}.1`]: '' }],
    ['undefined chunk', { ...cs, [`${NAME}.1`]: undefined }],
    ['non-canonical index 01', { [`${NAME}.0`]: cs[`${NAME}.0`], [`${NAME}.01`]: cs[`${NAME}.1`], [`${NAME}.2`]: cs[`${NAME}.2`] }],
    ['index with leading zero 00', { [`${NAME}.00`]: cs[`${NAME}.0`], [`${NAME}.1`]: cs[`${NAME}.1`], [`${NAME}.2`]: cs[`${NAME}.2`] }],
    ['too many chunks', Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`${NAME}.${i}`, i === 0 ? '12~a' : 'a']))],
    ['count 11 with 11 chunks', Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`${NAME}.${i}`, i === 0 ? '11~a' : 'a']))],
  ];
  for (const [name, cookies] of cases) t.equal(joinCookie(NAME, cookies), null, name);
  t.equal(joinCookie(NAME, cs), v, 'the untouched set still joins');
});

t.test('reordered later chunks join to a different string, which the seal refuses', async (t) => {
  const sealer = new Sealer(['a-cookie-secret-of-at-least-32-bytes!!']);
  const now = Date.now();
  const sealed = sealer.seal('session', { blob: text(9000) }, now + 60_000);
  const cs = toMap(splitCookie(NAME, sealed));
  t.ok(Object.keys(cs).length >= 3);
  const swapped = { ...cs, [`${NAME}.1`]: cs[`${NAME}.2`], [`${NAME}.2`]: cs[`${NAME}.1`] };
  const joined = joinCookie(NAME, swapped);
  t.not(joined, sealed);
  t.equal(sealer.open('session', joined ?? '', now), null);
  t.same(sealer.open('session', joinCookie(NAME, cs) ?? '', now), { blob: text(9000) });
  // Chunks of two different values mixed: the count agrees, the seal does not.
  const other = toMap(splitCookie(NAME, sealer.seal('session', { blob: text(9000) }, now + 60_000)));
  const mixed = { ...cs, [`${NAME}.1`]: other[`${NAME}.1`] };
  t.equal(sealer.open('session', joinCookie(NAME, mixed) ?? '', now), null);
});

t.test('cookieNamesOf lists the plain and every chunk name, nothing else', async (t) => {
  const cookies = {
    [NAME]: 'a', [`${NAME}.0`]: 'b', [`${NAME}.7`]: 'c', [`${NAME}.01`]: 'd', [`${NAME}.`]: 'e', [`${NAME}.x`]: 'f',
    [`${NAME}-flow`]: 'g', [`${NAME}-flow.0`]: 'h', [`x${NAME}`]: 'i', [`${NAME}.1.2`]: 'j', other: 'k',
  };
  t.same(cookieNamesOf(NAME, cookies).sort(), [NAME, `${NAME}.0`, `${NAME}.01`, `${NAME}.7`].sort());
  t.same(cookieNamesOf(NAME, {}), []);
  // A shrinking value: the old chunks are all named, so they can be expired.
  const before = toMap(splitCookie(NAME, text(10_000)));
  const after = splitCookie(NAME, 'short');
  const stale = cookieNamesOf(NAME, before).filter((n) => !after.some((c) => c.name === n));
  t.same(stale.sort(), [`${NAME}.0`, `${NAME}.1`, `${NAME}.2`]);
});

t.test('names with regex metacharacters are matched literally', async (t) => {
  const name = '__Host-cdf-gw+x';
  const cs = toMap(splitCookie(name, text(5000)));
  t.equal(joinCookie(name, cs), text(5000));
  t.same(cookieNamesOf('__Host-cdf-gw', cs), []);
});
