// Helpers for test/deploy: render deploy/ (kubectl kustomize) and the Helm chart (minihelm, or helm
// when present), validate each object against the Kubernetes schemas, and run `cdf-auth-gateway
// check` on every gateway config a rendered pod would load, inside a simulated pod file system.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseAllDocuments } from 'yaml';

export const ROOT = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../..');
export const CHART = join(ROOT, 'helm/cdf-auth-gateway');
const CLI = join(ROOT, 'dist/main.js');

export type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; [k: string]: unknown };

/** .ci/bin (built by .ci/deploy-tools) first, then PATH. Missing → a clear error, never a skip. */
export function tool(name: 'kubectl' | 'minihelm'): string {
  const local = join(ROOT, '.ci/bin', name);
  if (existsSync(local)) return local;
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  throw new Error(`${name} not found in .ci/bin or PATH: run .ci/deploy-tools (CI does) before the deploy tests`);
}

/** The `helm` binary when one is installed; the helm-only assertions are registered only then. */
export function helmBinary(): string | null {
  const r = spawnSync('sh', ['-c', 'command -v helm'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null;
}

export function exec(cmd: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: ROOT });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
}

export function parseObjects(text: string): Obj[] {
  const out: Obj[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) throw new Error(`rendered YAML does not parse: ${doc.errors[0]!.message}`);
    const v = doc.toJS({ maxAliasCount: -1 }) as Obj | null;
    if (v !== null) out.push(v);
  }
  return out;
}

export function kustomize(dir: string): Obj[] {
  const r = exec(tool('kubectl'), ['kustomize', join(ROOT, dir)]);
  if (r.status !== 0) throw new Error(`kubectl kustomize ${dir} failed: ${r.stderr}`);
  return parseObjects(r.stdout);
}

export function minihelm(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return exec(tool('minihelm'), ['template', '--name', 'gw', '--namespace', 'cdf-gateway', ...args, CHART]);
}

// apiVersion → kubernetes-models module. Anything else must be checked by hand (see validate).
const MODULES: Record<string, string> = {
  v1: 'kubernetes-models/v1',
  'apps/v1': 'kubernetes-models/apps/v1',
  'policy/v1': 'kubernetes-models/policy/v1',
  'autoscaling/v2': 'kubernetes-models/autoscaling/v2',
  'networking.k8s.io/v1': 'kubernetes-models/networking.k8s.io/v1',
  'rbac.authorization.k8s.io/v1': 'kubernetes-models/rbac.authorization.k8s.io/v1',
};

/** Throws when the object does not validate against its Kubernetes schema. */
export async function validate(obj: Obj): Promise<void> {
  if (obj.apiVersion === 'monitoring.coreos.com/v1' && obj.kind === 'ServiceMonitor') return validateServiceMonitor(obj);
  const mod = MODULES[obj.apiVersion];
  if (!mod) throw new Error(`no schema for ${obj.apiVersion} ${obj.kind}`);
  const models = (await import(mod)) as Record<string, new (o: unknown) => { validate(): void }>;
  const Model = models[obj.kind];
  if (!Model) throw new Error(`no schema for ${obj.apiVersion} ${obj.kind}`);
  new Model(obj).validate();
}

// kubernetes-models has no CRDs: the fields the Prometheus Operator needs, checked by hand.
function validateServiceMonitor(obj: Obj): void {
  const spec = obj.spec as { selector?: { matchLabels?: Record<string, string> }; endpoints?: Array<Record<string, unknown>> } | undefined;
  const problems: string[] = [];
  if (!obj.metadata?.name) problems.push('metadata.name missing');
  if (!spec?.selector?.matchLabels || Object.keys(spec.selector.matchLabels).length === 0) problems.push('spec.selector.matchLabels missing');
  if (!Array.isArray(spec?.endpoints) || spec.endpoints.length === 0) problems.push('spec.endpoints missing');
  for (const [i, e] of (spec?.endpoints ?? []).entries()) {
    if (typeof e.port !== 'string' || !e.port) problems.push(`spec.endpoints[${i}].port must name a Service port`);
    for (const k of ['interval', 'scrapeTimeout']) {
      if (e[k] !== undefined && !/^[0-9]+(ms|s|m|h)$/.test(String(e[k]))) problems.push(`spec.endpoints[${i}].${k} is not a duration`);
    }
  }
  if (problems.length) throw new Error(`ServiceMonitor ${obj.metadata?.name}: ${problems.join('; ')}`);
}

type Container = {
  name: string; image: string; args?: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
  securityContext?: Record<string, unknown>;
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  ports?: Array<{ name?: string; containerPort: number }>;
};
type Volume = {
  name: string;
  configMap?: { name: string };
  secret?: { secretName: string; items?: Array<{ key: string; path: string }> };
  projected?: { sources: Array<Record<string, unknown>> };
};
export type PodSpec = { containers: Container[]; volumes?: Volume[]; securityContext?: Record<string, unknown>; serviceAccountName?: string };

