// Upstream redirects (nginx proxy_redirect default): a Location into the upstream's own origin and
// the route's base path moves onto the gateway's publicUrl and the route's prefix; any other
// Location is left exactly as the upstream wrote it.
import t from 'tap';
import { compileRoutes } from '../../src/policy/rules.js';
import type { RouteConfig, UpstreamConfig } from '../../src/config/types.js';
import { redirectBases, rewriteLocation } from '../../src/upstream/location.js';

const up = (name: string, url: string): UpstreamConfig => ({ name, url, timeoutMs: 30000, credentials: { type: 'none' } });
const rc = (prefix: string, upstream: string, extra: Partial<RouteConfig> = {}): RouteConfig =>
  ({ prefix, upstream, rewritePrefix: null, public: true, allow: [], login: null, ...extra }) as RouteConfig;

const table = compileRoutes([
  rc('/api/v1/projects/demo/', 'cdf'),
  rc('/apps/legacy/', 'legacy', { rewritePrefix: '/' }),
  rc('/svc', 'cdf', { rewritePrefix: '/internal/svc' }),
  rc('/', 'root'),
], {
  cdf: up('cdf', 'http://10.0.0.5:5000'),
  legacy: up('legacy', 'http://legacy.internal:8080/base'),
  root: up('root', 'https://root.internal'),
});
const PUBLIC = 'https://gw.example';
const route = (p: string) => table.match(p)!;
const rw = (path: string, location: string) => rewriteLocation(location, redirectBases(route(path), PUBLIC));

t.test('bases', async (t) => {
  t.same(redirectBases(route('/api/v1/projects/demo/x'), PUBLIC), {
    upstreamOrigin: 'http://10.0.0.5:5000', upstreamPath: '/api/v1/projects/demo', publicOrigin: PUBLIC, prefix: '/api/v1/projects/demo',
  });
  t.same(redirectBases(route('/apps/legacy/x'), `${PUBLIC}/`), {
    upstreamOrigin: 'http://legacy.internal:8080', upstreamPath: '/base', publicOrigin: PUBLIC, prefix: '/apps/legacy',
  });
  t.equal(redirectBases(route('/x'), PUBLIC).upstreamPath, '', 'the upstream root');
  t.equal(redirectBases(route('/x'), PUBLIC), redirectBases(route('/y'), PUBLIC), 'computed once per route');
});

const rows: Array<[string, string, string, string]> = [
  // [name, request path (picks the route), upstream Location, expected Location]
  ['into the base path', '/api/v1/projects/demo/a', 'http://10.0.0.5:5000/api/v1/projects/demo/assets?limit=1#top', `${PUBLIC}/api/v1/projects/demo/assets?limit=1#top`],
  ['the base path itself', '/api/v1/projects/demo/a', 'http://10.0.0.5:5000/api/v1/projects/demo', `${PUBLIC}/api/v1/projects/demo`],
  ['the base path with a slash', '/api/v1/projects/demo/a', 'http://10.0.0.5:5000/api/v1/projects/demo/', `${PUBLIC}/api/v1/projects/demo/`],
  ['rewritePrefix: upstream base path → route prefix', '/apps/legacy/a', 'http://legacy.internal:8080/base/login?next=%2Fx', `${PUBLIC}/apps/legacy/login?next=%2Fx`],
  ['rewritePrefix: the base itself', '/apps/legacy/a', 'http://legacy.internal:8080/base', `${PUBLIC}/apps/legacy`],
  ['rewritePrefix under a prefix', '/svc/a', 'http://10.0.0.5:5000/internal/svc/done', `${PUBLIC}/svc/done`],
  ['the upstream root, route /', '/x', 'https://root.internal/next', `${PUBLIC}/next`],
  ['the upstream root itself, route /', '/x', 'https://root.internal', `${PUBLIC}/`],
  ['default port spelled out', '/x', 'https://root.internal:443/a', `${PUBLIC}/a`],
  ['host in another case', '/apps/legacy/a', 'http://LEGACY.internal:8080/base/x', `${PUBLIC}/apps/legacy/x`],
  ['protocol-relative to the upstream', '/apps/legacy/a', '//legacy.internal:8080/base/x', `${PUBLIC}/apps/legacy/x`],
  // Unchanged.
  ['outside the base path', '/apps/legacy/a', 'http://legacy.internal:8080/other/x', 'http://legacy.internal:8080/other/x'],
  ['a segment that only starts like the base', '/apps/legacy/a', 'http://legacy.internal:8080/basement', 'http://legacy.internal:8080/basement'],
  ['dot segments leaving the base', '/apps/legacy/a', 'http://legacy.internal:8080/base/../admin', 'http://legacy.internal:8080/base/../admin'],
  ['another port', '/apps/legacy/a', 'http://legacy.internal:9090/base/x', 'http://legacy.internal:9090/base/x'],
  ['another scheme', '/apps/legacy/a', 'https://legacy.internal:8080/base/x', 'https://legacy.internal:8080/base/x'],
  ['another host', '/api/v1/projects/demo/a', 'https://login.example/authorize?x=1', 'https://login.example/authorize?x=1'],
  ['relative', '/apps/legacy/a', '/base/x', '/base/x'],
  ['relative, no slash', '/apps/legacy/a', 'x?y', 'x?y'],
  ['another route\'s base on the same upstream', '/svc/a', 'http://10.0.0.5:5000/api/v1/projects/demo/x', 'http://10.0.0.5:5000/api/v1/projects/demo/x'],
  ['not a URL', '/x', 'http://[oops/x', 'http://[oops/x'],
];

for (const [name, path, location, want] of rows) {
  t.equal(rw(path, location), want, name);
}
