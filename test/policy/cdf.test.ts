import t from 'tap';
import { cdfAccess, cdfConditionHolds, cdfProject, cdfResource, cdfResourceIs, READ_ACTIONS } from '../../src/policy/cdf.js';

const P = '/api/v1/projects/demo';

t.test('reads: GET, HEAD, and POSTs ending in a read action', async (t) => {
  for (const m of ['GET', 'HEAD']) t.equal(cdfAccess(m, `${P}/assets/delete`), 'read', `${m} reads whatever the path`);
  for (const a of READ_ACTIONS) t.equal(cdfAccess('POST', `${P}/assets/${a}`), 'read', `POST …/${a}`);
  t.strictSame([...READ_ACTIONS].sort(), ['aggregate', 'byExternalIds', 'byids', 'downloadlink', 'filter', 'latest', 'list', 'query', 'retrieve', 'search', 'sync'].sort(),
    'exactly the DESIGN list');
  t.equal(cdfAccess('POST', `${P}/timeseries/data/list`), 'read', 'the last segment decides');
  t.equal(cdfAccess('POST', `${P}/timeseries/synthetic/query`), 'read');
});

t.test('writes: everything else', async (t) => {
  const writes: Array<[string, string]> = [
    ['POST', `${P}/assets`], ['POST', `${P}/assets/delete`], ['POST', `${P}/assets/update`],
    ['POST', `${P}/timeseries/data`], ['PUT', `${P}/assets/list`], ['PATCH', `${P}/assets/list`],
    ['DELETE', `${P}/raw/dbs/x`], ['OPTIONS', `${P}/assets/list`], ['POST', `${P}/files/`],
    ['POST', `${P}/assets/LIST`], ['POST', `${P}/assets/list;x`], ['POST', `${P}/assets/list/`], ['POST', P],
    ['POST', `${P}/models/instances/inspect`],
  ];
  for (const [m, p] of writes) t.equal(cdfAccess(m, p), 'write', `${m} ${p}`);
});

t.test('not the CDF API: null', async (t) => {
  for (const p of ['/api/v1/projects', '/api/v1/projects/', '/api/v1/token/inspect', '/apps/x/assets/list', '/api/v1/projectsX/demo/a', '/']) {
    t.equal(cdfAccess('POST', p), null, p);
  }
  t.equal(cdfAccess('GET', P), 'read', 'the project itself');
});

t.test('project and resource segments', async (t) => {
  t.equal(cdfProject(`${P}/assets/list`), 'demo');
  t.equal(cdfProject(P), 'demo');
  t.equal(cdfProject('/x'), null);
  t.equal(cdfResource(`${P}/assets/list`), 'assets');
  t.equal(cdfResource(`${P}/assets`), 'assets');
  t.equal(cdfResource(P), null);
  t.ok(cdfResourceIs(`${P}/assets/list`, 'assets'));
  t.ok(cdfResourceIs(`${P}/assets`, 'assets'));
  t.notOk(cdfResourceIs(`${P}/assetsX/list`, 'assets'), 'whole segments only');
  t.notOk(cdfResourceIs(`${P}/timeseries/assets`, 'assets'), 'the first segment only');
  t.notOk(cdfResourceIs(P, 'assets'));
});

t.test('conditions: read holds for reads, write for reads and writes; resources any-of', async (t) => {
  const read = { access: 'read' as const, resources: null };
  const write = { access: 'write' as const, resources: null };
  const ts = { access: 'write' as const, resources: ['timeseries', 'events'] };
  t.ok(cdfConditionHolds(read, 'POST', `${P}/assets/list`));
  t.notOk(cdfConditionHolds(read, 'POST', `${P}/assets/delete`));
  t.ok(cdfConditionHolds(write, 'POST', `${P}/assets/delete`));
  t.ok(cdfConditionHolds(write, 'POST', `${P}/assets/list`), 'write includes read');
  t.ok(cdfConditionHolds(ts, 'POST', `${P}/timeseries/data`));
  t.ok(cdfConditionHolds(ts, 'POST', `${P}/events/delete`));
  t.notOk(cdfConditionHolds(ts, 'POST', `${P}/assets/delete`));
  t.notOk(cdfConditionHolds(write, 'GET', '/apps/x'), 'never off the CDF API');
});
