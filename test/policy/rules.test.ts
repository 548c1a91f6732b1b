import t from 'tap';
import { compileRoutes } from '../../src/policy/rules.js';
import { parseTarget } from '../../src/request/target.js';
import type { RouteConfig, UpstreamConfig } from '../../src/config/types.js';
import { ATTACKS } from '../fixtures/target-attacks.js';

function up(name: string, url: string): UpstreamConfig {
  return { name, url, timeoutMs: 30000, credentials: { type: 'none' } };
}
function rc(prefix: string, upstream: string, extra: Partial<RouteConfig> = {}): RouteConfig {
  return { prefix, upstream, rewritePrefix: null, public: false, websockets: true, allow: [], login: null, cors: null, ...extra } as RouteConfig;
}

const upstreams = {
  cdf: up('cdf', 'http://127.0.0.1:5000'),
  legacy: up('legacy', 'http://h:5000/base'),
  slash: up('slash', 'http://h:5000/base/'),
  deep: up('deep', 'http://h:5000/x/y/'),
};

t.test('segment-boundary prefix matching and precedence', async (t) => {
  const table = compileRoutes([
    rc('/status', 'legacy', { public: true }),
    rc('/api/v1/projects/demo/', 'cdf'),
    rc('/api/v1/projects/demo/assets', 'legacy'),
    rc('/api', 'deep'),
    rc('/Case', 'cdf'),
  ], upstreams);
  const id = (p: string) => table.match(p)?.id ?? null;

  t.equal(id('/status'), '/status', 'exact');
  t.equal(id('/status/'), '/status', 'trailing slash on path');
  t.equal(id('/status/x/y'), '/status', 'below');
  t.equal(id('/statusX'), null, 'not a segment boundary');
  t.equal(id('/status;x'), null, '; is part of the segment');
  t.equal(id('/stat'), null, 'shorter than prefix');
  t.equal(id('/api/v1/projects/demo'), '/api/v1/projects/demo/', 'configured trailing / changes nothing');
  t.equal(id('/api/v1/projects/demo/timeseries'), '/api/v1/projects/demo/');
  t.equal(id('/api/v1/projects/demo/assets'), '/api/v1/projects/demo/assets', 'longest prefix wins');
  t.equal(id('/api/v1/projects/demo/assets/list'), '/api/v1/projects/demo/assets', 'longest prefix wins below');
  t.equal(id('/api/v1/projects/demo/assetsX'), '/api/v1/projects/demo/', 'falls back to the next boundary');
  t.equal(id('/api/v1/projects/demo2/assets'), '/api');
  t.equal(id('/api'), '/api');
  t.equal(id('/apix'), null);
  t.equal(id('/Case/x'), '/Case', 'case-sensitive: exact case');
  t.equal(id('/case/x'), null, 'case-sensitive: other case');
  t.equal(id('/STATUS'), null);
  t.equal(id('/'), null, 'no root route');
  t.equal(id('/nothing/here'), null, 'unmatched');
  t.equal(id(''), null, 'empty path');
  t.equal(id('status'), null, 'non-absolute path');
  const r = table.match('/status');
  t.equal(r?.prefix, '/status');
  t.equal(r?.isPublic, true);
  t.equal(r?.upstream.name, 'legacy');
  t.equal(table.match('/api/v1/projects/demo/x')?.prefix, '/api/v1/projects/demo', 'prefix normalised');
});

t.test('root route matches everything, but loses to longer prefixes', async (t) => {
  const table = compileRoutes([rc('/', 'cdf'), rc('/a/b', 'legacy')], upstreams);
  t.equal(table.match('/')?.id, '/');
  t.equal(table.match('/anything/at/all')?.id, '/');
  t.equal(table.match('/a')?.id, '/');
  t.equal(table.match('/a/bc')?.id, '/');
  t.equal(table.match('/a/b/c')?.id, '/a/b');
  t.equal(table.match('/')?.prefix, '');
});

t.test('paths longer than the longest prefix', async (t) => {
  const table = compileRoutes([rc('/ab', 'cdf'), rc('/abc/def', 'legacy')], upstreams);
  t.equal(table.match('/ab/' + 'x/'.repeat(200))?.id, '/ab');
  t.equal(table.match('/abc/defg/h')?.id ?? null, null);
  t.equal(table.match('/abc/def/g/h/i/j')?.id, '/abc/def');
  t.equal(table.match('/abcdefghijklmnop')?.id ?? null, null);
});

