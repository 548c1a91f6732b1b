// deploy/ renders offline with `kubectl kustomize`; every object validates against the Kubernetes
// schemas, every pod is hardened, and every gateway config passes `cdf-auth-gateway check` with the
// files and variables its pod provides.
import t from 'tap';
import { parse } from 'yaml';
import {
  checkInPod, isGateway, kustomize, literalSecretsInConfigMaps, pods, secretFileSource, securityProblems, validate, type Obj, type PodSpec,
} from '../fixtures/deploy.js';

const DIRS = ['deploy/overlays/edge', 'deploy/examples/sidecar', 'deploy/examples/key-holder'] as const;

type GatewayYaml = {
  server?: { host?: string; port?: number };
  admin?: { host?: string; port?: number };
  issuers: Array<{ issuer: string; audiences: string[] }>;
  routes: Array<{ prefix: string; allow?: Array<{ subjects?: string[] }> }>;
};

const gatewayConfigs = (objs: Obj[], root: (name: string) => string) => pods(objs).flatMap(({ owner, spec }) =>
  spec.containers.filter(isGateway).map((c) => ({ owner, spec, c, ...checkInPod(objs, spec, c, root(`${owner}-${c.name}`)) })));

const selects = (selector: Record<string, string> | undefined, labels: Record<string, string>) =>
  !!selector && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);

// Audiences of the projected service-account tokens a pod mounts.
const projectedAudiences = (spec: PodSpec) => (spec.volumes ?? []).flatMap((v) =>
  (v.projected?.sources ?? []).flatMap((s) => {
    const sat = s.serviceAccountToken as { audience?: string } | undefined;
    return sat ? [sat.audience ?? ''] : [];
  }));

for (const dir of DIRS) {
  t.test(`${dir}: renders, validates, hardened, configs pass check`, async (t) => {
    const objs = kustomize(dir);
    t.ok(objs.length > 0, 'renders objects');
    for (const o of objs) {
      await t.resolves(validate(o), `${o.kind}/${o.metadata.name} validates`);
    }
    t.notOk(objs.some((o) => o.kind === 'Secret'), 'no Secret is rendered: secrets are referenced, never shipped');
    t.strictSame(literalSecretsInConfigMaps(objs), [], 'no ConfigMap holds a literal password or secret');
    const ps = pods(objs);
    t.ok(ps.some(({ spec }) => spec.containers.some(isGateway)), 'has a gateway container');
    for (const { owner, spec } of ps) t.strictSame(securityProblems(spec), [], `${owner} is hardened`);

    const root = t.testdir({});
    const configs = gatewayConfigs(objs, (n) => `${root}/${n.replace(/\W/g, '_')}`);
    for (const g of configs) {
      t.equal(g.status, 0, `${g.owner} ${g.c.name}: cdf-auth-gateway check: ${g.stdout}${g.stderr}`);
      const cfg = parse(g.config) as GatewayYaml;
      t.equal(cfg.admin?.host, '0.0.0.0', `${g.owner}: admin listens on the pod IP for the kubelet's probes`);
      const admin = g.c.ports?.find((p) => p.name === 'admin');
      t.equal(admin?.containerPort, cfg.admin?.port, `${g.owner}: the admin containerPort is admin.port`);
      t.match(g.c.livenessProbe?.httpGet, { path: '/healthz', port: 'admin' });
      t.match(g.c.readinessProbe?.httpGet, { path: '/readyz', port: 'admin' });
    }
    t.ok(configs.length > 0);
  });
}

