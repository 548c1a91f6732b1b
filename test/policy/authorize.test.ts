import t from 'tap';
import { compileRoutes, type CompiledRoute } from '../../src/policy/rules.js';
import { isAllowed } from '../../src/policy/authorize.js';
import type { AllowRule, RouteConfig, UpstreamConfig } from '../../src/config/types.js';
import type { Principal } from '../../src/token/principal.js';

const upstream: UpstreamConfig = { name: 'cdf', url: 'http://127.0.0.1:5000', timeoutMs: 30000, credentials: { type: 'user-token' } };

function rule(r: Partial<AllowRule>): AllowRule {
  return { methods: null, groups: null, scopes: null, subjects: null, cdf: null, project: null, capabilities: null, ...r };
}

function route(allow: AllowRule[]): CompiledRoute {
  const cfg: RouteConfig = { prefix: '/r', upstream: 'cdf', rewritePrefix: null, public: false, websockets: true, allow, login: null, cors: null };
  const r = compileRoutes([cfg], { cdf: upstream }).match('/r');
  if (r === null) throw new Error('route did not compile');
  return r;
}

function who(sub: string, groups: string[], scopes: string[]): Principal {
  return {
    sub, email: null, groups, scopes: new Set(scopes), issuer: 'http://idp', expiresAt: 0,
    groupsHeader: groups.join(','),
  };
}

const alice = who('alice', ['readers'], ['openid']);
const bob = who('bob', ['writers', 'x'], ['openid', 'user_impersonation']);
const carol = who('carol', ['writers'], ['openid']);
const nobody = who('nobody', [], []);
const svc = who('svc-1', [], ['user_impersonation']);

// The DESIGN example: readers GET/HEAD; writers everything with user_impersonation.
const demo = route([
  rule({ methods: ['GET', 'HEAD'], groups: ['readers'] }),
  rule({ methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'], groups: ['writers'], scopes: ['user_impersonation'] }),
]);

const cases: Array<[string, CompiledRoute, string, Principal, boolean]> = [
  ['reader GET', demo, 'GET', alice, true],
  ['reader HEAD', demo, 'HEAD', alice, true],
  ['reader POST', demo, 'POST', alice, false],
  ['writer with scope POST', demo, 'POST', bob, true],
  ['writer with scope DELETE', demo, 'DELETE', bob, true],
  ['writer with scope OPTIONS (not listed)', demo, 'OPTIONS', bob, false],
  ['writer without scope POST', demo, 'POST', carol, false],
  ['writer without scope GET', demo, 'GET', carol, false],
  ['no groups', demo, 'GET', nobody, false],
  ['method case-sensitive', demo, 'get', alice, false],
  // empty rules deny
  ['no rules', route([]), 'GET', bob, false],
  // HEAD not implied by GET
  ['GET-only rule, HEAD', route([rule({ methods: ['GET'] })]), 'HEAD', alice, false],
  ['GET-only rule, GET', route([rule({ methods: ['GET'] })]), 'GET', alice, true],
  // null conditions
  ['empty rule allows anyone', route([rule({})]), 'PATCH', nobody, true],
  // groups any-of
  ['groups any-of: second group', route([rule({ groups: ['a', 'x'] })]), 'GET', bob, true],
  ['groups any-of: none', route([rule({ groups: ['a', 'b'] })]), 'GET', bob, false],
  ['groups any-of: empty principal groups', route([rule({ groups: ['a'] })]), 'GET', nobody, false],
  // scopes all-of
  ['scopes all-of: all present', route([rule({ scopes: ['openid', 'user_impersonation'] })]), 'GET', bob, true],
  ['scopes all-of: one missing', route([rule({ scopes: ['openid', 'user_impersonation'] })]), 'GET', carol, false],
  ['scopes all-of: none present', route([rule({ scopes: ['admin'] })]), 'GET', nobody, false],
  // subjects
  ['subjects: listed', route([rule({ subjects: ['svc-1', 'svc-2'] })]), 'POST', svc, true],
  ['subjects: not listed', route([rule({ subjects: ['svc-2'] })]), 'POST', svc, false],
  ['subjects + scopes', route([rule({ subjects: ['svc-1'], scopes: ['user_impersonation'] })]), 'GET', svc, true],
  ['subjects + group missing', route([rule({ subjects: ['svc-1'], groups: ['readers'] })]), 'GET', svc, false],
  // all conditions of one rule must hold
  ['all conditions hold', route([rule({ methods: ['PUT'], groups: ['writers'], scopes: ['openid'], subjects: ['carol'] })]), 'PUT', carol, true],
  ['one condition fails (subject)', route([rule({ methods: ['PUT'], groups: ['writers'], scopes: ['openid'], subjects: ['bob'] })]), 'PUT', carol, false],
  ['one condition fails (method)', route([rule({ methods: ['PUT'], groups: ['writers'], scopes: ['openid'], subjects: ['carol'] })]), 'POST', carol, false],
  // multiple rules OR; a failing rule does not veto a later one
  ['OR: first fails, second allows', route([rule({ groups: ['admins'] }), rule({ subjects: ['alice'] })]), 'GET', alice, true],
  ['OR: both fail', route([rule({ groups: ['admins'] }), rule({ subjects: ['bob'] })]), 'GET', alice, false],
  ['OR: conditions not mixed across rules', route([rule({ methods: ['GET'], groups: ['admins'] }), rule({ methods: ['POST'], groups: ['readers'] })]), 'GET', alice, false],
];

for (const [name, r, method, p, expected] of cases) {
  t.equal(isAllowed(r, method, p), expected, name);
}

t.test('compiled rules are immutable snapshots of the config', async (t) => {
  const groups = ['readers'];
  const r = route([rule({ groups })]);
  groups.push('writers');
  t.equal(isAllowed(r, 'GET', carol), false, 'later mutation of the config array has no effect');
  t.ok(Object.isFrozen(r.rules));
});