t.test('upstreamPath', async (t) => {
  const table = compileRoutes([
    rc('/apps/legacy/', 'legacy', { rewritePrefix: '/' }),
    rc('/apps/other', 'slash', { rewritePrefix: '/v2/' }),
    rc('/api', 'legacy'),
    rc('/plain', 'cdf'),
    rc('/root-rewrite', 'cdf', { rewritePrefix: '/' }),
    rc('/', 'deep'),
  ], upstreams);
  const map = (p: string) => table.match(p)!.upstreamPath(p);

  t.equal(map('/apps/legacy/x/y'), '/base/x/y', 'rewrite to /');
  t.equal(map('/apps/legacy'), '/base', 'rewrite adds no trailing /');
  t.equal(map('/apps/legacy/'), '/base/', 'client trailing / kept');
  t.equal(map('/apps/other/a'), '/base/v2/a', 'base with trailing / in url, rewrite with trailing /');
  t.equal(map('/apps/other'), '/base/v2');
  t.equal(map('/api/v1/x'), '/base/api/v1/x', 'no rewrite: base + full path');
  t.equal(map('/api'), '/base/api');
  t.equal(map('/plain/a;b'), '/plain/a;b', 'no base path');
  t.equal(map('/root-rewrite'), '/', 'empty result becomes /');
  t.equal(map('/root-rewrite/'), '/');
  t.equal(map('/root-rewrite/z'), '/z');
  t.equal(map('/'), '/x/y/', 'root route, base path /x/y');
  t.equal(map('/q/r'), '/x/y/q/r');
  t.equal(map('/apps/legacyX'), '/x/y/apps/legacyX', 'not a boundary: falls to root');

  const legacy = table.match('/apps/legacy')!;
  t.throws(() => legacy.upstreamPath('/apps/legacyX'), 'refuses a path the route did not match');
  t.throws(() => legacy.upstreamPath('/other'), 'refuses a foreign path');
});

t.test('compile-time validation', async (t) => {
  t.throws(() => compileRoutes([rc('/a', 'missing')], upstreams), /unknown upstream/);
  t.throws(() => compileRoutes([rc('/a', 'toString')], upstreams), /unknown upstream/, 'no prototype keys');
  t.throws(() => compileRoutes([rc('/a', 'cdf'), rc('/a/', 'legacy')], upstreams), /duplicate/);
  t.throws(() => compileRoutes([rc('/a/../b', 'cdf')], upstreams), /canonical/);
  t.throws(() => compileRoutes([rc('/a//b', 'cdf')], upstreams), /canonical/);
  t.throws(() => compileRoutes([rc('/a', 'cdf', { rewritePrefix: '/%2e%2e' })], upstreams), /canonical/);
  t.doesNotThrow(() => compileRoutes([], upstreams));
  t.equal(compileRoutes([], upstreams).match('/'), null, 'no routes: nothing matches');
});

t.test('table and routes are frozen', async (t) => {
  const table = compileRoutes([rc('/a', 'cdf')], upstreams);
  t.ok(Object.isFrozen(table));
  t.ok(Object.isFrozen(table.match('/a')));
});

t.test('property: accepted targets never map outside the upstream base path', async (t) => {
  const tables = [
    compileRoutes([rc('/', 'legacy')], upstreams),
    compileRoutes([rc('/', 'deep', { rewritePrefix: '/' })], upstreams),
    compileRoutes([rc('/a', 'legacy', { rewritePrefix: '/' }), rc('/', 'deep', { rewritePrefix: '/z' })], upstreams),
    compileRoutes([rc('/api/v1/projects/demo/', 'slash', { rewritePrefix: '/' }), rc('/', 'legacy', { rewritePrefix: '/' })], upstreams),
  ];
  let checked = 0;
  for (const [raw, expect] of ATTACKS) {
    let path: string;
    try { path = parseTarget(raw).path; } catch { continue; }
    t.not(expect, 'bad', `accepted only if the table says so: ${raw}`);
    for (const table of tables) {
      const route = table.match(path);
      t.ok(route, `root route matches ${path}`);
      const base = new URL(route!.upstream.url).pathname.replace(/\/$/, '');
      const out = route!.upstreamPath(path);
      t.ok(out.startsWith(base + '/') || out === base, `${path} → ${out} stays under ${base}`);
      t.notOk(out.includes('/../') || out.endsWith('/..') || out.includes('/./') || out.includes('//'), `${out} has no dot or empty segments`);
      t.equal(new URL(out, 'http://h').pathname, out, `${out} is already normalised by WHATWG URL`);
      checked++;
    }
  }
  t.ok(checked > 40, 'property exercised on many paths');
});
