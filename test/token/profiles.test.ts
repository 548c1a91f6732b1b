// Issuer profiles: tokens shaped as each IdP issues them (claim sets from the IdPs' documentation,
// minted with jose, verified by the real verifier against a JWKS server) → Principal.
import t from 'tap';
import { TokenVerifier } from '../../src/token/verify.js';
import { claimMap, compilePath, readClaim } from '../../src/token/principal.js';
import type { IssuerConfig } from '../../src/config/types.js';
import { startJwksServer, type JwksServer } from '../fixtures/jwks-server.js';
import { generateKey, mint, tokensConfig, type TestKey } from '../fixtures/tokens.js';

/** A partial error pattern for t.rejects (tap's types want a whole Error). */
const err = (o: Record<string, unknown>): Error => o as unknown as Error;

let jwks: JwksServer;
let key: TestKey;
t.before(async () => {
  key = await generateKey('RS256', 'k1');
  jwks = await startJwksServer({ keys: [key.jwk] });
});
t.teardown(() => jwks?.close());

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const now = () => Math.floor(Date.now() / 1000);
const times = () => ({ iat: now() - 10, nbf: now() - 10, exp: now() + 3600 });

function verifier(...issuers: Array<Partial<IssuerConfig> & { issuer: string; audiences: string[] }>) {
  const v = new TokenVerifier({
    issuers: issuers.map((i) => ({
      jwksUri: jwks.jwksUri, algorithms: ['RS256'], profile: 'generic', groupsClaim: null, scopesClaim: null, audienceClaim: null, groupsOverage: null, ...i,
    })),
    tokens: tokensConfig(),
  });
  t.teardown(() => v.close());
  return v;
}
const sign = (c: Record<string, unknown>) => mint(c, { key });

t.test('entra: v2 and v1 (sts.windows.net) tokens, both issuers listed', async (t) => {
  const v = verifier(
    { issuer: `https://login.microsoftonline.com/${TENANT}/v2.0`, audiences: ['6e74172b-be56-4843-9ff4-e66a39bb12e3'], profile: 'entra' },
    { issuer: `https://sts.windows.net/${TENANT}/`, audiences: ['https://westeurope-1.cognitedata.com'], profile: 'entra' },
  );
  const v2 = await v.verify(await sign({
    aud: '6e74172b-be56-4843-9ff4-e66a39bb12e3', iss: `https://login.microsoftonline.com/${TENANT}/v2.0`, ...times(),
    aio: 'AXQAi/8I', azp: '6e74172b-be56-4843-9ff4-e66a39bb12e3', azpacr: '0', name: 'Abe Lincoln', oid: '690222be-ff1a-4d56-abd1-7e4f7d38e474',
    preferred_username: 'abeli@microsoft.com', rh: 'I', scp: 'access_as_user', sub: 'HKZpfaHyWadeOouYlitjrI-KffTm222X5rrV3xDqfKQ', tid: TENANT,
    uti: 'fqiBqXLPj0eQa82S-IYFAA', ver: '2.0', groups: ['aaaaaaaa-0000-0000-0000-000000000001'],
  }));
  t.strictSame(v2.groups, ['aaaaaaaa-0000-0000-0000-000000000001']);
  t.ok(v2.scopes.has('access_as_user'));
  t.equal(v2.oid, '690222be-ff1a-4d56-abd1-7e4f7d38e474');
  t.equal(v2.groupsOverage, false);
  const v1 = await v.verify(await sign({
    aud: 'https://westeurope-1.cognitedata.com', iss: `https://sts.windows.net/${TENANT}/`, ...times(), acr: '1', aio: 'E2ZgYJ',
    amr: ['pwd', 'mfa'], appid: '11111111-1111-1111-1111-111111111111', appidacr: '1', family_name: 'Lincoln', given_name: 'Abe',
    ipaddr: '10.0.0.1', name: 'Abe Lincoln', oid: '690222be-ff1a-4d56-abd1-7e4f7d38e474', scp: 'user_impersonation',
    sub: 'l3_roISQU222bULS9yi2k0XpqpOiMz5H3ZACo1GeXA', tid: TENANT, unique_name: 'abeli@microsoft.com', upn: 'abeli@microsoft.com',
    uti: 'fqiBqXLPj0eQa82S-IYFAA', ver: '1.0',
    _claim_names: { groups: 'src1' }, _claim_sources: { src1: { endpoint: `https://graph.windows.net/${TENANT}/users/690222be/getMemberObjects` } },
  }));
  t.ok(v1.scopes.has('user_impersonation'));
  t.equal(v1.groupsOverage, true, 'overage marker seen');
  t.strictSame(v1.groups, []);
  await t.rejects(v.verify(await sign({ aud: 'https://other.example', iss: `https://sts.windows.net/${TENANT}/`, sub: 's', ...times() })),
    err({ reason: 'claim:aud' }));
});

