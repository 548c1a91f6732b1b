// @cognite/sdk as a real client, its baseUrl pointed at the gateway, listing assets through each
// upstream credential mode. The upstream records what the gateway sent on.
import t from 'tap';
import * as sdkModule from '@cognite/sdk';
import { decodeJwt } from 'jose';
import { startIdp, RESOURCE, type Idp } from '../fixtures/idp.js';
import { startUpstream, type Upstream } from '../fixtures/upstream.js';
import { startGateway, secret } from '../fixtures/gateway.js';

const API_KEY = secret('sdk-test-api-key-abcdef');
// @cognite/sdk's type declarations use extensionless specifiers that NodeNext cannot resolve:
// describe the little we use.
interface Sdk {
  CogniteClient: new (o: { appId: string; project: string; baseUrl: string; oidcTokenProvider: () => Promise<string> }) => {
    authenticate(): Promise<unknown>;
    assets: { list(q: { limit: number }): Promise<{ items: Array<{ name: string }> }> };
  };
  HttpError: abstract new (...a: never[]) => Error & { status: number };
}
const { CogniteClient, HttpError } = sdkModule as unknown as Sdk;
type HttpError = InstanceType<Sdk['HttpError']>;

let idp: Idp;
let up: Upstream;

t.before(async () => { idp = await startIdp(); up = await startUpstream(); });
t.teardown(async () => { await up?.close(); await idp?.close(); });

t.test('the SDK lists assets through the gateway with every credential mode', async (t) => {
  const gw = await startGateway(t, {
    issuers: [{ issuer: idp.issuer, jwksUri: idp.jwksUri, audiences: [RESOURCE] }],
    upstreams: {
      user: { url: up.url, credentials: { type: 'user-token' } },
      key: { url: up.url, credentials: { type: 'api-key', value: API_KEY } },
      svc: { url: up.url, credentials: { type: 'client-credentials', tokenUrl: idp.tokenUrl, clientId: 'svc', clientSecret: 'svc-secret', resource: RESOURCE } },
      open: { url: up.url, credentials: { type: 'none' } },
    },
    routes: [
      { prefix: '/api/v1/projects/user-proj', upstream: 'user', allow: [{ groups: ['readers'] }] },
      { prefix: '/api/v1/projects/key-proj', upstream: 'key', allow: [{ groups: ['readers'] }] },
      { prefix: '/api/v1/projects/svc-proj', upstream: 'svc', allow: [{ groups: ['readers'] }] },
      { prefix: '/api/v1/projects/open-proj', upstream: 'open', allow: [{ groups: ['readers'] }] },
    ],
  });
  const token = secret(await idp.userToken('alice'));
  const client = (project: string, tok: string | undefined) =>
    new CogniteClient({ appId: 'gateway-test', project, baseUrl: gw.url, oidcTokenProvider: async () => tok as string });

  const expectations: Array<[string, (h: Record<string, unknown>) => void]> = [
    ['user-proj', (h) => t.equal(h.authorization, `Bearer ${token}`, 'user-token: the user\'s own token')],
    ['key-proj', (h) => { t.equal(h['api-key'], API_KEY, 'api-key injected'); t.equal(h.authorization, undefined); }],
    ['svc-proj', (h) => {
      const auth = String(h.authorization);
      secret(auth.slice(7));
      t.equal(decodeJwt(auth.slice(7)).sub, 'svc', 'client-credentials: the gateway\'s own token');
    }],
    ['open-proj', (h) => { t.equal(h.authorization, undefined); t.equal(h['api-key'], undefined); }],
  ];
  for (const [project, check] of expectations) {
    await t.test(project, async (t) => {
      const sdk = client(project, token);
      await sdk.authenticate();
      const assets = await sdk.assets.list({ limit: 5 });
      t.equal(assets.items.length, 1);
      t.equal(assets.items[0]?.name, 'Pump 1');
      const r = up.last();
      t.equal(r.method, 'POST');
      t.equal(r.url, `/api/v1/projects/${project}/assets/list`);
      t.same(JSON.parse(r.body.toString()), { limit: 5 });
      t.equal(r.headers['x-auth-request-user'], 'alice');
      t.equal(r.headers['x-cdp-app'], 'gateway-test', 'the SDK\'s own headers pass through');
      check(r.headers as Record<string, unknown>);
    });
  }

  await t.test('without a token the SDK gets the gateway\'s 401 in CDF shape', async (t) => {
    const before = up.requests.length;
    const sdk = client('user-proj', undefined);
    const err = await sdk.assets.list({ limit: 1 }).then(() => null, (e: unknown) => e);
    t.ok(err instanceof HttpError);
    t.equal((err as HttpError).status, 401);
    t.equal(up.requests.length, before);
  });
});
