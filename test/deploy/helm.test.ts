// The Helm chart, rendered offline by minihelm (Go text/template + sprig, tools/minihelm) under the
// default values and each ci/*-values.yaml: every object validates, every pod is hardened, every
// embedded gateway config passes `cdf-auth-gateway check`, and values.schema.json refuses bad values.
// With a real `helm` on PATH, `helm lint` and `helm template` must agree too.
import t from 'tap';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import AjvModule from 'ajv';
import {
  CHART, checkInPod, exec, helmBinary, isGateway, literalSecretsInConfigMaps, minihelm, parseObjects, pods, secretFileSource,
  securityProblems, validate, type Obj,
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
    t.strictSame(literalSecretsInConfigMaps(objs), [], 'no ConfigMap holds a literal password or secret');
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
  // Redis: the shared section and the session store, both reading the password from the file of
  // the referenced Secret, mounted read-only.
  const cfg = configOf(objs);
  const url = 'rediss://redis.cache.svc.cluster.local:6380';
  t.match(cfg.login, { sessionStore: 'redis', redis: { url, keyPrefix: 'cdf-gw:' } });
  t.strictSame(cfg.redis, { url, keyPrefix: 'cdf-gw:', lockTtlMs: 10000, shareClientCredentials: true, passwordFile: cfg.login.redis.passwordFile },
    'the top-level redis section the replicas share');
  const { spec } = pods(objs)[0]!;
  const gw = spec.containers.find(isGateway)!;
  for (const file of [cfg.redis.passwordFile, cfg.login.redis.passwordFile]) {
    t.strictSame(secretFileSource(spec, gw, file), { secret: 'cdf-gateway-redis', key: 'password', readOnly: true }, `${file} is the mounted Secret's password`);
  }
  const env = gw.env!;
  t.equal(cfg.server.publicUrl, 'https://gateway.example.com');
  t.match(env.find((e) => e.name === 'LOGIN_CLIENT_SECRET'), { valueFrom: { secretKeyRef: { name: 'cdf-gateway-login', key: 'client-secret' } } });
});

t.test('redis without login: the shared section with its password and sealing key from mounted Secrets', async (t) => {
  const objs = render(['-f', ciPath('shared-state-values.yaml')]);
  const cfg = configOf(objs);
  t.notOk(cfg.login, 'no browser login');
  t.strictSame(cfg.redis, {
    url: 'rediss://redis.cache.svc.cluster.local:6380', keyPrefix: 'cdf-gw-ingest:', lockTtlMs: 5000, shareClientCredentials: true,
    passwordFile: '${SECRETS_DIR}/redis/password', secretFile: '${SECRETS_DIR}/redis-sealing/token-seal',
  });
  const { spec } = pods(objs)[0]!;
  const gw = spec.containers.find(isGateway)!;
  t.strictSame(secretFileSource(spec, gw, cfg.redis.passwordFile), { secret: 'cdf-gateway-redis', key: 'password', readOnly: true });
  t.strictSame(secretFileSource(spec, gw, cfg.redis.secretFile), { secret: 'cdf-gateway-redis', key: 'token-seal', readOnly: true });
  const cm = find(objs, 'ConfigMap')!.data['gateway.yaml']!;
  t.notMatch(cm, /password:|secret:/, 'the ConfigMap names the files only');
  const leaky = render(['-f', ciPath('shared-state-values.yaml'), '--set', 'config.redis.password=hunter2']);
  t.strictSame(literalSecretsInConfigMaps(leaky), ['gw-cdf-auth-gateway[gateway.yaml].redis.password'], 'a literal password would be caught');
  const notes = minihelm(['--notes', '-f', ciPath('shared-state-values.yaml')]);
  t.match(notes.stdout, /share refresh locks, logouts and client-credentials tokens through Redis at rediss:\/\/redis\.cache/);
  t.notMatch(notes.stdout, /WARNING|Browser sessions/);
});

t.test('redis.sessionStore: false keeps sealed cookie sessions beside the shared section', async (t) => {
  const objs = render(['-f', ciPath('edge-login-values.yaml'), '--set', 'redis.sessionStore=false', '--set', 'redis.lockTtlMs=2000', '--set', 'redis.shareClientCredentials=false']);
  const cfg = configOf(objs);
  t.equal(cfg.login.sessionStore, undefined);
  t.equal(cfg.login.redis, undefined);
  t.match(cfg.redis, { url: 'rediss://redis.cache.svc.cluster.local:6380', lockTtlMs: 2000, shareClientCredentials: false, passwordFile: '${SECRETS_DIR}/redis/password' });
  const { spec } = pods(objs)[0]!;
  const r = checkInPod(objs, spec, spec.containers.find(isGateway)!, t.testdir({}));
  t.equal(r.status, 0, `cdf-auth-gateway check: ${r.stdout}${r.stderr}`);
});

