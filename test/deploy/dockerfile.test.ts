// No Docker engine here: the Dockerfile is parsed and its essential properties checked instead.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Script } from 'node:vm';
import { ROOT } from '../fixtures/deploy.js';

type Instr = { op: string; args: string };
type Stage = { from: string; name: string | null; instrs: Instr[] };

// Joins continuation lines, drops comments, splits into stages; ARG defaults before FROM resolve ${X}.
export function parseDockerfile(text: string): { args: Record<string, string>; stages: Stage[] } {
  const lines = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const line of lines) {
    const m = /^(\S+)\s*(.*)$/.exec(line)!;
    const op = m[1]!.toUpperCase();
    const rest = m[2]!;
    if (op === 'ARG' && stages.length === 0) {
      const [k, v = ''] = rest.split('=', 2);
      args[k!] = v;
    } else if (op === 'FROM') {
      const f = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest)!;
      const image = f[1]!.replace(/\$\{?(\w+)\}?/g, (_s, n: string) => args[n] ?? '');
      stages.push({ from: image, name: f[2] ?? null, instrs: [] });
    } else {
      if (!stages.length) throw new Error(`${op} before FROM`);
      stages.at(-1)!.instrs.push({ op, args: rest });
    }
  }
  return { args, stages };
}

const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const { stages } = parseDockerfile(text);
const final = stages.at(-1)!;
const ops = (s: Stage, op: string) => s.instrs.filter((i) => i.op === op);
const last = (s: Stage, op: string) => ops(s, op).at(-1)?.args;
const json = (s: string) => JSON.parse(s) as string[];

t.test('multi-stage build on Node 24', async (t) => {
  t.ok(stages.length >= 2, 'more than one stage');
  for (const s of stages) t.match(s.from, /^node:24([.-]|$)/, `${s.name ?? 'final'} stage is node:24 (${s.from})`);
  t.match(final.from, /slim|distroless/, 'final stage is slim or distroless');
  const build = stages.find((s) => ops(s, 'RUN').some((r) => /npm run build/.test(r.args)));
  t.ok(build, 'a stage runs npm run build');
  t.ok(ops(build!, 'RUN').some((r) => /npm ci(?!.*--omit=dev)/.test(r.args)), 'the build stage installs dev dependencies with npm ci');
});

t.test('the final stage ships dist/ and production dependencies only', async (t) => {
  for (const r of ops(final, 'RUN')) t.notMatch(r.args, /npm (ci|install|i)\b/, 'no install in the final stage');
  const copies = ops(final, 'COPY');
  const fromStage = (c: Instr) => /--from=(\S+)/.exec(c.args)?.[1];
  const modules = copies.filter((c) => /node_modules/.test(c.args));
  t.equal(modules.length, 1, 'node_modules copied once');
  const depsStage = stages.find((s) => s.name === fromStage(modules[0]!));
  t.ok(depsStage, 'node_modules come from a named stage');
  t.ok(ops(depsStage!, 'RUN').some((r) => /npm ci\b.*--omit=dev/.test(r.args)), 'that stage ran npm ci --omit=dev');
  t.notOk(ops(depsStage!, 'RUN').some((r) => /npm run build/.test(r.args)), 'and built nothing (no dev dependencies there)');
  t.ok(copies.some((c) => fromStage(c) && /\bdist\b/.test(c.args)), 'dist/ copied from the build stage');
  t.notOk(copies.some((c) => !fromStage(c) && /(^|\s)(\.|src|\.\/src)(\s|$)/.test(c.args)), 'no sources copied into the final stage');
});

t.test('runs as a non-root user, stops on SIGTERM, checks /healthz', async (t) => {
  const user = last(final, 'USER');
  t.ok(user, 'USER is set');
  t.notMatch(user!, /^(root|0)(:|$)/, 'not root');
  t.match(user!, /^[1-9][0-9]*(:[1-9][0-9]*)?$/, 'numeric, so runAsNonRoot can verify it');
  t.equal(last(final, 'STOPSIGNAL'), 'SIGTERM');
  const hc = last(final, 'HEALTHCHECK')!;
  t.ok(hc, 'HEALTHCHECK is set');
  const cmd = json(hc.replace(/^.*?CMD\s+/, ''));
  t.equal(cmd[0], 'node', 'uses node itself (slim has no curl)');
  t.match(cmd[2], /http:\/\/127\.0\.0\.1:9090\/healthz/, 'asks the admin /healthz on 9090');
  t.doesNotThrow(() => new Script(cmd[2]!), 'the health check script parses');
  const entry = json(last(final, 'ENTRYPOINT')!);
  t.match(entry.join(' '), /^node .*dist\/main\.js$/, 'the entry point is the CLI');
  t.notOk(entry.includes('--config'), 'so it reads /etc/cdf-auth-gateway/gateway.yaml by default');
  t.match(readFileSync(join(ROOT, 'src/cli.ts'), 'utf8'), /DEFAULT_CONFIG = '\/etc\/cdf-auth-gateway\/gateway\.yaml'/, 'which is the CLI default');
  t.match(ops(final, 'EXPOSE').map((e) => e.args).join(' '), /\b8080\b.*\b9090\b/, 'exposes proxy and admin');
});

