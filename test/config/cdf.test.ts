// Configuration of CDF-aware rules and issuer profiles (src/config/cdf.ts): defaults, and every
// problem named by key path.
import t from 'tap';
import { stringify } from 'yaml';
import { ConfigError, parseConfig, type ConfigProblem } from '../../src/config/load.js';
import type { GatewayConfig } from '../../src/config/types.js';

type Obj = Record<string, unknown>;
const P = '/api/v1/projects/demo';
const base = (over: Obj = {}): Obj => ({
  issuers: [{ issuer: 'https://idp.example', audiences: ['https://cdf.example'] }],
  upstreams: { cdf: { url: 'http://127.0.0.1:5000', credentials: { type: 'user-token' } } },
  routes: [{ prefix: P, upstream: 'cdf', allow: [{ groups: ['readers'] }] }],
  ...over,
});
const withRule = (rule: Obj, over: Obj = {}, prefix = P): Obj => base({ routes: [{ prefix, upstream: 'cdf', allow: [rule] }], ...over });
const withIssuer = (i: Obj): Obj => base({ issuers: [{ issuer: 'https://idp.example', audiences: ['a'], ...i }] });
const parse = (c: Obj): GatewayConfig => parseConfig(stringify(c), { env: { GRAPH_SECRET: 'g-secret' }, baseDir: '/nonexistent' });
function problems(c: Obj): ConfigProblem[] {
  try { parse(c); } catch (e) { if (e instanceof ConfigError) return [...e.problems]; throw e; }
  throw new Error('expected a ConfigError');
}
const CDF = { cdf: { baseUrl: 'https://westeurope-1.cognitedata.com/' } };

t.test('cdf section: defaults; absent when not configured', async (t) => {
  t.equal(parse(base()).cdf, undefined);
  t.strictSame(parse(base(CDF)).cdf, { baseUrl: 'https://westeurope-1.cognitedata.com', inspectTtlMs: 300000, timeoutMs: 2000, cacheSize: 10000 });
  t.strictSame(problems(base({ cdf: { baseUrl: 'ftp://x', inspectTtlMs: 0, bogus: 1 } })).map((p) => p.path).sort(),
    ['cdf.baseUrl', 'cdf.bogus', 'cdf.inspectTtlMs']);
  t.strictSame(problems(base({ cdf: {} })).map((p) => p.path), ['cdf.baseUrl']);
});

t.test('rule conditions', async (t) => {
  const r = parse(withRule({ cdf: { access: 'read', resources: ['assets', 'timeseries'] }, project: 'demo', capabilities: ['timeSeriesAcl:WRITE'] }, CDF)).routes[0]!.allow[0]!;
  t.strictSame(r.cdf, { access: 'read', resources: ['assets', 'timeseries'] });
  t.equal(r.project, 'demo');
  t.strictSame(r.capabilities, ['timeSeriesAcl:WRITE']);
  t.strictSame(parse(withRule({ cdf: { access: 'write' } })).routes[0]!.allow[0]!.cdf, { access: 'write', resources: null });

  const bad = problems(withRule({ cdf: { access: 'delete', resources: ['a/b'] }, project: 'Demo!', capabilities: ['timeseries:write'] }, CDF));
  t.strictSame(bad.map((p) => p.path).sort(), ['routes[0].allow[0].capabilities[0]', 'routes[0].allow[0].cdf.access', 'routes[0].allow[0].cdf.resources[0]', 'routes[0].allow[0].project']);
  t.match(bad.find((p) => p.path.endsWith('capabilities[0]'))?.reason, /acl:ACTION, e\.g\. timeSeriesAcl:WRITE/);
});