t.test('several replicas: login needs redis; client-credentials without it get a warning', async (t) => {
  const login = ['-f', ciPath('edge-login-values.yaml'), '--set', 'redis.enabled=false'];
  for (const scale of [['--set', 'autoscaling.enabled=false', '--set', 'replicaCount=2'], []]) {
    const r = minihelm([...login, ...scale]);
    t.not(r.status, 0, `refused with ${scale.join(' ') || 'the HPA'}`);
    t.match(r.stderr, /config\.login with more than one replica .* needs redis\.enabled and redis\.url: .*logout/);
  }
  const one = minihelm([...login, '--set', 'autoscaling.enabled=false', '--set', 'replicaCount=1']);
  t.equal(one.status, 0, `one replica needs no redis: ${one.stderr}`);
  t.equal(minihelm([...login, '--set', 'autoscaling.maxReplicas=1', '--set', 'autoscaling.minReplicas=1']).status, 0, 'nor an HPA capped at one');
  const own = minihelm([...login, '--set', 'config.redis.url=redis://r:6379']);
  t.equal(own.status, 0, `a redis section written in config will do: ${own.stderr}`);
  // Without login nothing breaks: each replica only fetches its own client-credentials token.
  const kh = minihelm(['--notes', '-f', ciPath('key-holder-values.yaml')]);
  t.equal(kh.status, 0, kh.stderr);
  t.match(kh.stdout, /WARNING: several replicas without redis\.enabled: each replica requests its own client-credentials/);
  t.notMatch(minihelm(['--notes']).stdout, /WARNING/, 'user tokens only: nothing to share');
  t.notMatch(minihelm(['--notes', '-f', ciPath('key-holder-values.yaml'), '--set', 'replicaCount=1']).stdout, /WARNING/, 'one replica: nothing to share');
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
    ['a literal shared Redis password', { config: { redis: { password: 'pw' } } }],
    ['a literal Redis sealing secret', { config: { redis: { secret: 'y'.repeat(40) } } }],
    ['a Redis lock TTL out of range', { redis: { lockTtlMs: 50 } }],
    ['shareClientCredentials as a string', { redis: { shareClientCredentials: 'yes' } }],
    ['a sealing secret with a bad key', { redis: { sealingSecret: { existingSecret: 's', key: 'a/b' } } }],
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
  r = minihelm(['--set', 'redis.enabled=true']);
  t.not(r.status, 0);
  t.match(r.stderr, /redis\.url is required when redis\.enabled/);
  // Without login only the shared section is set; sharing client-credentials tokens then needs a sealing key.
  r = minihelm(['-f', ciPath('key-holder-values.yaml'), '--set', 'redis.enabled=true', '--set', 'redis.url=redis://r:6379']);
  t.not(r.status, 0);
  t.match(r.stderr, /redis\.sealingSecret\.existingSecret is required/);
  r = minihelm(['-f', ciPath('key-holder-values.yaml'), '--set', 'redis.enabled=true', '--set', 'redis.url=redis://r:6379', '--set', 'redis.shareClientCredentials=false']);
  t.equal(r.status, 0, `not when they are not shared: ${r.stderr}`);
  const shared = parseObjects(r.stdout);
  t.match(configOf(shared).redis, { url: 'redis://r:6379', shareClientCredentials: false });
  const { spec } = pods(shared)[0]!;
  const pod = checkInPod(shared, spec, spec.containers.find(isGateway)!, t.testdir({}));
  t.equal(pod.status, 0, `cdf-auth-gateway check: ${pod.stdout}${pod.stderr}`);
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
  t.same(envOf(render()).find((e) => e.name === 'NODE_OPTIONS'), { name: 'NODE_OPTIONS', value: '--max-old-space-size=128 --max-semi-space-size=8' });
  t.equal(envOf(render(['--set', 'heapMb=256'])).find((e) => e.name === 'NODE_OPTIONS')?.value, '--max-old-space-size=256 --max-semi-space-size=8');
  t.equal(envOf(render(['--set', 'semiSpaceMb=16'])).find((e) => e.name === 'NODE_OPTIONS')?.value, '--max-old-space-size=128 --max-semi-space-size=16');
  // 0 must clear the image's own NODE_OPTIONS (its ENV caps the heap at 128 MB), not just leave it out.
  t.same(envOf(render(['--set', 'heapMb=0'])).filter((e) => e.name === 'NODE_OPTIONS'), [{ name: 'NODE_OPTIONS', value: '' }]);
  // NODE_OPTIONS in extraEnv is the one entry, whatever heapMb says (no duplicate name in the pod spec).
  const own = join(mkdtempSync(join(tmpdir(), 'helm-env-')), 'values.yaml');
  writeFileSync(own, 'extraEnv:\n  - { name: NODE_OPTIONS, value: "--max-old-space-size=512" }\n');
  for (const heap of ['128', '0']) {
    t.same(envOf(render(['-f', own, '--set', `heapMb=${heap}`])).filter((e) => e.name === 'NODE_OPTIONS'), [{ name: 'NODE_OPTIONS', value: '--max-old-space-size=512' }], `heapMb=${heap}`);
  }
  t.ok(schemaErrors(merge(defaults, { heapMb: -1 })).length > 0, 'a negative heap is refused');
});