t.test('.dockerignore keeps the context to what the build needs', async (t) => {
  const rules = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  t.equal(rules[0], '**', 'everything is ignored by default');
  const allowed = rules.filter((r) => r.startsWith('!')).map((r) => r.slice(1));
  for (const bad of ['node_modules', 'dist', '.git', '.env', 'test']) t.notOk(allowed.some((a) => a.startsWith(bad)), `${bad} stays out`);
  // every path the Dockerfile COPYs from the context is allowed back in, and exists
  for (const s of stages) {
    for (const c of ops(s, 'COPY').filter((c) => !/--from=/.test(c.args))) {
      for (const src of c.args.split(/\s+/).slice(0, -1)) {
        t.ok(allowed.some((a) => a === src || a === `${src}/**`), `${src} is in the context`);
        t.ok(existsSync(join(ROOT, src)), `${src} exists`);
      }
    }
  }
});

t.test('the parser sees a bad Dockerfile as bad', async (t) => {
  const bad = parseDockerfile('ARG B=node:22\nFROM ${B} AS x\nRUN npm install\nFROM node:22\nCOPY --from=x /app/node_modules .\nUSER root\n');
  t.equal(bad.stages[0]!.from, 'node:22');
  t.equal(bad.stages[1]!.instrs.find((i) => i.op === 'USER')!.args, 'root');
  t.notMatch(bad.stages[1]!.from, /^node:24/);
});

t.test('the benchmarks run the processes under test on the image\'s Node when it is installed', async (t) => {
  const major = /^node:(\d+)/.exec(final.from)![1];
  const proc = await import(pathToFileURL(join(ROOT, 'bench/lib/proc.mjs')).href) as { NODE: string; SHIPPED_NODE: string; SHIPPED_NODE_VERSION: string };
  t.equal(proc.SHIPPED_NODE_VERSION.split('.')[0], major, `.ci/node24 pins the image's Node ${major} (${proc.SHIPPED_NODE_VERSION})`);
  if (process.env.BENCH_NODE === undefined || process.env.BENCH_NODE === '') {
    t.equal(proc.NODE, existsSync(proc.SHIPPED_NODE) ? proc.SHIPPED_NODE : process.execPath, 'the bench runs gateways and baselines on it');
  }
});

t.test('the image caps the V8 heap (RSS stays bounded; bench/rss.mjs measures with the same cap)', async (t) => {
  const finalStage = text.slice(text.lastIndexOf('\nFROM '));
  t.match(finalStage, /^ENV .*NODE_OPTIONS="--max-old-space-size=128 --max-semi-space-size=8"/m);
  t.match(finalStage, /^ENV .*MALLOC_TRIM_THRESHOLD_=131072/m, 'glibc returns freed memory above 128 KB');
  t.match(readFileSync(join(ROOT, 'bench/lib/gateway.mjs'), 'utf8'), /SHIPPED_SEMI_SPACE_MB = 8;/, 'the bench runs "as shipped" with the image\'s young generation');
  t.match(readFileSync(join(ROOT, 'bench/lib/gateway.mjs'), 'utf8'), /SHIPPED_ENV = \{ MALLOC_TRIM_THRESHOLD_: '131072' \}/, 'and its malloc setting');
  t.match(readFileSync(join(ROOT, 'bench/rss.mjs'), 'utf8'), /'RSS_HEAP_MB', SHIPPED_HEAP_MB/, 'the RSS benchmark defaults to the shipped cap');
  t.match(readFileSync(join(ROOT, 'bench/lib/gateway.mjs'), 'utf8'), /SHIPPED_HEAP_MB = 128;/, 'which is the image\'s');
});
