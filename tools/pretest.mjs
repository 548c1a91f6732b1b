#!/usr/bin/env node
// `npm test`'s first step: check that every system part the tests drive is installed, and stop at
// once with one message naming the Debian packages (and the command) when any is missing, instead
// of minutes of cryptic failures. Then build tools/minihelm (Go, against the Debian sprig/yaml
// packages) into .ci/bin, where test/fixtures/deploy.ts looks first. dist/ is built by `npm run
// build` after this.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const GOPATH = '/usr/share/gocode';

const run = (cmd, args) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
};
const onPath = (name) => run('sh', ['-c', `command -v ${name}`]).ok;
const goSource = (pkg) => existsSync(join(GOPATH, 'src', pkg));

/** kubectl with kustomize v4+ (deploy/ uses its syntax): .ci/bin first, like the tests. */
function kubectlOk() {
  const local = join(ROOT, '.ci/bin/kubectl');
  const bin = existsSync(local) ? local : onPath('kubectl') ? 'kubectl' : null;
  if (bin === null) return false;
  const v = /Kustomize Version: v(\d+)/.exec(run(bin, ['version', '--client']).out);
  return v !== null && Number(v[1]) >= 4;
}

// [what, the Debian package that provides it, check]
const parts = [
  ['Chromium (browser login e2e)', 'chromium', () => existsSync('/usr/bin/chromium')],
  ['redis-server (redis session store)', 'redis-server', () => onPath('redis-server')],
  ['nginx with auth_request (forward-auth e2e)', 'nginx-light', () => existsSync('/usr/sbin/nginx') && run('/usr/sbin/nginx', ['-V']).out.includes('http_auth_request_module')],
  ['Caddy (forward-auth e2e)', 'caddy', () => existsSync('/usr/bin/caddy')],
  ['promtool (alert rules and dashboard queries)', 'prometheus', () => onPath('promtool')],
  ['Go (builds tools/minihelm)', 'golang-go', () => onPath('go')],
  ['Go sprig (minihelm)', 'golang-github-masterminds-sprig-dev', () => goSource('github.com/Masterminds/sprig')],
  ['Go yaml v3 (minihelm)', 'golang-gopkg-yaml.v3-dev', () => goSource('gopkg.in/yaml.v3')],
  ['Go sigs.k8s.io/yaml (minihelm)', 'golang-k8s-sigs-yaml-dev', () => goSource('sigs.k8s.io/yaml')],
];

const missing = parts.filter(([, , check]) => !check());
const noKubectl = !kubectlOk();
if (missing.length > 0 || noKubectl) {
  const lines = ['', 'npm test: system parts the tests need are missing (no test was run):'];
  for (const [what, pkg] of missing) lines.push(`  - ${what}: Debian package ${pkg}`);
  if (noKubectl) {
    lines.push('  - kubectl with kustomize v4 or later (renders deploy/): kubectl >= 1.21 from https://pkgs.k8s.io',
      '    (Debian bookworm\'s kubernetes-client embeds kustomize v2), or one in .ci/bin/');
  }
  if (missing.length > 0) {
    lines.push('Install the Debian packages (as root):',
      `  apt-get update && apt-get install -y ${missing.map(([, pkg]) => pkg).join(' ')}`);
  }
  process.stderr.write(`${lines.join('\n')}\n\n`);
  process.exit(1);
}

const engines = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).engines?.node ?? '';
const want = Number(/(\d+)/.exec(engines)?.[1] ?? 0);
if (Number(process.versions.node.split('.')[0]) < want) {
  process.stderr.write(`npm test: note: Node ${process.version} is older than the package's engines (${engines}); the tests run, the image ships a newer Node.\n`);
}

// minihelm: rebuilt only when its source is newer than the binary.
const bin = join(ROOT, '.ci/bin/minihelm');
const src = join(ROOT, 'tools/minihelm/main.go');
if (!existsSync(bin) || statSync(bin).mtimeMs < statSync(src).mtimeMs) {
  mkdirSync(dirname(bin), { recursive: true });
  // GOPATH mode against the Debian packages: no module proxy needed.
  const r = spawnSync('go', ['build', '-o', bin, './tools/minihelm'], {
    cwd: ROOT, encoding: 'utf8',
    env: { ...process.env, GO111MODULE: 'off', GOPATH, GOFLAGS: '', GOCACHE: join(ROOT, '.ci/gocache') },
  });
  if (r.status !== 0) {
    process.stderr.write(`npm test: building tools/minihelm failed:\n${r.stdout}${r.stderr}\n`);
    process.exit(1);
  }
}