t.test('cognito: access tokens carry client_id, not aud; groups in cognito:groups; ID tokens refused', async (t) => {
  const iss = 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_example';
  const v = verifier({ issuer: iss, audiences: ['1example23456789'], profile: 'cognito' });
  const access = {
    sub: 'aaaaaaaa-bbbb-cccc-dddd-example', 'cognito:groups': ['readers', 'admins'], iss, version: 2, client_id: '1example23456789',
    origin_jti: 'ab1cd234', event_id: 'd4c1e7a3', token_use: 'access', scope: 'aws.cognito.signin.user.admin phone openid profile email',
    auth_time: now() - 20, ...times(), jti: 'a1b2c3', username: 'alice',
  };
  const p = await v.verify(await sign(access));
  t.strictSame(p.groups, ['readers', 'admins']);
  t.ok(p.scopes.has('openid') && p.scopes.has('aws.cognito.signin.user.admin'));
  await t.rejects(v.verify(await sign({ ...access, client_id: 'someone-else' })), err({ reason: 'claim:aud' }), 'another app client');
  const { client_id: _c, ...noClient } = access;
  await t.rejects(v.verify(await sign(noClient)), err({ reason: 'claim:aud' }));
  await t.rejects(v.verify(await sign({ ...noClient, aud: '1example23456789', token_use: 'id', email: 'a@example.com' })),
    err({ status: 401 }), 'an ID token (aud, no client_id) is refused');
  await t.rejects(v.verify(await sign({ ...access, token_use: 'id' })), err({ reason: 'claim:token_use' }), 'only access tokens are bearer credentials');
});

t.test('auth0: aud array, scope and RBAC permissions, a namespaced groups claim', async (t) => {
  const iss = 'https://example-tenant.eu.auth0.com/';
  const v = verifier({ issuer: iss, audiences: ['https://cdf.example'], profile: 'auth0', groupsClaim: 'https://cdf.example/groups' });
  const p = await v.verify(await sign({
    iss, sub: 'auth0|5f7c8ec7c33c6c004bbafe82', aud: ['https://cdf.example', 'https://example-tenant.eu.auth0.com/userinfo'], ...times(),
    azp: 'my-client', scope: 'openid profile email read:timeseries', permissions: ['read:timeseries', 'write:events'],
    'https://cdf.example/groups': ['readers'],
  }));
  t.strictSame(p.groups, ['readers'], 'namespaced claim read whole (its dots are not a path)');
  t.ok(p.scopes.has('read:timeseries') && p.scopes.has('write:events') && p.scopes.has('openid'), 'scope ∪ permissions');
});

t.test('keycloak: realm_access.roles by default; groupsClaim: groups for a group mapper', async (t) => {
  const iss = 'https://keycloak.example/realms/cdf';
  const base = {
    ...times(), auth_time: now() - 30, jti: 'onrtac:1', iss, aud: ['cdf-gateway', 'account'], sub: 'f:0a1b2c3d:alice', typ: 'Bearer',
    azp: 'cdf-gateway', sid: 'abc', acr: '1', 'allowed-origins': ['https://app.example'],
    realm_access: { roles: ['offline_access', 'uma_authorization', 'default-roles-cdf', 'readers'] },
    resource_access: { account: { roles: ['manage-account', 'view-profile'] } },
    scope: 'openid email profile', email_verified: true, preferred_username: 'alice', email: 'alice@example.com', groups: ['/cdf/writers'],
  };
  const byRoles = verifier({ issuer: iss, audiences: ['cdf-gateway'], profile: 'keycloak' });
  const p = await byRoles.verify(await sign(base));
  t.ok(p.groups.includes('readers'));
  t.notOk(p.groups.includes('/cdf/writers'));
  t.ok(p.scopes.has('email'));
  const byGroups = verifier({ issuer: iss, audiences: ['cdf-gateway'], profile: 'keycloak', groupsClaim: 'groups', scopesClaim: 'scope' });
  t.strictSame((await byGroups.verify(await sign(base))).groups, ['/cdf/writers']);
  const byClient = verifier({ issuer: iss, audiences: ['cdf-gateway'], profile: 'keycloak', groupsClaim: 'resource_access.account.roles' });
  t.strictSame((await byClient.verify(await sign(base))).groups, ['manage-account', 'view-profile'], 'any dotted path');
});

t.test('generic: as before; audienceClaim override', async (t) => {
  const iss = 'https://idp.example';
  const v = verifier({ issuer: iss, audiences: ['my-client'], audienceClaim: 'azp' });
  const p = await v.verify(await sign({ iss, sub: 's', azp: 'my-client', ...times(), groups: ['g'], scp: ['a'], scope: 'b' }));
  t.strictSame(p.groups, ['g']);
  t.strictSame([...p.scopes].sort(), ['a', 'b']);
  await t.rejects(v.verify(await sign({ iss, sub: 's', azp: 'x', aud: 'my-client', ...times() })), err({ reason: 'claim:aud' }), 'aud is not looked at');
});

t.test('claim paths: compiled once, own properties only', async (t) => {
  t.strictSame(compilePath('realm_access.roles'), ['realm_access', 'roles']);
  t.strictSame(compilePath('https://example.com/groups'), ['https://example.com/groups']);
  t.equal(readClaim({ a: { b: [1] } }, ['a', 'b', 'c']), undefined);
  t.equal(readClaim({}, ['constructor']), undefined, 'never the prototype');
  t.equal(readClaim({ a: [{ b: 1 }] }, ['a', '0', 'b']), undefined, 'arrays are not walked');
  t.strictSame(claimMap({ profile: 'cognito' }).audience, ['client_id']);
  t.strictSame(claimMap({}).scopes, [['scp'], ['scope']]);
});