t.test('edge: Service, PDB and NetworkPolicy select the gateway pods; the proxy listens on every interface', async (t) => {
  const objs = kustomize('deploy/overlays/edge');
  const [pod] = pods(objs);
  t.ok(pod);
  const svc = objs.find((o) => o.kind === 'Service') as Obj & { spec: { selector: Record<string, string>; ports: Array<{ name: string; targetPort: string }> } };
  t.ok(selects(svc.spec.selector, pod!.labels), 'Service selects the pods');
  t.strictSame(svc.spec.ports.map((p) => p.targetPort).sort(), ['admin', 'proxy'], 'Service exposes proxy and admin');
  for (const kind of ['PodDisruptionBudget', 'NetworkPolicy']) {
    const o = objs.find((x) => x.kind === kind) as Obj & { spec: { selector?: { matchLabels: Record<string, string> }; podSelector?: { matchLabels: Record<string, string> } } };
    t.ok(selects((o.spec.selector ?? o.spec.podSelector)?.matchLabels, pod!.labels), `${kind} selects the gateway pods`);
  }
  const hpa = objs.find((o) => o.kind === 'HorizontalPodAutoscaler') as Obj & { spec: { scaleTargetRef: { name: string } } };
  t.equal(hpa.spec.scaleTargetRef.name, objs.find((o) => o.kind === 'Deployment')!.metadata.name, 'HPA scales the gateway');
  const g = gatewayConfigs(objs, () => t.testdir({}))[0]!;
  t.equal((parse(g.config) as GatewayYaml).server?.host, '0.0.0.0');
});

t.test('edge: the replicas share state through the top-level redis section, password from the mounted Secret', async (t) => {
  const objs = kustomize('deploy/overlays/edge');
  const [pod] = pods(objs);
  const gw = pod!.spec.containers.find(isGateway)!;
  const g = checkInPod(objs, pod!.spec, gw, t.testdir({}));
  t.equal(g.status, 0, `cdf-auth-gateway check: ${g.stdout}${g.stderr}`);
  type Redis = { url: string; passwordFile?: string; password?: unknown; keyPrefix?: string };
  const cfg = parse(g.config) as { redis?: Redis; login?: { sessionStore?: string; redis?: Redis } };
  const replicas = (objs.find((o) => o.kind === 'Deployment') as Obj & { spec: { replicas: number } }).spec.replicas;
  t.ok(replicas > 1, 'several replicas');
  t.ok(cfg.redis, 'the top-level redis section is set');
  t.equal(cfg.redis?.url, cfg.login?.redis?.url, 'on the session store\'s server');
  t.equal(cfg.login?.sessionStore, 'redis');
  t.notOk(cfg.redis && 'password' in cfg.redis, 'no password in the config');
  for (const file of [cfg.redis?.passwordFile, cfg.login?.redis?.passwordFile]) {
    t.strictSame(secretFileSource(pod!.spec, gw, file ?? ''), { secret: 'cdf-gateway-redis', key: 'password', readOnly: true }, `${file} is the mounted Secret's password`);
  }
});

t.test('sidecar: the app calls the gateway on loopback holding no secret; the gateway holds it', async (t) => {
  const objs = kustomize('deploy/examples/sidecar');
  const [pod] = pods(objs);
  const gw = pod!.spec.containers.find(isGateway)!;
  const apps = pod!.spec.containers.filter((c) => !isGateway(c));
  t.equal(apps.length, 1, 'one app container next to the gateway');
  const app = apps[0]!;
  const g = checkInPod(objs, pod!.spec, gw, t.testdir({}));
  const cfg = parse(g.config) as GatewayYaml;
  t.equal(cfg.server?.host, '127.0.0.1', 'the proxy listens on loopback only');
  t.equal(app.env?.find((e) => e.name === 'CDF_BASE_URL')?.value, `http://127.0.0.1:${cfg.server?.port}`, 'the app calls the gateway on localhost');
  t.notOk(app.env?.some((e) => e.valueFrom?.secretKeyRef), 'the app gets no secret through env');
  const secretVolumes = new Set((pod!.spec.volumes ?? []).filter((v) => v.secret).map((v) => v.name));
  t.notOk(app.volumeMounts?.some((m) => secretVolumes.has(m.name)), 'the app mounts no Secret');
  t.ok(gw.volumeMounts?.some((m) => secretVolumes.has(m.name)), 'the gateway mounts the Secret');
  // The app authenticates with its pod's projected token: the audience and subject must line up.
  const auds = projectedAudiences(pod!.spec);
  t.ok(auds.length > 0 && auds.every((a) => cfg.issuers.some((i) => i.audiences.includes(a))), 'token audience is trusted');
  const ns = objs.find((o) => o.kind === 'Deployment')!.metadata.namespace;
  const subject = `system:serviceaccount:${ns}:${pod!.spec.serviceAccountName}`;
  t.ok(cfg.routes.every((r) => r.allow?.some((a) => a.subjects?.includes(subject))), `routes allow ${subject}`);
});

