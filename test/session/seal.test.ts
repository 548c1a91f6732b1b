// Sealed cookie values: every kind of damage opens to null, never to a value and never a throw.
import t from 'tap';
import { Sealer } from '../../src/session/seal.js';

const S1 = 'first-secret-first-secret-first-secret!!';
const S2 = 'second-secret-second-secret-second-secret';
const S3 = 'third-secret-third-secret-third-secret-3';
const NOW = 1_800_000_000_000;
const LATER = NOW + 60_000;
const payload = { sub: 'alice', groups: ['readers', 'writers'], n: 42, nested: { ok: true } };

const sealer = new Sealer([S1]);

/** Flip one bit of the base64url character at `i` to another alphabet character. */
function flipChar(s: string, i: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const c = s[i]!;
  const idx = alphabet.indexOf(c);
  const other = idx === -1 ? 'A' : alphabet[idx ^ 1]!;
  return s.slice(0, i) + other + s.slice(i + 1);
}

t.test('round trip, cookie-safe output, fresh IV each time', async (t) => {
  const a = sealer.seal('session', payload, LATER);
  const b = sealer.seal('session', payload, LATER);
  t.same(sealer.open('session', a, NOW), payload);
  t.not(a, b, 'random IV: two seals of one payload differ');
  t.match(a, /^v1\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
  t.equal(a.split('.')[2] === b.split('.')[2], false);
  t.notMatch(a, /alice|readers/, 'payload is not readable');
  for (const p of [null, 0, 'text', [], [1, 'x'], { deep: { er: [1, { x: null }] } }, 'ünïcødé ✓']) {
    t.same(sealer.open('p', sealer.seal('p', p, LATER), NOW), p, `payload ${JSON.stringify(p)}`);
  }
});

t.test('expiry is sealed inside and enforced', async (t) => {
  const v = sealer.seal('session', payload, LATER);
  t.same(sealer.open('session', v, LATER - 1), payload, 'one ms before');
  t.equal(sealer.open('session', v, LATER), null, 'at expiresAtMs');
  t.equal(sealer.open('session', v, LATER + 1), null, 'after');
  t.equal(sealer.open('session', sealer.seal('session', payload, NOW - 1), NOW), null, 'sealed already expired');
});

t.test('a value sealed for one purpose never opens for another', async (t) => {
  const v = sealer.seal('flow', payload, LATER);
  for (const other of ['session', 'sid', 'Flow', 'flow ', '']) {
    t.equal(sealer.open(other, v, NOW), null, `purpose ${JSON.stringify(other)}`);
  }
  t.same(sealer.open('flow', v, NOW), payload);
});

t.test('tampering: a flipped character in every part, at every position', async (t) => {
  const v = sealer.seal('session', payload, LATER);
  const parts = v.split('.');
  const names = ['version', 'kid', 'iv', 'ciphertext', 'tag'];
  let offset = 0;
  for (const [p, part] of parts.entries()) {
    let opened = 0;
    for (let i = 0; i < part.length; i++) opened += sealer.open('session', flipChar(v, offset + i), NOW) === null ? 0 : 1;
    t.equal(opened, 0, `${names[p]}: no flipped position opens (${part.length} tried)`);
    offset += part.length + 1;
  }
});

t.test('tampering: structure, truncation and garbage', async (t) => {
  const v = sealer.seal('session', payload, LATER);
  const [ver, kid, iv, ct, tag] = v.split('.') as [string, string, string, string, string];
  const other = sealer.seal('session', { sub: 'mallory' }, LATER).split('.') as [string, string, string, string, string];
  const cases: Array<[string, unknown]> = [
    ['empty', ''],
    ['truncated by one', v.slice(0, -1)],
    ['truncated to half', v.slice(0, v.length >> 1)],
    ['extra char', v + 'A'],
    ['extra part', `${v}.AAAA`],
    ['missing part', [ver, kid, iv, ct].join('.')],
    ['tag shortened to 12 bytes', [ver, kid, iv, ct, Buffer.from(tag, 'base64url').subarray(0, 12).toString('base64url')].join('.')],
    ['tag shortened to 4 bytes', [ver, kid, iv, ct, Buffer.from(tag, 'base64url').subarray(0, 4).toString('base64url')].join('.')],
    ['empty ciphertext', [ver, kid, iv, '', tag].join('.')],
    ['iv of 16 bytes', [ver, kid, Buffer.alloc(16).toString('base64url'), ct, tag].join('.')],
    ['ciphertext of another value', [ver, kid, iv, other[3], tag].join('.')],
    ['tag of another value', [ver, kid, iv, ct, other[4]].join('.')],
    ['iv of another value', [ver, kid, other[2], ct, tag].join('.')],
    ['version v2', ['v2', kid, iv, ct, tag].join('.')],
    ['version V1', ['V1', kid, iv, ct, tag].join('.')],
    ['padding added', [ver, kid, iv, ct, `${tag}==`].join('.')],
    ['standard base64 chars', [ver, kid, iv, ct.replace(/-/g, '+').replace(/_/g, '/') + '+', tag].join('.')],
    ['whitespace', ` ${v}`],
    ['percent-encoded dot', v.replace('.', '%2E')],
    ['unknown kid', [ver, 'AAAAAA', iv, ct, tag].join('.')],
    ['non-canonical base64 (trailing bits)', [ver, kid, iv, ct, flipTrailingBits(tag)].join('.')],
    ['only dots', '....'],
    ['huge', 'v1.' + 'A'.repeat(300_000)],
    ['JSON', JSON.stringify(payload)],
    ['number', 42],
    ['null', null],
    ['undefined', undefined],
    ['object', { toString: () => v }],
  ];
  for (const [name, bad] of cases) {
    t.equal(sealer.open('session', bad as string, NOW), null, name);
  }
});

/** The last char of a 16-byte base64url value carries 4 unused bits: set one of them. */
function flipTrailingBits(s: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = alphabet.indexOf(s[s.length - 1]!);
  return s.slice(0, -1) + alphabet[last | 1]!;
}

t.test('key rotation: seal with the first, open with any, removed keys refused', async (t) => {
  const old = new Sealer([S1]);
  const rotated = new Sealer([S2, S1]);
  const dropped = new Sealer([S2]);
  const fromOld = old.seal('session', payload, LATER);
  const fromRotated = rotated.seal('session', payload, LATER);
  t.same(rotated.open('session', fromOld, NOW), payload, 'old key still opens');
  t.same(rotated.open('session', fromRotated, NOW), payload);
  t.same(dropped.open('session', fromRotated, NOW), payload, 'new key sealed it');
  t.equal(old.open('session', fromRotated, NOW), null, 'not sealed with the old key');
  t.equal(dropped.open('session', fromOld, NOW), null, 'removed key no longer opens');
  t.not(fromOld.split('.')[1], fromRotated.split('.')[1], 'kid differs by key');
  t.equal(new Sealer([S3]).open('session', fromOld, NOW), null, 'unrelated key');
  // A forged value under the old kid but encrypted with another key does not open.
  const forged = new Sealer([S3]).seal('session', payload, LATER).split('.');
  forged[1] = fromOld.split('.')[1]!;
  t.equal(rotated.open('session', forged.join('.'), NOW), null, 'kid swapped onto another key\'s value');
});

t.test('constructor and seal refuse programmer errors', async (t) => {
  t.throws(() => new Sealer([]), TypeError);
  t.throws(() => new Sealer(['too short']), TypeError);
  t.throws(() => new Sealer([S1, 'x'.repeat(31)]), TypeError);
  t.doesNotThrow(() => new Sealer(['x'.repeat(32)]));
  t.throws(() => sealer.seal('', payload, LATER), TypeError);
  t.throws(() => sealer.seal('p', payload, Number.NaN), TypeError);
  t.throws(() => sealer.seal('p', payload, Infinity), TypeError);
  t.throws(() => sealer.seal('p', undefined, LATER), TypeError);
  t.throws(() => sealer.seal('p', () => 1, LATER), TypeError);
});

t.test('the same secret twice in the list is harmless', async (t) => {
  const s = new Sealer([S1, S1]);
  t.same(s.open('x', sealer.seal('x', 1, LATER), NOW), 1);
});
