// Reserved paths: /auth and /login (and everything under them) belong to the gateway.
import t from 'tap';
import { isReservedPrefix } from '../../../src/config/sections/routes.js';
import { parse, problems, withSections } from '../../fixtures/config.js';

const RESERVED = '"PREFIX" is reserved for the gateway (/auth and /login, and everything under them)';

t.test('a route the gateway paths would shadow is a configuration error naming it', async (t) => {
  for (const prefix of ['/auth', '/auth/', '/auth/x', '/auth/verify', '/login', '/login/', '/login/token/x', '/auth;v=1/x', '/login;x']) {
    t.strictSame(problems(withSections({ routes: [{ prefix: '/api', upstream: 'cdf', allow: [{}] }, { prefix, upstream: 'cdf', allow: [{}] }] })),
      [{ path: 'routes[1].prefix', reason: RESERVED.replace('PREFIX', prefix) }], prefix);
    t.equal(isReservedPrefix(prefix), true, prefix);
  }
});

t.test('other segments are not reserved; / only gets what is not reserved', async (t) => {
  const prefixes = ['/', '/loginx', '/authz', '/Auth', '/api/auth', '/apps/login/', '/auth-service', '/log'];
  const c = parse(withSections({ routes: prefixes.map((prefix) => ({ prefix, upstream: 'cdf', allow: [{}] })) }));
  t.strictSame(c.routes.map((r) => r.prefix), prefixes);
  for (const p of prefixes) t.equal(isReservedPrefix(p), false, p);
});

t.test('public routes and login routes are held to the same rule', async (t) => {
  t.strictSame(problems(withSections({ routes: [{ prefix: '/login/', upstream: 'cdf', public: true }] })).map((p) => p.path), ['routes[0].prefix']);
});
