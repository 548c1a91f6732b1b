// The Helm chart, rendered offline by minihelm (Go text/template + sprig, tools/minihelm) under the
// default values and each ci/*-values.yaml: every object validates, every pod is hardened, every
// embedded gateway config passes `cdf-auth-gateway check`, and values.schema.json refuses bad values.
// With a real `helm` on PATH, `helm lint` and `helm template` must agree too.
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import AjvModule from 'ajv';
import {
  CHART, checkInPod, exec, helmBinary, isGateway, minihelm, parseObjects, pods, securityProblems, validate, type Obj,
} from '../fixtures/deploy.js';

const CI_VALUES = readdirSync(join(CHART, 'ci')).filter((f) => f.endsWith('-values.yaml')).sort();
const ciPath = (f: string) => join(CHART, 'ci', f);

// Rendered once per argument list: the tests read the objects, never change them.
const rendered = new Map<string, Obj[]>();
function render(args: string[] = []): Obj[] {
  const key = JSON.stringify(args);
  if (!rendered.has(key)) {
    const r = minihelm(args);
    if (r.status !== 0) throw new Error(`minihelm ${args.join(' ')} failed: ${r.stderr}`);
    rendered.set(key, parseObjects(r.stdout));
  }
  return rendered.get(key)!;
}
const find = (objs: Obj[], kind: string) => objs.find((o) => o.kind === kind) as (Obj & { spec: any; data: Record<string, string> }) | undefined;
const configOf = (objs: Obj[]) => parse(find(objs, 'ConfigMap')!.data['gateway.yaml']!) as Record<string, any>;

