// The benchmark's gateway settings, and its two tables: every target with its ratio to its
// same-load baseline, and the headline (the issue's table: paths × gateway settings, goals).
import { SHIPPED_HEAP_MB } from './gateway.mjs';

/** Gateway settings, each its own process: as shipped, then one change at a time. */
export const GATEWAYS = [
  { id: 'shipped', label: 'gateway as shipped (128 MB heap cap, access log on)', heapMb: SHIPPED_HEAP_MB, accessLog: true },
  { id: 'nocap', label: 'gateway, no heap cap, access log on', heapMb: 0, accessLog: true },
  { id: 'nolog', label: 'gateway, 128 MB heap cap, access log off', heapMb: SHIPPED_HEAP_MB, accessLog: false },
];

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
export const fmt = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? '—' : x.toFixed(d));
export const fmtInt = (x) => (x === null || x === undefined ? '—' : Math.round(x).toLocaleString('en-US'));
const MB = 1e6;

/** Baseline CPU per request ÷ target CPU per request: the req/s ratio a CPU-bound process would reach. */
const cpuRatio = (m, base) => (m?.cpuUsPerReq && base?.cpuUsPerReq ? base.cpuUsPerReq / m.cpuUsPerReq : null);

export function resultsTable(targets) {
  const by = Object.fromEntries(targets.map((t) => [t.id, t]));
  const lines = [
    '| target | req/s | × bare | baseline | × baseline | CPU µs/req | × baseline (CPU) | p50 ms | p99 ms | runs |',
    '|---|---:|---:|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const t of targets) {
    const m = t.median;
    const bare = by.bare?.median;
    const base = by[t.baseline]?.median;
    lines.push(`| \`${t.id}\` ${t.label} | ${m ? fmtInt(m.rps) : '—'} | ${m && bare ? fmt(m.rps / bare.rps) : '—'} | ${t.baseline} | ${t.paired ? fmt(t.paired.rps) : m && base ? fmt(m.rps / base.rps) : '—'} | ${m ? fmt(m.cpuUsPerReq, 0) : '—'} | ${fmt(t.paired ? t.paired.cpu : cpuRatio(m, base))} | ${m ? fmt(m.p50Ms) : '—'} | ${m ? fmt(m.p99Ms) : '—'} | ${t.runs.length}${t.skip ? ` (skipped: ${t.skip.split('\n')[0].slice(0, 80)})` : ''} |`);
  }
  return lines.join('\n');
}

/**
 * The issue's table. Throughput rows: req/s ÷ the same-load bare proxy (`bare`; `bare-pool` for
 * first-seen tokens). Goals apply to the as-shipped column.
 */
export function headline({ targets, memory, opts, pinned }) {
  const by = Object.fromEntries(targets.map((t) => [t.id, t]));
  const rps = (id) => by[id]?.median?.rps ?? null;
  // Paired runs (each target right after its own baseline run): the median of the pairs' ratios;
  // else the ratio of the medians.
  const ratio = (id) => {
    const t = by[id];
    if (t?.paired) return t.paired.rps;
    const b = t && rps(t.baseline);
    return t?.median && b ? t.median.rps / b : null;
  };
  const cpu = (id) => (by[id]?.paired ? by[id].paired.cpu : by[id] ? cpuRatio(by[id].median, by[by[id].baseline]?.median) : null);
  // "req/s ratio (CPU ratio)": the second is steadier on a busy machine.
  const both = (id) => (ratio(id) === null ? '—' : `${fmt(ratio(id))} (${fmt(cpu(id))})`);
  const rows = [];
  const row = (name, cells, goal, met) => rows.push({ name, cells, goal, met });
  const cellsOf = (path) => ['shipped', 'nocap', 'nolog'].map((g) => ratio(`${g}:${path}`));
  const atLeast = (x, g) => (x === null ? null : x >= g);

  const bothOf = (path) => ['shipped', 'nocap', 'nolog'].map((g) => both(`${g}:${path}`));
  row('one repeated valid token', bothOf('cached'), '≥ 1.20', atLeast(cellsOf('cached')[0], 1.2));
  row(`first-seen tokens (${opts.pool.toLocaleString('en-US')} distinct; ÷ bare-pool)`, bothOf('first'), '≥ 0.75', atLeast(cellsOf('first')[0], 0.75));
  row('bad signature → 401', bothOf('401'), '≥ 1.50', atLeast(cellsOf('401')[0], 1.5));
  const mem = (id, key) => (memory[id] ? memory[id][key] : null);
  const mbCell = (x) => (x === null ? '—' : `${(x / MB).toFixed(0)} MB`);
  const peakCapped = mem('rss-shipped', 'peak');
  const peakNocap = mem('rss-nocap', 'peak');
  row(`RSS peak under ${Math.min(opts.rssCount, opts.pool).toLocaleString('en-US')} distinct tokens`, [mbCell(peakCapped), mbCell(peakNocap), ''], '≤ 160 MB (≤ 200 MB uncapped)',
    peakCapped === null ? null : peakCapped <= 160 * MB && (peakNocap === null || peakNocap <= 200 * MB));
  const growCapped = mem('big-shipped', 'growth');
  const growNocap = mem('big-nocap', 'growth');
  row(`RSS growth, ${opts.bigCount.toLocaleString('en-US')} distinct ${memory['big-shipped'] ? '~10 KB ' : ''}tokens`, [mbCell(growCapped), mbCell(growNocap), ''], '< 60 MB',
    growCapped === null ? null : growCapped < 60 * MB && (growNocap === null || growNocap < 60 * MB));
  // Access log: as shipped (log on) ÷ log off, same cap, per path.
  const logCost = ['cached', 'first', '401'].map((p) => (ratio(`shipped:${p}`) && ratio(`nolog:${p}`) ? ratio(`shipped:${p}`) / ratio(`nolog:${p}`) : null));
  row('access log on ÷ off (repeated / first-seen / 401)', [logCost.map((x) => fmt(x)).join(' / '), '', ''], '≥ 0.95',
    logCost.every((x) => x === null) ? null : logCost.every((x) => x === null || x >= 0.95));
  row('proxy engine: the gateway\'s undici engine ÷ @fastify/http-proxy, both without auth', [both('engine'), '', ''], 'record (DESIGN: reply-from unless it costs > 10 %)', null);

  const mark = (m) => (m === null ? '' : m ? '✓' : '✗');
  const lines = [
    `| path (req/s ÷ bare Fastify + @fastify/http-proxy${pinned ? ', same pinned core' : ', UNPINNED'}${opts.paired ? ', paired runs' : ''}) | as shipped: 128 MB heap cap, access log on | no cap, log on | cap, log off | goal (as shipped) | met |`,
    '|---|---:|---:|---:|---:|:---:|',
    ...rows.map((r) => `| ${r.name} | ${r.cells.join(' | ')} | ${r.goal} | ${mark(r.met)} |`),
    '',
    `Throughput cells: req/s ratio (CPU ratio = baseline CPU µs per response ÷ the row's)${opts.paired ? ', each the median over rounds of a run against its baseline run just before it' : ''}. Goals are judged on req/s.`,
  ];
  return { text: lines.join('\n'), rows, missed: rows.some((r) => r.met === false) };
}
