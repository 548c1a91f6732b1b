// The claim-set checks of claims.ts against jose's own (UnsecuredJWT.decode with the options the
// verifier used to give it): over a generated corpus of payloads, both accept the same claim sets,
// as the same objects, and refuse the rest with the same error class, message, claim and reason.
import { isDeepStrictEqual } from 'node:util';
import t from 'tap';
import { UnsecuredJWT, type JWTClaimVerificationOptions } from 'jose';
import { checkClaims, claimRules, decodeClaims, type ClaimRules } from '../../src/token/claims.js';

const NONE = Buffer.from('{"alg":"none"}').toString('base64url');
const I1 = 'https://idp.example/tenant/v2.0';
const I2 = 'https://other.example';
const A1 = 'api://cdf';
const A2 = 'https://cdf.example';
const REQUIRED = ['aud', 'exp', 'iat', 'iss', 'sub'];
const REQUIRED_NO_AUD = ['exp', 'iat', 'iss', 'sub'];

interface Setting { name: string; rules: ClaimRules; jose: JWTClaimVerificationOptions }
function setting(name: string, requiredClaims: string[], issuers: string[], audiences: string[] | undefined, clockTolerance: number): Setting {
  return {
    name,
    rules: claimRules({ requiredClaims, issuers, audiences, clockTolerance }),
    jose: {
      requiredClaims, issuer: issuers, clockTolerance, maxTokenAge: Number.MAX_SAFE_INTEGER,
      ...(audiences === undefined ? {} : { audience: audiences }),
    },
  };
}
const SETTINGS = [
  setting('two issuers, shared audiences, 30 s', REQUIRED, [I1, I2], [A1, A2], 30),
  setting('one issuer and audience, no tolerance', REQUIRED, [I1], [A1], 0),
  setting('audience in another claim (no aud rule)', REQUIRED_NO_AUD, [I1], undefined, 5),
];

type Outcome = { ok: true; claims: unknown } | { ok: false; error: string; message: string; claim?: unknown; reason?: unknown };
function outcome(fn: () => unknown): Outcome {
  try {
    return { ok: true, claims: fn() };
  } catch (e) {
    const err = e as Error & { claim?: unknown; reason?: unknown };
    return { ok: false, error: err.constructor.name, message: err.message, claim: err.claim, reason: err.reason };
  }
}
const byJose = (part: string, s: Setting, nowMs: number) => outcome(() => UnsecuredJWT.decode(`${NONE}.${part}.`, { ...s.jose, currentDate: new Date(nowMs) }).payload);
const byUs = (part: string, s: Setting, nowMs: number) => outcome(() => {
  const claims = decodeClaims(part);
  checkClaims(claims, s.rules, Math.floor(nowMs / 1000));
  return claims;
});

// A small seeded generator: the corpus is the same on every run.
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
}

const NOW = 1_800_000_000;
const NOW_MS = NOW * 1000 + 999; // jose floors to whole seconds; so must we
const INF = '\u0000inf'; // written as 1e400 in the JSON text (JSON.parse: Infinity)
const NEG_INF = '\u0000-inf';
const CLAIMS = ['iss', 'sub', 'aud', 'exp', 'iat', 'nbf'];
function values(): unknown[] {
  const times = [-31, -30, -29, -6, -5, -4, -1, 0, 1, 4, 5, 6, 29, 30, 31, 3600].map((d) => NOW + d);
  return [...times, NOW + 0.5, NOW - 0.5, '1800000000', '', 'user-1', I1, I2, `${I1}/`, A1, A2, 'api://CDF',
    null, true, false, 0, -1, [], {}, [A1], [A2, 'x'], ['x'], [1, A1], [null], [[A1]], { aud: A1 }, INF, NEG_INF];
}
const VALUES = values();

function payloadText(claims: Record<string, unknown>): string {
  return JSON.stringify(claims).replaceAll(JSON.stringify(INF), '1e400').replaceAll(JSON.stringify(NEG_INF), '-1e400');
}
const b64 = (text: string | Buffer) => Buffer.from(text).toString('base64url');