t.test('cross-section: project and capabilities need cdf:, capabilities need project, cdf needs a CDF route', async (t) => {
  const ps = problems(withRule({ project: 'demo', capabilities: ['timeSeriesAcl:READ'] }));
  t.strictSame(ps.map((p) => p.path), ['routes[0].allow[0].project', 'routes[0].allow[0].capabilities']);
  t.match(ps[0]!.reason, /needs the top-level cdf section/);
  const noProject = problems(withRule({ capabilities: ['timeSeriesAcl:READ'] }, CDF));
  t.strictSame(noProject.map((p) => p.path), ['routes[0].allow[0].capabilities']);
  t.match(noProject[0]!.reason, /needs project/);
  const off = problems(withRule({ cdf: { access: 'read' } }, {}, '/apps/x'));
  t.strictSame(off.map((p) => p.path), ['routes[0].allow[0].cdf']);
  t.match(off[0]!.reason, /does not reach the CDF API/);
  t.ok(parse(withRule({ cdf: { access: 'read' } }, {}, '/')), 'a route above the CDF API may use it');
  t.ok(parse(base({ routes: [{ prefix: '/svc/demo', rewritePrefix: P, upstream: 'cdf', allow: [{ cdf: { access: 'read' } }] }] })), 'rewritten onto it');
});

t.test('issuer profiles and claim overrides', async (t) => {
  const i = parse(withIssuer({ profile: 'keycloak', groupsClaim: 'realm_access.roles', scopesClaim: 'scope', audienceClaim: 'azp' })).issuers[0]!;
  t.match(i, { profile: 'keycloak', groupsClaim: 'realm_access.roles', scopesClaim: 'scope', audienceClaim: 'azp', groupsOverage: null });
  t.equal(parse(withIssuer({ groupsClaim: 'https://example.com/groups' })).issuers[0]!.groupsClaim, 'https://example.com/groups');
  const ps = problems(withIssuer({ profile: 'entraid', groupsClaim: 'a..b', scopesClaim: 'has space' }));
  t.strictSame(ps.map((p) => p.path).sort(), ['issuers[0].groupsClaim', 'issuers[0].profile', 'issuers[0].scopesClaim']);
  t.match(ps.find((p) => p.path === 'issuers[0].profile')?.reason, /must be one of generic, entra, cognito, auth0, keycloak/);
});

t.test('entra: key URLs from the tenant; the v1 issuer needs its trailing /', async (t) => {
  const tenant = '00000000-0000-0000-0000-000000000000';
  const c = parse(base({
    issuers: [
      { issuer: `https://login.microsoftonline.com/${tenant}/v2.0`, audiences: ['a'], profile: 'entra' },
      { issuer: `https://sts.windows.net/${tenant}/`, audiences: ['b'], profile: 'entra' },
    ],
  }));
  t.equal(c.issuers[0]!.jwksUri, `https://login.microsoftonline.com/${tenant}/discovery/v2.0/keys`);
  t.equal(c.issuers[1]!.jwksUri, `https://login.microsoftonline.com/${tenant}/discovery/keys`);
  const ps = problems(withIssuer({ issuer: `https://sts.windows.net/${tenant}`, profile: 'entra' }));
  t.strictSame(ps.map((p) => p.path), ['issuers[0].issuer']);
  t.match(ps[0]!.reason, /trailing \//);
});

t.test('groupsOverage: entra only; defaults', async (t) => {
  const go = { tokenUrl: 'https://login.microsoftonline.com/t/oauth2/v2.0/token', clientId: 'c', clientSecret: '${GRAPH_SECRET}' };
  const i = parse(withIssuer({ profile: 'entra', groupsOverage: go })).issuers[0]!;
  t.strictSame(i.groupsOverage, {
    graphUrl: 'https://graph.microsoft.com', tokenUrl: go.tokenUrl, clientId: 'c', clientSecret: 'g-secret',
    scopes: ['https://graph.microsoft.com/.default'], cacheTtlMs: 600000, timeoutMs: 5000, securityEnabledOnly: true,
  });
  const ps = problems(withIssuer({ groupsOverage: go }));
  t.strictSame(ps.map((p) => p.path), ['issuers[0].groupsOverage']);
  t.match(ps[0]!.reason, /profile: entra/);
  t.strictSame(problems(withIssuer({ profile: 'entra', groupsOverage: { clientId: 'c' } })).map((p) => p.path).sort(),
    ['issuers[0].groupsOverage.clientSecret', 'issuers[0].groupsOverage.tokenUrl']);
});
