// Reads a V8 .cpuprofile (node --cpu-prof) and says where the time went: self time by function,
// and by category (gateway code by module, libraries, Node internals, GC), as shares of the
// non-idle samples.
import fs from 'node:fs';
import path from 'node:path';

/** Category of a call frame, from its script URL and name. Order matters: first match wins. */
const CATEGORIES = [
  ['GC', (url, fn) => fn === '(garbage collector)'],
  ['native (program)', (url, fn) => fn === '(program)'],
  ['gateway: token/', (url) => /\/dist\/token\//.test(url)],
  ['gateway: upstream/ (proxy, headers)', (url) => /\/dist\/upstream\//.test(url)],
  ['gateway: other (server, policy, request, errors, log)', (url) => /\/dist\//.test(url)],
  ['crypto (node:crypto, verify/hash)', (url) => /internal\/crypto/.test(url)],
  ['jose (claims)', (url) => /node_modules\/jose\//.test(url)],
  ['lru-cache', (url) => /node_modules\/lru-cache\//.test(url)],
  ['logging (pino, sonic-boom)', (url) => /node_modules\/(pino|sonic-boom|@pinojs|fast-redact|on-exit-leak-free)/.test(url)],
  ['fastify (+ find-my-way, light-my-request, avvio)', (url) => /node_modules\/(fastify|@fastify|find-my-way|avvio|fast-json-stringify)/.test(url)],
  ['undici', (url) => /node_modules\/undici\//.test(url) || /internal\/deps\/undici/.test(url)],
  ['node http/net/stream', (url) => /node:(_http|http|net|internal\/(http|net|stream|streams)|stream|internal\/timers|timers)/.test(url) || /^node:_/.test(url)],
  ['node other', (url) => url.startsWith('node:')],
  ['other JS', () => true],
];

const short = (url) => {
  if (!url) return '';
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(url);
  if (m) return `${m[1]}:${path.basename(m[2])}`;
  if (url.startsWith('node:')) return url;
  return path.relative(process.cwd(), url.replace(/^file:\/\//, ''));
};

export function summarise(file, { top = 15 } = {}) {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const counts = new Map();
  for (const s of prof.samples) counts.set(s, (counts.get(s) ?? 0) + 1);
  const usPerSample = (prof.endTime - prof.startTime) / prof.samples.length;
  let busy = 0;
  let idle = 0;
  const self = new Map();
  const cats = new Map();
  for (const [id, c] of counts) {
    const { functionName, url, lineNumber } = byId.get(id).callFrame;
    const fn = functionName || '(anonymous)';
    if (fn === '(idle)') { idle += c; continue; }
    busy += c;
    const key = `${fn} ${short(url)}${url ? `:${lineNumber + 1}` : ''}`;
    self.set(key, (self.get(key) ?? 0) + c);
    const cat = CATEGORIES.find(([, test]) => test(url ?? '', fn))[0];
    cats.set(cat, (cats.get(cat) ?? 0) + c);
  }
  const share = (c) => c / busy;
  return {
    busySec: (busy * usPerSample) / 1e6,
    idleSec: (idle * usPerSample) / 1e6,
    categories: [...cats].sort((a, b) => b[1] - a[1]).map(([name, c]) => ({ name, share: share(c) })),
    top: [...self].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, c]) => ({ name, share: share(c) })),
  };
}

export function formatSummary(title, s) {
  const pct = (x) => `${(100 * x).toFixed(1).padStart(5)} %`;
  return [
    `### ${title}: ${s.busySec.toFixed(1)} s busy, ${s.idleSec.toFixed(1)} s idle`,
    '', 'by category:', ...s.categories.map((c) => `  ${pct(c.share)}  ${c.name}`),
    '', 'top functions (self time):', ...s.top.map((c) => `  ${pct(c.share)}  ${c.name}`), '',
  ].join('\n');
}
