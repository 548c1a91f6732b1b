// The benchmark's two baselines (bench/bare-proxy.mjs, bench/bare-undici.mjs) must keep working
// against the built gateway modules they import: a proxy that answers 500 makes `npm run bench`
// drop its row. Each is started as the bench starts it and must forward one request.
import t from 'tap';
import { fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startUpstream } from './fixtures/upstream.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PREFIX = '/api/v1/projects/bench';

for (const script of ['bench/bare-proxy.mjs', 'bench/bare-undici.mjs']) {
  t.test(`${script} forwards a request`, async (t) => {
    const up = await startUpstream();
    t.teardown(() => up.close());
    const child = fork(path.join(REPO, script), [], { env: { ...process.env, UPSTREAM_URL: up.url, PROXY_PREFIX: PREFIX }, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    t.teardown(() => { child.kill(); });
    const port = await new Promise<number>((resolve, reject) => {
      child.on('message', (m: { ready?: boolean; port?: number }) => { if (m.ready) resolve(m.port!); });
      child.on('exit', (code) => reject(new Error(`${script} exited ${code}: ${stderr}`)));
    });
    const res = await fetch(`http://127.0.0.1:${port}${PREFIX}/assets?limit=1`, { headers: { authorization: 'Bearer a.b.c' } });
    t.equal(res.status, 200, `${res.status} ${res.status === 200 ? '' : await res.clone().text()}`);
    t.equal(up.last().url, `${PREFIX}/assets?limit=1`);
  });
}
