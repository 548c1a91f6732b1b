// deploy/observability: the Grafana dashboard and the Prometheus alert rules. Every metric they
// name must be one the gateway exports (a renamed metric would leave a panel empty or an alert
// silent), the JSON and the PrometheusRule must be well-formed, and promtool must accept the rules
// and every dashboard query (wrapped as recording rules so that it parses them).
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { parse, stringify } from 'yaml';
import { startUpstream } from '../fixtures/upstream.js';
import { startGateway } from '../fixtures/gateway.js';
import { CHART, ROOT, kustomize, minihelm, parseObjects, pods, validate, type Obj } from '../fixtures/deploy.js';

const DASHBOARD = join(ROOT, 'deploy/observability/grafana-dashboard.json');
const RULES = join(ROOT, 'deploy/observability/prometheus-rules.yaml');

interface Target { expr?: string; refId?: string }
interface Panel { id: number; title: string; type: string; targets?: Target[]; gridPos?: object; panels?: Panel[] }
interface Rule { alert?: string; record?: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }
interface RuleFile { groups: Array<{ name: string; rules: Rule[] }> }

const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { uid: string; title: string; panels: Panel[]; templating: { list: unknown[] } };
const ruleObj = parse(readFileSync(RULES, 'utf8')) as Obj & { spec: RuleFile };
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const dashboardExprs = panels.flatMap((p) => (p.targets ?? []).map((x) => ({ where: `panel "${p.title}" ${x.refId}`, expr: x.expr ?? '' })));
const ruleExprs = ruleObj.spec.groups.flatMap((g) => g.rules.map((r) => ({ where: `rule ${r.alert ?? r.record}`, expr: r.expr })));

/** Metric names (cdf_gateway_*) an expression reads. */
const metricsIn = (expr: string) => [...expr.matchAll(/\b(cdf_gateway_[a-zA-Z0-9_]+)\b/g)].map((m) => m[1]!);

/** Every series name the gateway's /metrics can hold: from `# TYPE` lines, with histogram/summary suffixes. */
function exportedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string];
    names.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
    if (type === 'summary') for (const s of ['_sum', '_count']) names.add(name + s);
  }
  return names;
}

t.test('the dashboard is a well-formed Grafana dashboard', async (t) => {
  t.equal(dashboard.uid, 'cdf-auth-gateway');
  t.ok(panels.length >= 10);
  const ids = panels.map((p) => p.id);
  t.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  for (const p of panels) {
    t.ok(p.gridPos, `${p.title}: has a position`);
    t.ok((p.targets ?? []).length > 0, `${p.title}: has queries`);
    for (const x of p.targets ?? []) t.ok(x.expr && metricsIn(x.expr).length > 0, `${p.title} ${x.refId}: queries a gateway metric`);
  }
});

t.test('the alert rules are a valid PrometheusRule', async (t) => {
  await t.resolves(validate(ruleObj), 'validates against the PrometheusRule schema');
  t.equal(ruleObj.kind, 'PrometheusRule');
  for (const g of ruleObj.spec.groups) {
    for (const r of g.rules) {
      t.ok(r.alert && /^[A-Z][A-Za-z0-9]+$/.test(r.alert), `${r.alert}: a CamelCase alert name`);
      t.ok(['critical', 'warning', 'info'].includes(r.labels?.severity ?? ''), `${r.alert}: a severity`);
      t.ok(r.annotations?.summary && r.annotations.description, `${r.alert}: summary and description`);
      t.ok(r.for === undefined || /^\d+[smh]$/.test(r.for), `${r.alert}: for is a duration`);
    }
  }
});

t.test('every metric the dashboard and the alerts name is exported by the gateway', async (t) => {
  const up = await startUpstream();
  t.teardown(() => up.close());
  const gw = await startGateway(t, {
    issuers: [], upstreams: { app: { url: up.url, credentials: { type: 'none' } } }, routes: [{ prefix: '/', upstream: 'app', public: true }],
  });
  await fetch(`${gw.url}/x`);
  const exported = exportedNames(await (await fetch(`${gw.adminUrl}/metrics`)).text());
  t.ok(exported.has('cdf_gateway_requests_total'), 'the gateway\'s own metrics are listed');
  for (const { where, expr } of [...dashboardExprs, ...ruleExprs]) {
    for (const name of metricsIn(expr)) t.ok(exported.has(name), `${where}: ${name} is exported`);
  }
});

