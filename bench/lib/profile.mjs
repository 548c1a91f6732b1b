// Reads a V8 .cpuprofile (node --cpu-prof) and says where the time went: self time by function,
// and by category (gateway code by module, libraries, Node internals, GC), as shares of the
// non-idle samples.
import fs from 'node:fs';
import path from 'node:path';

/** Category of a call frame, from its script URL and name. Order matters: first match wins. */
const GATEWAY = /\/dist\/(?!.*node_modules)/;
const LIB = (names) => new RegExp(`node_modules/(${names})/`);
const CATEGORIES = [
  ['GC', (url, fn) => fn === '(garbage collector)'],
  ['socket and file writes (native writev/writeString)', (url, fn) => !url && /^write/.test(fn)],
  ['native (program)', (url, fn) => fn === '(program)'],
  ['crypto (node:crypto: verify, hash)', (url) => /internal\/crypto/.test(url)],
  ['jose (claims)', (url) => LIB('jose').test(url)],
  ['lru-cache', (url) => LIB('lru-cache').test(url)],
  ['logging (pino, sonic-boom)', (url) => LIB('pino|sonic-boom|@pinojs|fast-redact|on-exit-leak-free|thread-stream').test(url)],
  ['fastify (+ find-my-way, reply-from, http-proxy)', (url) => LIB('fastify|@fastify/[^/]+|find-my-way|avvio|fast-json-stringify|light-my-request').test(url)],
  ['undici', (url) => LIB('undici').test(url) || /internal\/deps\/undici/.test(url) || /^wasm:/.test(url)],
  ['gateway: token/', (url) => GATEWAY.test(url) && /\/dist\/token\//.test(url)],
  ['gateway: upstream/ (proxy, headers)', (url) => GATEWAY.test(url) && /\/dist\/upstream\//.test(url)],
  ['gateway: other (server, policy, request, errors, metrics)', (url) => GATEWAY.test(url) || /\/bench\//.test(url)],
  ['node http/net/streams/events', (url) => /^node:(_http|http|net|stream|events|internal\/(http|net|stream|streams|timers|process\/task_queues|async_hooks))/.test(url)],
  ['node other', (url) => url.startsWith('node:')],
  ['other (builtins, prom-client, …)', () => true],
];

const short = (url) => {
  if (!url) return '';
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(url);
  if (m) return `${m[1]}:${path.basename(m[2])}`;
  if (url.startsWith('node:')) return url;
  return path.relative(process.cwd(), url.replace(/^file:\/\//, ''));
};

/**
 * `window`: [from, to] in µs of the monotonic clock (process.hrtime.bigint() / 1000n, the clock
 * of V8's sample timestamps): only samples taken under load count, not start-up or shutdown.
 */
export function summarise(file, { top = 15, window = null } = {}) {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const counts = new Map();
  let t = prof.startTime;
  let kept = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    t += prof.timeDeltas[i];
    if (window && (t < window[0] || t > window[1])) continue;
    kept++;
    counts.set(prof.samples[i], (counts.get(prof.samples[i]) ?? 0) + 1);
  }
  const usPerSample = (prof.endTime - prof.startTime) / prof.samples.length;
  if (!kept) throw new Error(`${file}: no samples in the window`);
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
