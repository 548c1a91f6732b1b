import t from 'tap';
import { InvalidTokenError } from '../../src/errors.js';
import { principalFromClaims } from '../../src/token/principal.js';
import { HEADER_SAFE } from '../../src/upstream/headers.js';

function reasonOf(fn: () => unknown): string | undefined {
  try { fn(); } catch (e) { return e instanceof InvalidTokenError ? e.reason : `not InvalidTokenError: ${String(e)}`; }
  return undefined;
}

const base = { iss: 'https://idp', sub: 'user-1', aud: 'a', exp: 2_000_000_000, iat: 1_900_000_000 };

t.test('basic fields', async (t) => {
  const p = principalFromClaims({ ...base, email: 'u@example.com' });
  t.equal(p.sub, 'user-1');
  t.equal(p.email, 'u@example.com');
  t.equal(p.issuer, 'https://idp');
  t.equal(p.expiresAt, 2_000_000_000_000, 'exp in ms');
  t.notOk('token' in p, 'no raw token: the Principal is cached beyond the request');
  t.same(p.groups, []);
  t.equal(p.groupsHeader, '');
  t.equal(p.scopes.size, 0);
  t.ok(Object.isFrozen(p));
});

t.test('groups: string entries only; header drops unsafe entries whole', async (t) => {
  const p = principalFromClaims({
    ...base,
    groups: ['readers', 42, null, { a: 1 }, 'writers', 'a,b', 'evil\r\nX-Injected: 1', 'nul\u0000', 'tab\there', 'del\u007f',
      '', ' padded', 'sp ace', 'ünïcode', '组'],
  });
  t.same(p.groups, ['readers', 'writers', 'a,b', 'evil\r\nX-Injected: 1', 'nul\u0000', 'tab\there', 'del\u007f', '', ' padded', 'sp ace', 'ünïcode', '组']);
  t.equal(p.groupsHeader, 'readers,writers,sp ace');
  t.notOk(/[\r\n\0]/.test(p.groupsHeader));
});

t.test('marked header-safe, and the mark holds: every identity value passes the header rules\' check', async (t) => {
  const hostile = ['evil\r\nX-Injected: 1', 'nul\u0000', 'tab\there', 'del\u007f', 'ünïcode', '组', ' padded', 'a,b', 'readers'];
  const cases = [
    { ...base, email: 'u@example.com', groups: hostile },
    ...hostile.map((v) => ({ ...base, email: v, groups: [v, 'ok'] })),
  ];
  for (const claims of cases) {
    const p = principalFromClaims(claims);
    t.equal(p.headerSafe, true, JSON.stringify(claims.groups));
    for (const v of [p.sub, p.email ?? '', p.groupsHeader]) t.ok(HEADER_SAFE.test(v), `${JSON.stringify(v)} is a header value`);
  }
});

t.test('groups that is not an array is ignored', async (t) => {
  t.same(principalFromClaims({ ...base, groups: 'readers' }).groups, []);
  t.same(principalFromClaims({ ...base, groups: { 0: 'readers' } }).groups, []);
});

t.test('scopes: union of scp (string or array) and scope', async (t) => {
  t.same([...principalFromClaims({ ...base, scp: 'a b  c' }).scopes].sort(), ['a', 'b', 'c']);
  t.same([...principalFromClaims({ ...base, scp: ['a', 'b', 3] }).scopes].sort(), ['a', 'b']);
  t.same([...principalFromClaims({ ...base, scp: ['a'], scope: 'b a d' }).scopes].sort(), ['a', 'b', 'd']);
  t.same([...principalFromClaims({ ...base, scope: 'openid' }).scopes], ['openid']);
  t.same([...principalFromClaims({ ...base, scp: 7 }).scopes], []);
});

t.test('email: null unless a header-safe string', async (t) => {
  t.equal(principalFromClaims({ ...base }).email, null);
  t.equal(principalFromClaims({ ...base, email: 5 }).email, null);
  t.equal(principalFromClaims({ ...base, email: 'a@b\r\nX: y' }).email, null);
});

t.test('sub must be a non-empty header-safe string; exp a number', async (t) => {
  for (const sub of [undefined, '', 5, 'a\r\nb', 'a\u0000', ' lead']) {
    t.equal(reasonOf(() => principalFromClaims({ ...base, sub: sub as string })), 'claim:sub', JSON.stringify(sub) ?? 'undefined');
  }
  t.equal(reasonOf(() => principalFromClaims({ ...base, exp: '2000000000' as unknown as number })), 'claim:exp');
  t.equal(reasonOf(() => principalFromClaims({ ...base, exp: undefined })), 'claim:exp');
});
