// authorize() with CDF-aware conditions: synchronous unless a rule needs CDF or Graph; the
// refusal reason; capabilities from a parsed token/inspect answer.
import t from 'tap';
import { compileRoutes, type CompiledRoute } from '../../src/policy/rules.js';
import { authorize, type PolicyServices } from '../../src/policy/authorize.js';
import { NO_GRANTS, parseInspect, type CdfGrants } from '../../src/cdf/inspect.js';
import { CdfUnavailableError } from '../../src/errors.js';
import type { AllowRule, RouteConfig, UpstreamConfig } from '../../src/config/types.js';
import type { Principal } from '../../src/token/principal.js';

/** A partial error pattern for t.rejects (tap's types want a whole Error). */
const err = (o: Record<string, unknown>): Error => o as unknown as Error;

const upstream: UpstreamConfig = { name: 'cdf', url: 'http://127.0.0.1:5000', timeoutMs: 30000, credentials: { type: 'user-token' } };
const P = '/api/v1/projects/demo';

function rule(r: Partial<AllowRule>): AllowRule {
  return { methods: null, groups: null, scopes: null, subjects: null, cdf: null, project: null, capabilities: null, ...r };
}
function route(allow: AllowRule[], prefix = P, rewritePrefix: string | null = null): CompiledRoute {
  const cfg: RouteConfig = { prefix, upstream: 'cdf', rewritePrefix, public: false, websockets: true, allow, login: null, cors: null };
  return compileRoutes([cfg], { cdf: upstream }).match(prefix)!;
}
function who(sub: string, groups: string[], extra: Partial<Principal> = {}): Principal {
  return { sub, email: null, groups, scopes: new Set(), issuer: 'http://idp', expiresAt: Date.now() + 3_600_000, groupsHeader: groups.join(','), ...extra };
}

const grants = parseInspect({
  subject: 'alice',
  projects: [{ projectUrlName: 'demo', groups: [1] }, { projectUrlName: 'other', groups: [2] }],
  capabilities: [
    { timeSeriesAcl: { actions: ['READ', 'WRITE'], scope: { all: {} } }, projectScope: { projects: ['demo'] } },
    { assetsAcl: { actions: ['READ'], scope: { datasetScope: { ids: [1] } } }, projectScope: { allProjects: {} } },
    { eventsAcl: { actions: ['WRITE'], scope: { all: {} } }, projectScope: { projects: ['other'] } },
  ],
});

/** Services that count calls; the inspector answers `answer` (a grant set, or an error). */
function services(answer: CdfGrants | Error = grants, overageGroups: string[] | null = null) {
  const calls = { inspect: 0, graph: 0 };
  const s: PolicyServices = {
    inspector: { grants: async () => { calls.inspect++; if (answer instanceof Error) throw answer; return answer; } },
    overage: (p) => (overageGroups === null || p.oid == null ? null : { groups: async () => { calls.graph++; return overageGroups; } }),
  };
  return { s, calls };
}

t.test('parseInspect: projects, capabilities per project scope, any resource scope', async (t) => {
  t.strictSame([...grants.projects].sort(), ['demo', 'other']);
  t.ok(grants.has('demo', 'timeSeriesAcl:WRITE'));
  t.notOk(grants.has('other', 'timeSeriesAcl:WRITE'), 'project-scoped');
  t.ok(grants.has('anything', 'assetsAcl:READ'), 'allProjects');
  t.notOk(grants.has('demo', 'assetsAcl:WRITE'));
  t.notOk(grants.has('demo', 'eventsAcl:WRITE'));
  t.throws(() => parseInspect({ subject: 'x' }), 'no projects/capabilities: malformed');
  t.equal(NO_GRANTS.projects.size, 0);
});

t.test('local rules decide synchronously, and first', async (t) => {
  const { s, calls } = services();
  const r = route([rule({ groups: ['readers'], cdf: { access: 'read', resources: null } }), rule({ project: 'demo' })]);
  t.equal(authorize(r, 'POST', `${P}/assets/list`, who('a', ['readers']), s), 'allow', 'a plain string, not a promise');
  t.equal(calls.inspect, 0, 'CDF not asked when a local rule allows');
  const noRemote = route([rule({ groups: ['readers'], cdf: { access: 'read', resources: null } })]);
  t.equal(authorize(noRemote, 'POST', `${P}/assets/delete`, who('a', ['readers']), s), 'no_rule');
  t.equal(calls.inspect, 0);
});