// Values as helm merges them: maps merge, lists and scalars replace, null deletes.
type Values = Record<string, unknown>;
function merge(dst: Values, src: Values): Values {
  const out: Values = { ...dst };
  for (const [k, v] of Object.entries(src)) {
    if (v === null) delete out[k];
    else if (typeof v === 'object' && !Array.isArray(v) && typeof out[k] === 'object' && out[k] !== null && !Array.isArray(out[k])) out[k] = merge(out[k] as Values, v as Values);
    else out[k] = v;
  }
  return out;
}
const defaults = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as Values;
const Ajv = ((AjvModule as unknown as { default?: typeof AjvModule }).default ?? AjvModule) as unknown as new (o: object) => {
  compile(s: object): ((d: unknown) => boolean) & { errors?: Array<{ instancePath: string; message?: string }> | null };
};
const schemaValidate = new Ajv({ allErrors: true, strict: false }).compile(JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')));
const schemaErrors = (v: Values) => schemaValidate(v) ? [] : (schemaValidate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);

for (const values of ['(defaults)', ...CI_VALUES]) {
  t.test(`chart with ${values}: renders, validates, hardened, config passes check`, async (t) => {
    const args = values === '(defaults)' ? [] : ['-f', ciPath(values)];
    const objs = render(args);
    for (const o of objs) await t.resolves(validate(o), `${o.kind}/${o.metadata.name} validates`);
    t.notOk(objs.some((o) => o.kind === 'Secret'), 'no Secret is rendered: secrets are referenced, never shipped');
    const ps = pods(objs);
    t.equal(ps.length, 1, 'one Deployment');
    for (const { owner, spec } of ps) t.strictSame(securityProblems(spec), [], `${owner} is hardened`);
    const spec = ps[0]!.spec;
    const gw = spec.containers.find(isGateway)!;
    const r = checkInPod(objs, spec, gw, t.testdir({}));
    t.equal(r.status, 0, `cdf-auth-gateway check: ${r.stdout}${r.stderr}`);
    t.match(gw.livenessProbe?.httpGet, { path: '/healthz', port: 'admin' });
    t.match(gw.readinessProbe?.httpGet, { path: '/readyz', port: 'admin' });
    const cfg = configOf(objs);
    t.match(cfg.admin, { host: '0.0.0.0', port: gw.ports!.find((p) => p.name === 'admin')!.containerPort }, 'admin reachable by probes');
    t.equal(cfg.server.port, gw.ports!.find((p) => p.name === 'proxy')!.containerPort);
    const svc = find(objs, 'Service')!;
    t.strictSame(svc.spec.ports.map((p: { targetPort: string }) => p.targetPort), ['proxy', 'admin'], 'Service has proxy and admin ports');
    for (const [k, v] of Object.entries(svc.spec.selector as Record<string, string>)) t.equal(ps[0]!.labels[k], v, `Service selects pods by ${k}`);
    t.match((find(objs, 'Deployment')!.spec.template.metadata.annotations as Record<string, string>)['checksum/config'], /^[0-9a-f]{64}$/);
    t.strictSame(schemaErrors(values === '(defaults)' ? defaults : merge(defaults, parse(readFileSync(ciPath(values), 'utf8')) as Values)), [], 'values pass values.schema.json');
  });
}

t.test('defaults: Deployment, Service, ConfigMap, ServiceAccount, PDB; optional parts off', async (t) => {
  const kinds = render().map((o) => o.kind).sort();
  t.strictSame(kinds, ['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Service', 'ServiceAccount']);
  t.equal(find(render(), 'Deployment')!.spec.replicas, 2);
});

t.test('HPA, ServiceMonitor, NetworkPolicy and Redis when enabled', async (t) => {
  const objs = render(['-f', ciPath('edge-login-values.yaml')]);
  const dep = find(objs, 'Deployment')!;
  t.equal(dep.spec.replicas, undefined, 'the HPA owns replicas');
  const hpa = find(objs, 'HorizontalPodAutoscaler')!;
  t.equal(hpa.apiVersion, 'autoscaling/v2');
  t.match(hpa.spec, { scaleTargetRef: { kind: 'Deployment', name: dep.metadata.name }, minReplicas: 3, maxReplicas: 12 });
  t.strictSame(hpa.spec.metrics.map((m: { resource: { name: string } }) => m.resource.name), ['cpu', 'memory']);
  const sm = find(objs, 'ServiceMonitor')!;
  t.match(sm.spec.endpoints, [{ port: 'admin', path: '/metrics' }]);
  t.equal(sm.metadata.labels?.release, 'kube-prometheus-stack');
  const np = find(objs, 'NetworkPolicy')!;
  t.strictSame(np.spec.ingress.map((r: { ports: Array<{ port: string }> }) => r.ports[0]!.port), ['proxy', 'admin']);
  // Redis: the config points at the mounted password file of the referenced Secret.
  const cfg = configOf(objs);
  t.match(cfg.login, { sessionStore: 'redis', redis: { url: 'rediss://redis.cache.svc.cluster.local:6380', keyPrefix: 'cdf-gw:' } });
  const vol = dep.spec.template.spec.volumes.find((v: { secret?: { secretName: string } }) => v.secret?.secretName === 'cdf-gateway-redis');
  t.ok(vol, 'the Redis password Secret is mounted');
  const mount = dep.spec.template.spec.containers[0].volumeMounts.find((m: { name: string }) => m.name === vol.name);
  const env = dep.spec.template.spec.containers[0].env as Array<{ name: string; value?: string; valueFrom?: unknown }>;
  const secretsDir = env.find((e) => e.name === 'SECRETS_DIR')!.value!;
  t.equal(cfg.login.redis.passwordFile.replace('${SECRETS_DIR}', secretsDir), `${mount.mountPath}/${vol.secret.items[0].path}`);
  t.equal(cfg.server.publicUrl, 'https://gateway.example.com');
  t.match(env.find((e) => e.name === 'LOGIN_CLIENT_SECRET'), { valueFrom: { secretKeyRef: { name: 'cdf-gateway-login', key: 'client-secret' } } });
});

t.test('sidecar values: loopback proxy, app container beside the gateway', async (t) => {
  const objs = render(['-f', ciPath('sidecar-values.yaml')]);
  t.equal(configOf(objs).server.host, '127.0.0.1');
  const names = find(objs, 'Deployment')!.spec.template.spec.containers.map((c: { name: string }) => c.name);
  t.strictSame(names, ['gateway', 'app']);
  t.notOk(objs.some((o) => o.kind === 'PodDisruptionBudget'), 'PDB off for a single replica');
});

t.test('the config checksum follows the config, and only the config', async (t) => {
  const sum = (args: string[]) => (find(render(args), 'Deployment')!.spec.template.metadata.annotations as Record<string, string>)['checksum/config'];
  t.equal(sum([]), sum(['--set', 'replicaCount=5']), 'unchanged by non-config values');
  t.not(sum([]), sum(['--set', 'config.log.level=debug']), 'changed by a config value');
});

t.test('values.schema.json refuses bad values', async (t) => {
  const bad: Array<[string, Values]> = [
    ['a literal client secret', { config: { upstreams: { s: { url: 'https://x', credentials: { type: 'client-credentials', clientSecret: 'hunter2' } } } } }],
    ['a literal API key', { config: { upstreams: { s: { url: 'https://x', credentials: { type: 'api-key', value: 'k-123' } } } } }],
    ['a literal cookie secret', { config: { login: { cookieSecret: 'x'.repeat(40) } } }],
    ['a literal cookie secret in a rotation list', { config: { login: { cookieSecret: ['${NEW}', 'old-literal-secret'] } } }],
    ['a literal login client secret', { config: { login: { projects: { p: { clientSecret: 'abc' } } } } }],
    ['a literal Redis password', { config: { login: { redis: { password: 'pw' } } } }],
    ['a secret through extraEnv', { extraEnv: [{ name: 'X', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }] }],
    ['replicas as a string', { replicaCount: '2' }],
    ['a missing image', { image: null }],
    ['an empty image repository', { image: { repository: '' } }],
    ['server.host in config (the chart sets it)', { config: { server: { host: '0.0.0.0' } } }],
    ['redis on without a URL', { redis: { enabled: true } }],
    ['a writable root file system', { securityContext: { readOnlyRootFilesystem: false } }],
    ['a port out of range', { ports: { proxy: 70000 } }],
    ['a secretFiles entry without keys', { secretFiles: [{ secret: 'cdf-x' }] }],
  ];
  for (const [what, override] of bad) t.not(schemaErrors(merge(defaults, override)).length, 0, `refuses ${what}`);
  t.strictSame(schemaErrors(merge(defaults, { config: { login: { cookieSecret: ['${NEW}', '${OLD}'] } } })), [], 'accepts ${NAME} references');
});

t.test('rendering fails early on values the templates cannot use', async (t) => {
  let r = minihelm(['--set', 'image.repository=']);
  t.not(r.status, 0);
  t.match(r.stderr, /image\.repository is required/);
  r = minihelm(['--set', 'redis.enabled=true', '--set', 'redis.url=redis://r:6379']);
  t.not(r.status, 0);
  t.match(r.stderr, /redis\.enabled needs config\.login/);
  const login = ['-f', ciPath('edge-login-values.yaml'), '--set', 'publicUrl='];
  r = minihelm(login);
  t.not(r.status, 0);
  t.match(r.stderr, /publicUrl is required/);
  r = minihelm([...login, '--set', 'config.server.publicUrl=https://gw.example.com']);
  t.equal(r.status, 0, `config.server.publicUrl will do as well: ${r.stderr}`);
});

t.test('kubernetes-models catches what a template could get wrong', async (t) => {
  const dep = find(render(), 'Deployment')!;
  await t.rejects(validate({ ...dep, spec: { ...dep.spec, replicas: '2' } }), 'replicas as a string');
  const c = dep.spec.template.spec.containers[0];
  await t.rejects(validate({ ...dep, spec: { ...dep.spec, template: { ...dep.spec.template, spec: { ...dep.spec.template.spec, containers: [{ ...c, name: undefined }] } } } }), 'a container without a name');
  const sm = find(render(['-f', ciPath('monitoring-values.yaml')]), 'ServiceMonitor')!;
  await t.rejects(validate({ ...sm, spec: { ...sm.spec, endpoints: [{ port: 9090, interval: 'often' }] } }), 'a ServiceMonitor endpoint with a numeric port and a bad interval');
});

t.test('NOTES.txt renders', async (t) => {
  const r = minihelm(['--notes']);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /gw-cdf-auth-gateway\.cdf-gateway\.svc/);
});

