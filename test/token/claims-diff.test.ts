// Differential test: the hot-path claim checks (claims.ts validateClaims, on the payload the
// verifier decoded) against jose's own (joseValidateClaims: UnsecuredJWT.decode of the same
// payload segment, same options). Over the forged-claim table below (the claim rows of
// attacks.test.ts and more edge cases) and seeded random claim sets, both must give the same
// outcome every time: accepted with the same payload, or refused with the same reason.
import t, { type Test } from 'tap';
import { InvalidTokenError } from '../../src/errors.js';
import { joseValidateClaims, validateClaims, type ClaimOptions } from '../../src/token/claims.js';
import { decodeJsonObject } from '../../src/token/verify.js';

const ISS = 'https://idp.example/tenant/v2.0';
const AUD = 'https://cdf.example';
const AUD2 = 'api://gateway';
const NOW = 1_750_000_123_456; // ms, not on a second boundary
const SEC = Math.floor(NOW / 1000);

type Outcome = { ok: true; payload: unknown } | { ok: false; reason: string };

function outcome(fn: () => unknown): Outcome {
  try {
    return { ok: true, payload: fn() };
  } catch (e) {
    if (e instanceof InvalidTokenError) return { ok: false, reason: e.reason };
    return { ok: false, reason: `thrown ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}` };
  }
}

/** The hot path as verify.ts runs it: decode once (malformed if not an object), then the checks. */
function fast(part: string, opts: ClaimOptions): Outcome {
  return outcome(() => {
    const payload = decodeJsonObject(part);
    if (payload === null) throw new InvalidTokenError('malformed', 'payload is not a JSON object');
    return validateClaims(payload, opts);
  });
}

function reference(part: string, opts: ClaimOptions): Outcome {
  return outcome(() => joseValidateClaims(part, opts));
}

const b64 = (text: string) => Buffer.from(text).toString('base64url');
const json = (o: Record<string, unknown>) => JSON.stringify(o);
const good = (over: Record<string, unknown> = {}) => {
  const c: Record<string, unknown> = { iss: ISS, aud: AUD, sub: 'user-1', iat: SEC, exp: SEC + 3600, ...over };
  for (const [k, v] of Object.entries(over)) if (v === undefined) delete c[k];
  return json(c);
};

const options = (o: Partial<ClaimOptions> = {}): ClaimOptions => ({ issuer: ISS, audiences: [AUD, AUD2], clockToleranceSec: 30, now: NOW, ...o });

let compared = 0;
function same(t: Test, name: string, text: string, opts: ClaimOptions, expect?: string | null): void {
  const part = b64(text);
  const a = fast(part, opts);
  const b = reference(part, opts);
  compared++;
  t.same(a, b, `${name}: same outcome (${b.ok ? 'accepted' : b.reason})`);
  if (expect !== undefined) t.equal(b.ok ? null : b.reason, expect, `${name}: jose says ${expect ?? 'accepted'}`);
}