t.test('key-holder: each client service authenticates with its own projected token', async (t) => {
  const objs = kustomize('deploy/examples/key-holder');
  const all = pods(objs);
  const gwPod = all.find(({ spec }) => spec.containers.some(isGateway))!;
  const g = checkInPod(objs, gwPod.spec, gwPod.spec.containers.find(isGateway)!, t.testdir({}));
  const cfg = parse(g.config) as GatewayYaml;
  t.ok(cfg.issuers.some((i) => i.issuer === 'https://kubernetes.default.svc.cluster.local'), 'trusts the cluster issuer');
  const allowed = new Set(cfg.routes.flatMap((r) => (r.allow ?? []).flatMap((a) => a.subjects ?? [])));
  const clients = objs.filter((o) => o.kind === 'Deployment' && !pods([o])[0]!.spec.containers.some(isGateway));
  t.ok(clients.length >= 2, 'several client services');
  for (const o of clients) {
    const spec = pods([o])[0]!.spec;
    const subject = `system:serviceaccount:${o.metadata.namespace}:${spec.serviceAccountName}`;
    t.ok(allowed.has(subject), `${subject} is allowed somewhere`);
    t.ok(objs.some((x) => x.kind === 'ServiceAccount' && x.metadata.name === spec.serviceAccountName && x.metadata.namespace === o.metadata.namespace), `${subject} exists`);
    const auds = projectedAudiences(spec);
    t.ok(auds.length > 0 && auds.every((a) => cfg.issuers.some((i) => i.audiences.includes(a))), `${o.metadata.name}: token audience is trusted`);
    t.notOk(spec.containers.some((c) => c.env?.some((e) => e.valueFrom?.secretKeyRef)), `${o.metadata.name} holds no secret`);
    t.notOk((spec.volumes ?? []).some((v) => v.secret), `${o.metadata.name} mounts no Secret`);
  }
  // Every allowed subject is one of the rendered services (no stale names).
  const rendered = new Set(clients.map((o) => `system:serviceaccount:${o.metadata.namespace}:${pods([o])[0]!.spec.serviceAccountName}`));
  t.strictSame([...allowed].filter((s) => !rendered.has(s)), []);
});

t.test('the pod check fails when the pod does not provide what the config names', async (t) => {
  const objs = kustomize('deploy/examples/key-holder');
  const gwPod = pods(objs).find(({ spec }) => spec.containers.some(isGateway))!;
  const gw = gwPod.spec.containers.find(isGateway)!;
  const withoutMount = { ...gw, volumeMounts: gw.volumeMounts!.filter((m) => m.name !== 'legacy-api') };
  const r = checkInPod(objs, gwPod.spec, withoutMount, t.testdir({}));
  t.equal(r.status, 1, 'a missing Secret mount is caught');
  t.match(r.stderr, /upstreams\.legacy\.credentials\.valueFile/);
  const withoutEnv = { ...gw, env: gw.env!.filter((e) => e.name !== 'SECRETS_DIR') };
  t.equal(checkInPod(objs, gwPod.spec, withoutEnv, t.testdir({})).status, 1, 'a missing variable is caught');
});