t.test('promtool accepts the rules and every dashboard query', async (t) => {
  const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  t.equal(promtool.status, 0, 'promtool is installed (Debian package prometheus; .ci/run installs it)');
  if (promtool.status !== 0) return;
  const dir = t.testdir({});
  const rulesFile = join(dir, 'rules.yaml');
  writeFileSync(rulesFile, stringify(ruleObj.spec));
  let r = spawnSync('promtool', ['check', 'rules', rulesFile], { encoding: 'utf8' });
  t.equal(r.status, 0, `promtool check rules: ${r.stdout}${r.stderr}`);
  // Dashboard queries as recording rules: promtool parses each; Grafana's $job is a plain string here.
  const asRules: RuleFile = { groups: [{ name: 'dashboard', rules: dashboardExprs.map((x, i) => ({ record: `dashboard:query_${i}`, expr: x.expr })) }] };
  const dashFile = join(dir, 'dashboard-queries.yaml');
  writeFileSync(dashFile, stringify(asRules));
  r = spawnSync('promtool', ['check', 'rules', dashFile], { encoding: 'utf8' });
  t.equal(r.status, 0, `dashboard queries parse: ${r.stdout}${r.stderr}`);
});

t.test('the chart ships the same dashboard and rules as deploy/observability', async (t) => {
  t.equal(readFileSync(join(CHART, 'files/grafana-dashboard.json'), 'utf8'), readFileSync(DASHBOARD, 'utf8'));
  const chartRules = parse(readFileSync(join(CHART, 'files/prometheus-rules.yaml'), 'utf8')) as RuleFile;
  t.strictSame(chartRules, ruleObj.spec);
});

const MONITORING = ['-f', join(CHART, 'ci/monitoring-values.yaml')];
function render(args: string[]): Obj[] {
  const r = minihelm(args);
  if (r.status !== 0) throw new Error(`minihelm failed: ${r.stderr}`);
  return parseObjects(r.stdout);
}
type Data = Obj & { data: Record<string, string>; spec: RuleFile };

t.test('chart: dashboard ConfigMap, PrometheusRule and tracing config when enabled; preStop by default', async (t) => {
  const objs = render(MONITORING);
  const dash = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name.endsWith('-dashboard')) as Data | undefined;
  t.ok(dash, 'dashboard ConfigMap');
  t.equal(dash!.metadata.labels?.grafana_dashboard, '1', 'labelled for the Grafana sidecar');
  t.strictSame(JSON.parse(dash!.data['cdf-auth-gateway.json']!), dashboard, 'the dashboard JSON, untouched by templating');
  const rule = objs.find((o) => o.kind === 'PrometheusRule') as Data | undefined;
  t.strictSame(rule?.spec, ruleObj.spec, 'the alert rules, {{ $labels }} left for Prometheus');
  t.equal(rule?.metadata.labels?.release, 'prometheus');
  const cm = objs.find((o) => o.kind === 'ConfigMap' && !o.metadata.name.endsWith('-dashboard')) as Data;
  t.match(parse(cm.data['gateway.yaml']!).tracing, {
    otlpEndpoint: 'http://otel-collector.monitoring:4318', serviceName: String, sampleRatio: 0.25, headers: { 'x-scope-orgid': 'gateways' },
  });
  const [pod] = pods(render([]));
  const gw = pod!.spec.containers[0] as unknown as { lifecycle?: { preStop?: { sleep?: { seconds: number } } } };
  t.equal(gw.lifecycle?.preStop?.sleep?.seconds, 5, 'preStop sleep before SIGTERM');
  t.notOk(render([]).some((o) => o.kind === 'PrometheusRule' || o.metadata.name.endsWith('-dashboard')), 'off by default');
  const [noPre] = pods(render(['--set', 'preStopSleepSeconds=0']));
  t.notOk((noPre!.spec.containers[0] as { lifecycle?: unknown }).lifecycle, 'preStopSleepSeconds=0: none');
  const short = minihelm(['--set', 'terminationGracePeriodSeconds=12']);
  t.not(short.status, 0);
  t.match(short.stderr, /terminationGracePeriodSeconds \(12\) must exceed preStopSleepSeconds \(5\) \+ the drain/);
});

t.test('deploy/: the edge overlay ships the dashboard and the rules, and its pods sleep before the drain', async (t) => {
  const objs = kustomize('deploy/overlays/edge');
  t.ok(objs.some((o) => o.kind === 'PrometheusRule' && o.metadata.namespace === 'cdf-gateway'));
  const dash = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'cdf-auth-gateway-dashboard') as Data | undefined;
  t.strictSame(JSON.parse(dash!.data['cdf-auth-gateway.json']!), dashboard);
  t.equal(dash!.metadata.labels?.grafana_dashboard, '1');
  const [pod] = pods(objs);
  const gw = pod!.spec.containers[0] as unknown as { lifecycle?: { preStop?: { sleep?: { seconds: number } } } };
  t.equal(gw.lifecycle?.preStop?.sleep?.seconds, 5);
});