// The claim rows of attacks.test.ts (same expectations), and more.
const table: Array<[string, string, string | null, Partial<ClaimOptions>?]> = [
  ['valid', good(), null],
  ['wrong iss', good({ iss: 'http://evil.example' }), 'claim:iss'],
  ['iss with trailing slash', good({ iss: `${ISS}/` }), 'claim:iss'],
  ['iss differing in case', good({ iss: ISS.toUpperCase() }), 'claim:iss'],
  ['iss missing', good({ iss: undefined }), 'claim:iss'],
  ['iss an array', good({ iss: [ISS] }), 'claim:iss'],
  ['iss null', good({ iss: null }), 'claim:iss'],
  ['wrong aud', good({ aud: 'https://other.example' }), 'claim:aud'],
  ['aud array with one good entry', good({ aud: ['https://other.example', AUD] }), null],
  ['aud array, second configured audience', good({ aud: [AUD2] }), null],
  ['aud array without a good entry', good({ aud: ['https://other.example', `${AUD}/`] }), 'claim:aud'],
  ['aud array with non-strings and a good entry', good({ aud: [5, null, AUD] }), null],
  ['aud empty array', good({ aud: [] }), 'claim:aud'],
  ['aud a number', good({ aud: 5 }), 'claim:aud'],
  ['aud an object', good({ aud: { 0: AUD } }), 'claim:aud'],
  ['aud null', good({ aud: null }), 'claim:aud'],
  ['aud missing', good({ aud: undefined }), 'claim:aud'],
  ['exp missing', good({ exp: undefined }), 'claim:exp'],
  ['iat missing', good({ iat: undefined }), 'claim:iat'],
  ['sub missing', good({ sub: undefined }), 'claim:sub'],
  ['sub not a string (claims do not judge sub type)', good({ sub: 42 }), null],
  ['exp a string', good({ exp: String(SEC + 3600) }), 'claim:exp'],
  ['exp null', good({ exp: null }), 'claim:exp'],
  ['iat a string', good({ iat: String(SEC) }), 'claim:iat'],
  ['iat null', good({ iat: null }), 'claim:iat'],
  ['nbf a string', good({ nbf: String(SEC) }), 'claim:nbf'],
  ['nbf null', good({ nbf: null }), 'claim:nbf'],
  ['expired', good({ exp: SEC - 31 }), 'expired'],
  ['expired within tolerance', good({ exp: SEC - 20 }), null],
  ['exp exactly at now - tolerance', good({ exp: SEC - 30 }), 'expired'],
  ['exp one past now - tolerance', good({ exp: SEC - 29 }), null],
  ['exp fractional at the boundary', good({ exp: SEC - 29.5 }), null],
  ['nbf in the future beyond tolerance', good({ nbf: SEC + 31 }), 'claim:nbf'],
  ['nbf exactly now + tolerance', good({ nbf: SEC + 30 }), null],
  ['nbf in the future within tolerance', good({ nbf: SEC + 20 }), null],
  ['iat in the future beyond tolerance', good({ iat: SEC + 31 }), 'claim:iat'],
  ['iat exactly now + tolerance', good({ iat: SEC + 30 }), null],
  ['iat in the future within tolerance', good({ iat: SEC + 20 }), null],
  ['very old iat is fine (no max age policy)', good({ iat: SEC - 10 * 365 * 86400 }), null],
  ['iat -1e400 (−Infinity)', good().replace(`"iat":${SEC}`, '"iat":-1e400'), 'claim:iat'],
  ['exp 1e400 (Infinity)', good().replace(`"exp":${SEC + 3600}`, '"exp":1e400'), null],
  ['nbf 1e400 (Infinity)', good({ nbf: 0 }).replace('"nbf":0', '"nbf":1e400'), 'claim:nbf'],
  ['iat hugely negative', good({ iat: -Number.MAX_VALUE }), 'claim:iat'],
  ['everything missing', '{}', 'claim:iss'],
  ['several missing: order is jose\'s', json({ exp: SEC + 10 }), 'claim:iss'],
  ['missing aud and iat', good({ aud: undefined, iat: undefined }), 'claim:aud'],
  ['missing iat and sub', good({ iat: undefined, sub: undefined }), 'claim:iat'],
  ['missing sub and exp', good({ sub: undefined, exp: undefined }), 'claim:sub'],
  ['bad iat and bad nbf: iat first', good({ iat: 'x', nbf: 'y' }), 'claim:iat'],
  ['bad nbf and expired: nbf first', good({ nbf: 'y', exp: SEC - 100 }), 'claim:nbf'],
  ['future nbf and expired: nbf first', good({ nbf: SEC + 100, exp: SEC - 100 }), 'claim:nbf'],
  ['expired and future iat: exp first', good({ iat: SEC + 100, exp: SEC - 100 }), 'expired'],
  ['wrong iss and wrong aud: iss first', good({ iss: 'x', aud: 'y' }), 'claim:iss'],
  ['wrong aud and expired: aud first', good({ aud: 'y', exp: 1 }), 'claim:aud'],
  ['duplicate key: last wins', good().replace('{', `{"exp":${SEC - 1000},`), null],
  ['duplicate key: last wins (bad last)', good().slice(0, -1) + ',"exp":1}', 'expired'],
  ['__proto__ claim', good().replace('{', '{"__proto__":{"iss":"x"},'), null],
  ['tolerance 0: exp at now', good({ exp: SEC }), 'expired', { clockToleranceSec: 0 }],
  ['tolerance 0: exp now + 1', good({ exp: SEC + 1 }), null, { clockToleranceSec: 0 }],
  ['tolerance 0: iat now + 1', good({ iat: SEC + 1 }), 'claim:iat', { clockToleranceSec: 0 }],
  ['tolerance 300: exp now - 299', good({ exp: SEC - 299 }), null, { clockToleranceSec: 300 }],
  ['payload an array', '[1,2]', 'malformed'],
  ['payload a string', '"sub"', 'malformed'],
  ['payload null', 'null', 'malformed'],
  ['payload a number', '42', 'malformed'],
  ['payload not JSON', 'not json', 'malformed'],
];

