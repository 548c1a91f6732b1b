// The IdP fixture is what every integration test trusts: prove it issues what they expect.
import t from 'tap';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { RESOURCE, USERS, startIdp } from '../fixtures/idp.js';

t.test('userToken: a real login yields a verifiable RS256 access token', async (t) => {
  const idp = await startIdp();
  t.teardown(() => idp.close());
  const jwks = createRemoteJWKSet(new URL(idp.jwksUri));

  const token = await idp.userToken('alice');
  t.equal(decodeProtectedHeader(token).alg, 'RS256');
  const { payload } = await jwtVerify(token, jwks, { issuer: idp.issuer, audience: RESOURCE, algorithms: ['RS256'] });
  t.equal(payload.sub, 'alice');
  t.equal(payload.aud, RESOURCE);
  t.same(payload.groups, USERS.alice!.groups);
  t.equal(payload.email, 'alice@example.com');
  t.ok(String(payload.scp).split(' ').includes('user_impersonation'), 'scp contains user_impersonation');
  t.type(payload.exp, 'number');

  const bob = await idp.userToken('bob');
  const { payload: pb } = await jwtVerify(bob, jwks, { issuer: idp.issuer, audience: RESOURCE });
  t.same(pb.groups, ['readers', 'writers']);
  t.not(bob, token);

  const set = await idp.userTokenSet('carol');
  t.type(set.id_token, 'string', 'id_token issued');
  t.type(set.refresh_token, 'string', 'offline_access honoured (prompt=consent)');
});

t.test('clientToken for both client auth methods; token requests counted', async (t) => {
  const idp = await startIdp();
  t.teardown(() => idp.close());
  const jwks = createRemoteJWKSet(new URL(idp.jwksUri));
  const before = idp.requests.token;
  for (const clientId of ['svc', 'svc-post']) {
    const { payload } = await jwtVerify(await idp.clientToken(clientId), jwks, { issuer: idp.issuer, audience: RESOURCE });
    t.equal(payload.sub, clientId);
    t.equal(payload.email, undefined, 'no email for a service');
  }
  t.equal(idp.requests.token - before, 2);
});

t.test('setDown makes the IdP answer 503', async (t) => {
  const idp = await startIdp();
  t.teardown(() => idp.close());
  idp.setDown(true);
  const res = await fetch(`${idp.issuer}/.well-known/openid-configuration`);
  t.equal(res.status, 503);
  await res.arrayBuffer();
  await t.rejects(idp.clientToken(), /503/);
  idp.setDown(false);
  const ok = await fetch(`${idp.issuer}/.well-known/openid-configuration`);
  t.equal(ok.status, 200);
  const meta = await ok.json() as { issuer: string; token_endpoint: string; jwks_uri: string };
  t.same([meta.issuer, meta.token_endpoint, meta.jwks_uri], [idp.issuer, idp.tokenUrl, idp.jwksUri]);
});

t.test('issuerHost: localhost issuer, still listening on 127.0.0.1', async (t) => {
  const idp = await startIdp({ issuerHost: 'localhost' });
  t.teardown(() => idp.close());
  t.equal(idp.issuer, `http://localhost:${idp.port}`);
  const jwks = createRemoteJWKSet(new URL(`http://127.0.0.1:${idp.port}/jwks`));
  const { payload } = await jwtVerify(await idp.userToken('mallory'), jwks, { issuer: idp.issuer, audience: RESOURCE });
  t.equal(payload.sub, 'mallory');
  t.same(payload.groups, []);
});
