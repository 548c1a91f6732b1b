#!/usr/bin/env node
// Where the time goes, path by path: for each path a fresh process pinned to CPU 0 runs with
// --cpu-prof under wrk's load (on CPU 1) for --duration seconds, then exits and its profile is
// summarised by category and by function. Profiling slows the process a little; read shares,
// not rates.
//
//   node bench/profile.mjs [--duration 10] [--only bare,cached,first,401] [--out DIR]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { canPin, installCleanup, memoryDir, onCleanup, pinSelf, runMain, startHelper, stopChild, nodeVersion } from './lib/proc.mjs';
import { startIssuer } from './lib/issuer.mjs';
import { API_PATH, API_PREFIX, gatewayBuilt, GATEWAY_MAIN, startGateway } from './lib/gateway.mjs';
import { chooseTool, runLoad } from './lib/load.mjs';
import { formatSummary, summarise } from './lib/profile.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const { values: argv } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' }, connections: { type: 'string', default: '50' },
    pool: { type: 'string', default: '100000' }, only: { type: 'string', default: '' }, out: { type: 'string' },
    top: { type: 'string', default: '12' }, help: { type: 'boolean', short: 'h', default: false },
  },
});
if (argv.help) {
  console.log('usage: node bench/profile.mjs [--duration 10] [--connections 50] [--pool 100000] [--only bare,engine,cached,nolog,first,401] [--top 12] [--out DIR]');
  process.exit(0);
}
// nolog: the cached path with the access log off (the on/off pair shows what a line costs).
const PATHS = ['bare', 'engine', 'cached', 'nolog', 'first', '401'];
const only = argv.only ? argv.only.split(',') : PATHS;
const outDir = path.resolve(argv.out ?? path.join(HERE, 'results', `profile-${new Date().toISOString().replace(/[:.]/g, '-')}`));

async function main() {
  installCleanup();
  if (!gatewayBuilt()) throw new Error(`gateway not built: ${GATEWAY_MAIN} is missing (run \`npm run build\`)`);
  const { tool } = chooseTool('auto');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cdf-gw-prof-'));
  onCleanup(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const logDir = memoryDir('cdf-gw-prof-logs-');
  fs.mkdirSync(outDir, { recursive: true });
  const pinned = canPin(['0', '1']);
  const issuer = await startIssuer({ cacheDir: path.join(HERE, 'results', '.tokens') });
  onCleanup(() => issuer.close());
  const token = await issuer.mint(0);
  const bad = await issuer.badSignature();
  const { tokens } = only.includes('first') ? await issuer.mintMany(Number(argv.pool), { offset: 1_000_000 }) : { tokens: null };
  if (pinned) pinSelf('1');
  const upstream = await startHelper(path.join(HERE, 'upstream.mjs'));
  const upstreamUrl = `http://127.0.0.1:${upstream.port}`;
  const env = { UPSTREAM_URL: upstreamUrl, PROXY_PREFIX: API_PREFIX.replace(/\/$/, '') };
  const report = [`# CPU profiles, ${argv.duration} s of wrk load each, ${pinned ? 'process pinned to CPU 0' : 'UNPINNED'}; node ${nodeVersion()}\n`];

  for (const p of PATHS.filter((x) => only.includes(x))) {
    const profDir = path.join(outDir, p);
    const nodeArgs = ['--cpu-prof', `--cpu-prof-dir=${profDir}`];
    let proc;
    // The baselines get the gateway rows' request, Authorization header included (as in run.mjs).
    let auth = { token };
    if (p === 'bare' || p === 'engine') {
      proc = await startHelper(path.join(HERE, p === 'bare' ? 'bare-proxy.mjs' : 'bare-undici.mjs'), env, { cpu: pinned ? '0' : undefined, nodeArgs });
      proc.url = `http://127.0.0.1:${proc.port}`;
    } else {
      proc = await startGateway({ name: `gw-${p}`, dir: tmp, logDir, issuer: issuer.issuer, jwksUri: issuer.jwksUri, upstreamUrl, cpu: pinned ? '0' : undefined, cpuProfDir: profDir, accessLog: p !== 'nolog' });
      if (p === 'first') auth = { tokens };
      else if (p === '401') auth = { token: bad };
    }
    const from = Number(process.hrtime.bigint() / 1000n);
    const res = await runLoad({ tool, url: `${proc.url}${API_PATH}`, connections: Number(argv.connections), durationSec: Number(argv.duration), workDir: tmp, ...auth });
    const to = Number(process.hrtime.bigint() / 1000n);
    await stopChild(proc.child);
    const file = fs.readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) { report.push(`### ${p}: no profile written\n`); continue; }
    fs.writeFileSync(path.join(profDir, 'window.json'), JSON.stringify([from, to]));
    const s = summarise(path.join(profDir, file), { top: Number(argv.top), window: [from, to] });
    report.push(formatSummary(`${p} (${Math.round(res.rps)} req/s under the profiler)`, s));
    console.log(report.at(-1));
  }
  fs.writeFileSync(path.join(outDir, 'summary.md'), report.join('\n'));
  console.log(`profiles and summary.md in ${path.relative(process.cwd(), outDir)}`);
  return 0;
}

await runMain(main);