t.test('forged-claim table', async (t) => {
  for (const [name, text, expect, o] of table) same(t, name, text, options(o), expect);
});

t.test('payload invalid UTF-8', async (t) => {
  const part = Buffer.from([0x7b, 0xff, 0x7d]).toString('base64url');
  t.same(fast(part, options()), reference(part, options()));
  t.same(fast(part, options()), { ok: false, reason: 'malformed' });
});

// Seeded PRNG (mulberry32): the same random claim sets on every run.
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

t.test('random claim sets', async (t) => {
  const rand = rng(0x5eed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const junk = [null, true, false, 0, -1, '', 'x', [], {}, [ISS], { a: 1 }, 1.5, String(SEC)];
  const times = (base: number) => [
    base, base - 1, base + 1, base - 29, base - 30, base - 31, base + 29, base + 30, base + 31,
    base - 300, base + 300, base - 301, base + 301, base + 0.5, base - 0.5, base + 3600, base - 3600, 0, -1,
    Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 1e300, -1e300,
  ];
  // [claim, P(present), P(a well-formed value | present), well-formed values, anything else]
  const claimsSpec: Array<[string, number, number, readonly unknown[], readonly unknown[]]> = [
    ['iss', 0.97, 0.93, [ISS], [`${ISS}/`, 'other', ...junk]],
    ['aud', 0.95, 0.85, [AUD, AUD2, [AUD], [AUD2, 'x'], ['x', AUD], [1, AUD]], ['x', ['x'], [null], ...junk]],
    ['sub', 0.97, 0.9, ['user-1', 'u', 42], [null, '', ...junk]],
    ['iat', 0.96, 0.92, times(SEC), junk],
    ['exp', 0.96, 0.92, [...times(SEC), ...times(SEC + 3600)], junk],
    ['nbf', 0.3, 0.85, times(SEC), junk],
    ['extra', 0.4, 1, ['v', 1, null, { nested: [1, 2] }], []],
  ];
  const seen = new Map<string, number>();
  for (let i = 0; i < 20_000; i++) {
    const c: Record<string, unknown> = {};
    for (const [k, pPresent, pGood, goodValues, otherValues] of claimsSpec) {
      if (rand() >= pPresent) continue;
      c[k] = rand() < pGood || otherValues.length === 0 ? pick(goodValues) : pick(otherValues);
    }
    let text = JSON.stringify(c);
    // JSON cannot write ±Infinity; a number too large for a double parses as one.
    if (rand() < 0.03) text = text.replace(/"(exp|iat|nbf)":-?\d+(\.\d+)?(e\+?\d+)?/, (_m, k: string) => `"${k}":${rand() < 0.5 ? '-' : ''}1e400`);
    const opts = options({
      clockToleranceSec: pick([0, 1, 30, 300]),
      now: NOW + Math.floor((rand() - 0.5) * 4000),
      audiences: pick([[AUD], [AUD, AUD2], [AUD2]]),
    });
    const part = b64(text);
    const a = fast(part, opts);
    const b = reference(part, opts);
    compared++;
    const key = b.ok ? 'accepted' : b.reason;
    seen.set(key, (seen.get(key) ?? 0) + 1);
    if (JSON.stringify(a) !== JSON.stringify(b) || a.ok !== b.ok) {
      t.same(a, b, `random #${i}: ${text} with ${JSON.stringify(opts)}`);
      return;
    }
  }
  t.pass('20,000 random claim sets: same outcome');
  // The sets reach every outcome, acceptance included, often enough to mean something.
  for (const k of ['accepted', 'expired', 'claim:iss', 'claim:aud', 'claim:iat', 'claim:sub', 'claim:exp', 'claim:nbf']) {
    t.ok((seen.get(k) ?? 0) >= 50, `${k}: ${seen.get(k) ?? 0}`);
  }
});

t.test('count', async (t) => {
  t.ok(compared > 20_000, `${compared} comparisons`);
});