// A real helm is not installable here; where one exists, it must accept the chart as well.
const helm = helmBinary();
if (helm) {
  t.test('helm lint and helm template agree', async (t) => {
    for (const values of [[], ...CI_VALUES.map((f) => ['-f', ciPath(f)])]) {
      const lint = exec(helm, ['lint', '--strict', CHART, ...values]);
      t.equal(lint.status, 0, lint.stdout + lint.stderr);
      const r = exec(helm, ['template', 'gw', CHART, '--namespace', 'cdf-gateway', ...values]);
      t.equal(r.status, 0, r.stderr);
      const kinds = (objs: Obj[]) => objs.map((o) => `${o.kind}/${o.metadata.name}`).sort();
      t.strictSame(kinds(parseObjects(r.stdout)), kinds(render(values)), `same objects as minihelm with ${values.join(' ') || 'defaults'}`);
    }
  });
}

t.test('heapMb caps the V8 heap through NODE_OPTIONS; 0 leaves it to Node', async (t) => {
  const envOf = (objs: Obj[]) => (find(objs, 'Deployment')!.spec.template.spec.containers.find(isGateway)!.env ?? []) as Array<{ name: string; value?: string }>;
  t.same(envOf(render()).find((e) => e.name === 'NODE_OPTIONS'), { name: 'NODE_OPTIONS', value: '--max-old-space-size=128 --max-semi-space-size=16' });
  t.equal(envOf(render(['--set', 'heapMb=256'])).find((e) => e.name === 'NODE_OPTIONS')?.value, '--max-old-space-size=256 --max-semi-space-size=16');
  t.equal(envOf(render(['--set', 'semiSpaceMb=8'])).find((e) => e.name === 'NODE_OPTIONS')?.value, '--max-old-space-size=128 --max-semi-space-size=8');
  t.notOk(envOf(render(['--set', 'heapMb=0'])).some((e) => e.name === 'NODE_OPTIONS'));
  t.ok(schemaErrors(merge(defaults, { heapMb: -1 })).length > 0, 'a negative heap is refused');
});
