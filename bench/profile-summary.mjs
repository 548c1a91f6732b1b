#!/usr/bin/env node
// Summarises V8 .cpuprofile files (node --cpu-prof): self time by function, and inclusive time of
// a few functions of interest, as percentages of the non-idle samples.
//
//   node bench/profile-summary.mjs FILE.cpuprofile [--top 25] [--focus name,name]
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: argv, positionals: files } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '25' }, focus: { type: 'string', default: '' } },
});
if (!files.length) { console.error('usage: node bench/profile-summary.mjs FILE.cpuprofile [--top N] [--focus fn,fn]'); process.exit(2); }

const short = (url) => {
  if (!url) return '';
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(url);
  if (m) return `${m[1]}:${path.basename(m[2])}`;
  if (url.startsWith('node:')) return url;
  return path.relative(process.cwd(), url.replace(/^file:\/\//, ''));
};

for (const file of files) {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const counts = new Map();
  for (const s of prof.samples) counts.set(s, (counts.get(s) ?? 0) + 1);
  const dt = (prof.endTime - prof.startTime) / prof.samples.length; // µs per sample
  let total = 0;
  let idle = 0;
  const self = new Map();
  const incl = new Map();
  const focus = argv.focus.split(',').filter(Boolean);
  for (const [id, c] of counts) {
    const n = byId.get(id);
    const name = n.callFrame.functionName || '(anonymous)';
    if (name === '(idle)') { idle += c; continue; }
    total += c;
    const key = `${name} ${short(n.callFrame.url)}${n.callFrame.url ? `:${n.callFrame.lineNumber + 1}` : ''}`;
    self.set(key, (self.get(key) ?? 0) + c);
    if (focus.length) {
      const seen = new Set();
      for (let p = id; p !== undefined; p = parent.get(p)) {
        const fn = byId.get(p).callFrame.functionName;
        if (focus.includes(fn) && !seen.has(fn)) { seen.add(fn); incl.set(fn, (incl.get(fn) ?? 0) + c); }
      }
    }
  }
  const pct = (c) => `${((100 * c) / total).toFixed(1).padStart(5)} %`;
  console.log(`\n${file}: ${((total * dt) / 1e6).toFixed(1)} s busy, ${((idle * dt) / 1e6).toFixed(1)} s idle (${prof.samples.length} samples)`);
  console.log('self time, top functions:');
  for (const [k, c] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(argv.top))) console.log(`  ${pct(c)}  ${k}`);
  if (focus.length) {
    console.log('inclusive time:');
    for (const fn of focus) console.log(`  ${pct(incl.get(fn) ?? 0)}  ${fn}`);
  }
}