/** Pod templates of the workloads among objs, with the owner's name. */
export function pods(objs: Obj[]): Array<{ owner: string; spec: PodSpec; labels: Record<string, string> }> {
  return objs.filter((o) => ['Deployment', 'StatefulSet', 'DaemonSet'].includes(o.kind)).map((o) => {
    const tpl = (o.spec as { template: { metadata?: { labels?: Record<string, string> }; spec: PodSpec } }).template;
    return { owner: `${o.kind}/${o.metadata.name}`, spec: tpl.spec, labels: tpl.metadata?.labels ?? {} };
  });
}

export const isGateway = (c: Container) => /cdf-auth-gateway/.test(c.image);
export const CONFIG_PATH = '/etc/cdf-auth-gateway/gateway.yaml';

/** The --config a gateway container runs with (the image's default when absent). */
export function configPath(c: Container): string {
  const a = c.args ?? [];
  const i = a.findIndex((x) => x === '--config' || x === '-c');
  return i >= 0 && a[i + 1] ? a[i + 1]! : CONFIG_PATH;
}

/**
 * Runs `cdf-auth-gateway check` on the config a gateway container would load, in a file system laid
 * out as the pod's: ConfigMap volumes hold the ConfigMaps' data, Secret volumes one placeholder per
 * listed key, and env values that are absolute paths point into that tree. Secret env values get
 * placeholders. So a config naming a file or variable the pod does not provide fails here.
 */
export function checkInPod(objs: Obj[], spec: PodSpec, c: Container, root: string): { status: number | null; stdout: string; stderr: string; config: string } {
  const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
  const configMaps = new Map(objs.filter((o) => o.kind === 'ConfigMap').map((o) => [o.metadata.name, o as Obj & { data?: Record<string, string> }]));
  const placeholder = (what: string) => `placeholder-for-${what}-`.padEnd(48, 'x');
  let config = '';
  for (const m of c.volumeMounts ?? []) {
    const v = volumes.get(m.name);
    if (!v) throw new Error(`${c.name}: volumeMount ${m.name} has no volume`);
    const at = join(root, m.mountPath);
    mkdirSync(at, { recursive: true });
    if (v.configMap) {
      const cm = configMaps.get(v.configMap.name);
      if (!cm) continue; // e.g. kube-root-ca.crt, which the cluster provides
      for (const [k, text] of Object.entries(cm.data ?? {})) {
        writeFileSync(join(at, k), text);
        if (join(m.mountPath, k) === configPath(c)) config = text;
      }
    }
    if (v.secret) {
      if (!v.secret.items?.length) throw new Error(`${c.name}: secret volume ${v.name} must list its items (keys) explicitly`);
      for (const it of v.secret.items) {
        mkdirSync(dirname(join(at, it.path)), { recursive: true });
        writeFileSync(join(at, it.path), placeholder(`${v.secret.secretName}/${it.key}`) + '\n');
      }
    }
  }
  if (!config) throw new Error(`${c.name}: no ConfigMap provides ${configPath(c)}`);
  const env: Record<string, string> = { PATH: process.env.PATH ?? '' };
  for (const e of c.env ?? []) {
    if (e.name.startsWith('NODE_')) continue; // runtime options of node itself (e.g. extra CA certs), not config
    if (e.value !== undefined) env[e.name] = e.value.startsWith('/') ? join(root, e.value) : e.value;
    else if (e.valueFrom?.secretKeyRef) env[e.name] = placeholder(`${e.valueFrom.secretKeyRef.name}/${e.valueFrom.secretKeyRef.key}`);
  }
  const r = spawnSync(process.execPath, [CLI, 'check', '--config', join(root, configPath(c))], { encoding: 'utf8', env });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, config };
}

/** The hardening every container of every rendered pod must have. */
export const HARDENED = {
  runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false,
} as const;

export function securityProblems(spec: PodSpec): string[] {
  const problems: string[] = [];
  const pod = spec.securityContext ?? {};
  for (const c of spec.containers) {
    const sc = c.securityContext ?? {};
    for (const [k, want] of Object.entries(HARDENED)) {
      const got = sc[k] ?? (k === 'runAsNonRoot' ? pod[k] : undefined);
      if (got !== want) problems.push(`${c.name}: securityContext.${k} is ${String(got)}, want ${want}`);
    }
    if (sc.privileged === true) problems.push(`${c.name}: privileged`);
    const drop = (sc.capabilities as { drop?: string[] } | undefined)?.drop ?? [];
    if (!drop.includes('ALL')) problems.push(`${c.name}: capabilities.drop lacks ALL`);
    const seccomp = ((sc.seccompProfile ?? pod.seccompProfile) as { type?: string } | undefined)?.type;
    if (seccomp !== 'RuntimeDefault') problems.push(`${c.name}: seccompProfile is ${String(seccomp)}, want RuntimeDefault`);
    const uid = sc.runAsUser ?? pod.runAsUser;
    if (uid === 0) problems.push(`${c.name}: runAsUser 0`);
  }
  return problems;
}