function corpus(): string[] {
  const rand = prng(7);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const parts: string[] = [];
  const base = () => ({ iss: I1, sub: 'user-1', aud: A1, iat: NOW - 60, exp: NOW + 3600 } as Record<string, unknown>);
  parts.push(b64(payloadText(base())));
  for (const claim of CLAIMS) {
    const without = base();
    delete without[claim];
    parts.push(b64(payloadText(without)));
    for (const v of VALUES) parts.push(b64(payloadText({ ...base(), [claim]: v })));
  }
  for (let i = 0; i < 2500; i++) {
    const c = base();
    const changes = 1 + Math.floor(rand() * 3);
    for (let k = 0; k < changes; k++) {
      const claim = pick(CLAIMS);
      if (rand() < 0.2) delete c[claim];
      else c[claim] = pick(VALUES);
    }
    parts.push(b64(payloadText(c)));
  }
  // Not a claim set, or not plain: each must fail (or pass) as jose's does.
  for (const text of ['[]', 'null', '1', '"s"', '{', '', ' {"a":1} ', '{"iss":1}{', `{"iss":"${I1}","iss":"${I2}","sub":"s","aud":"${A1}","iat":${NOW},"exp":${NOW + 9}}`]) parts.push(b64(text));
  parts.push(b64(`{"__proto__":{"iss":"${I1}"},"sub":"s","aud":"${A1}","iat":${NOW},"exp":${NOW + 9}}`));
  parts.push(b64(payloadText({ ...base(), sub: 'ünïcødé ✓ 𝄞' })));
  parts.push(b64(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(payloadText(base()))]))); // BOM
  parts.push(b64(Buffer.concat([Buffer.from(payloadText(base()).slice(0, -1)), Buffer.from(',"x":"\xff"}', 'latin1')]))); // bad UTF-8
  parts.push(b64(Buffer.from([0xc3, 0x28])));
  return parts;
}

t.test('claims.ts decides every claim set of the corpus as jose does', async (t) => {
  const parts = corpus();
  for (const s of SETTINGS) {
    const mismatches: string[] = [];
    const seen = new Map<string, number>();
    for (const part of parts) {
      const want = byJose(part, s, NOW_MS);
      const got = byUs(part, s, NOW_MS);
      const key = want.ok ? 'accepted' : `${want.error}: ${want.message}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
      if (JSON.stringify(want) !== JSON.stringify(got) || (want.ok && got.ok && !isDeepStrictEqual(want.claims, got.claims))) {
        mismatches.push(`${Buffer.from(part, 'base64url').toString()}\n  jose: ${JSON.stringify(want)}\n  ours: ${JSON.stringify(got)}`);
      }
    }
    t.same(mismatches.slice(0, 5), [], `${s.name}: ${parts.length} payloads, ${mismatches.length} decided differently`);
    // The corpus must exercise every rule, or agreeing proves little.
    const kinds = [...seen.keys()];
    t.ok((seen.get('accepted') ?? 0) > 50, `${s.name}: ${seen.get('accepted')} accepted`);
    for (const want of [/^JWTInvalid: JWT Claims Set must be a top-level JSON object$/, /missing required "iss"/, /missing required "sub"/,
      /missing required "exp"/, /missing required "iat"/, /unexpected "iss"/, /"nbf" claim must be a number/, /"nbf" claim timestamp/,
      /"exp" claim must be a number/, /^JWTExpired: "exp" claim timestamp/, /"iat" claim must be a number/, /it should be in the past/,
      /too far in the past/]) {
      t.ok(kinds.some((k) => want.test(k)), `${s.name}: the corpus reaches ${want}`);
    }
    if (s.rules.audiences !== undefined) {
      t.ok(kinds.some((k) => /missing required "aud"/.test(k)) && kinds.some((k) => /unexpected "aud"/.test(k)), `${s.name}: the corpus reaches the aud rules`);
    }
  }
});

t.test('claimRules checks presence in jose\'s order', async (t) => {
  t.same(claimRules({ requiredClaims: REQUIRED, issuers: [I1], audiences: [A1], clockTolerance: 0 }).present, ['iss', 'aud', 'iat', 'sub', 'exp']);
  t.same(claimRules({ requiredClaims: REQUIRED_NO_AUD, issuers: [I1], clockTolerance: 0 }).present, ['iss', 'iat', 'sub', 'exp']);
  // Several missing: the first in that order is named, as jose names it.
  const s = SETTINGS[0]!;
  const part = b64(JSON.stringify({ sub: 's' }));
  t.match(byUs(part, s, NOW_MS), { ok: false, message: 'missing required "iss" claim' });
  t.same(byUs(part, s, NOW_MS), byJose(part, s, NOW_MS));
});

t.test('the time rules at their edges, whole seconds as jose counts them', async (t) => {
  const s = SETTINGS[1]!; // no tolerance
  const at = (claims: Record<string, unknown>) => b64(JSON.stringify({ iss: I1, sub: 's', aud: A1, iat: NOW, exp: NOW + 60, ...claims }));
  t.match(byUs(at({ exp: NOW }), s, NOW_MS), { ok: false, error: 'JWTExpired', claim: 'exp' }, 'exp == now: expired');
  t.match(byUs(at({ exp: NOW + 1 }), s, NOW_MS), { ok: true }, 'exp one second ahead: accepted, though now is .999 past');
  t.match(byUs(at({ nbf: NOW + 1 }), s, NOW_MS), { ok: false, claim: 'nbf' });
  t.match(byUs(at({ nbf: NOW }), s, NOW_MS), { ok: true });
  t.match(byUs(at({ iat: NOW + 1 }), s, NOW_MS), { ok: false, claim: 'iat', reason: 'check_failed' });
  t.match(byUs(at({ exp: 1e300 }), s, NOW_MS), { ok: true }, 'a far exp passes here (principal.ts refuses a non-finite one)');
});