t.test('project and capabilities are decided by CDF', async (t) => {
  const { s, calls } = services();
  const byProject = route([rule({ project: 'demo' })]);
  const v = authorize(byProject, 'GET', `${P}/assets`, who('a', []), s);
  t.type(v, Promise);
  t.equal(await v, 'allow');
  t.equal(await authorize(route([rule({ project: 'nope' })]), 'GET', `${P}/x`, who('a', []), s), 'no_rule');
  const caps = (c: string[]) => route([rule({ project: 'demo', capabilities: c })]);
  t.equal(await authorize(caps(['timeSeriesAcl:WRITE']), 'GET', `${P}/x`, who('a', []), s), 'allow');
  t.equal(await authorize(caps(['timeSeriesAcl:WRITE', 'assetsAcl:READ']), 'GET', `${P}/x`, who('a', []), s), 'allow', 'all required');
  t.equal(await authorize(caps(['timeSeriesAcl:WRITE', 'assetsAcl:WRITE']), 'GET', `${P}/x`, who('a', []), s), 'no_rule', 'one missing');
  t.ok(calls.inspect > 0);
  // Local conditions still apply before CDF is asked.
  const before = calls.inspect;
  const writeOnly = route([rule({ project: 'demo', cdf: { access: 'read', resources: null } })]);
  t.equal(authorize(writeOnly, 'POST', `${P}/assets/delete`, who('a', []), s), 'no_rule');
  t.equal(calls.inspect, before, 'not asked: the cdf condition already failed');
  // Refused by CDF (401/403): no grants, no rule.
  t.equal(await authorize(byProject, 'GET', `${P}/x`, who('a', []), services(NO_GRANTS).s), 'no_rule');
  // Unreachable: the 503 propagates (never allow).
  await t.rejects(Promise.resolve(authorize(byProject, 'GET', `${P}/x`, who('a', []), services(new CdfUnavailableError('down')).s)), err({ status: 503, code: 'cdf_unavailable' }));
  // Without a cdf section (no inspector) such rules never hold.
  t.equal(authorize(byProject, 'GET', `${P}/x`, who('a', []), { inspector: null, overage: () => null }), 'no_rule');
});

t.test('groups overage: groups_overage without Graph, Graph\'s groups with it', async (t) => {
  const over = who('o', [], { groupsOverage: true, oid: 'oid-1' });
  const r = route([rule({ groups: ['g-readers'] })]);
  t.equal(authorize(r, 'GET', `${P}/x`, over, services(grants, null).s), 'groups_overage', 'reason, synchronously');
  t.equal(authorize(r, 'GET', `${P}/x`, { ...over, oid: null }, services(grants, ['g-readers']).s), 'groups_overage', 'no oid: Graph cannot be asked');
  const { s, calls } = services(grants, ['g-other', 'g-readers']);
  t.equal(await authorize(r, 'GET', `${P}/x`, over, s), 'allow');
  t.equal(await authorize(route([rule({ groups: ['g-admins'] })]), 'GET', `${P}/x`, over, s), 'no_rule');
  t.equal(calls.graph, 2);
  // A rule without groups still allows an overage token at once.
  t.equal(authorize(route([rule({ groups: ['g-readers'] }), rule({ subjects: ['o'] })]), 'GET', `${P}/x`, over, services().s), 'allow');
  // Not an overage token: groups from the token, Graph never asked.
  const plain = services(grants, ['g-readers']);
  t.equal(authorize(r, 'GET', `${P}/x`, who('p', ['g-readers']), plain.s), 'allow');
  t.equal(plain.calls.graph, 0);
});

t.test('cdf conditions see the path the upstream API gets (rewritePrefix)', async (t) => {
  const r = route([rule({ cdf: { access: 'read', resources: ['timeseries'] } })], '/service/demo', `${P}`);
  t.equal(authorize(r, 'POST', '/service/demo/timeseries/list', who('a', [])), 'allow');
  t.equal(authorize(r, 'POST', '/service/demo/timeseries/delete', who('a', [])), 'no_rule');
  t.equal(authorize(r, 'POST', '/service/demo/assets/list', who('a', [])), 'no_rule');
  const off = route([rule({ cdf: { access: 'write', resources: null } })], '/apps/x', null);
  t.equal(authorize(off, 'GET', '/apps/x/y', who('a', [])), 'no_rule', 'not the CDF API: the condition never holds');
});
