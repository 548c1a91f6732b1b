// The soak's bookkeeping: when each fault happens, what a result means (ok, tolerated during a
// fault the contract allows to fail, or lost), and the per-window and final reports.

/** Fault windows in ms from the start, as shares of the run. */
export function faultWindows(totalMs) {
  const at = (share) => Math.round(totalMs * share);
  return {
    jwks: [at(0.20), at(0.35)],
    redis: [at(0.45), at(0.45) + 15_000],     // the restart and the reconnect after it
    resets: [at(0.60), at(0.70)],
    reload: [at(0.80), at(0.80) + 5_000],
  };
}

/**
 * Failures the contract allows during a fault: a session while Redis restarts (503: the store is
 * unavailable), a 502 while the upstream resets connections (uploads are never retried; a GET
 * whose one retry meets a reset too). Anything else that misses its expectation is lost.
 */
function tolerated(w, t, kind, outcome) {
  const inside = ([a, b]) => t >= a && t <= b + 1000;
  if (kind === 'session' && inside(w.redis) && (outcome === 503 || outcome === 401)) return 'redis restart';
  if (outcome === 502 && inside(w.resets)) return 'upstream resets';
  return null;
}

const p = (sorted, q) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]);
const fmt = (n, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '-');

export class Recorder {
  #w;
  #win = this.#fresh();
  #total = { requests: 0, ok: 0, tolerated: new Map(), lost: new Map(), latencies: [] };
  #rss = [];
  #firstWindowEnd = null;

  constructor(windows) { this.#w = windows; }

  #fresh() { return { requests: 0, ok: 0, errors: new Map(), latencies: [] }; }

  result(t, kind, outcome, ms, ok) {
    const w = this.#win;
    w.requests++; this.#total.requests++;
    if (ok) { w.ok++; this.#total.ok++; w.latencies.push(ms); this.#total.latencies.push(ms); return; }
    const key = `${kind}:${outcome}`;
    const why = tolerated(this.#w, t, kind, outcome);
    w.errors.set(why ? `${key} (${why})` : key, (w.errors.get(why ? `${key} (${why})` : key) ?? 0) + 1);
    const bucket = why ? this.#total.tolerated : this.#total.lost;
    const k = why ? `${key} during ${why}` : key;
    bucket.set(k, (bucket.get(k) ?? 0) + 1);
  }

  /** Closes the current window; returns its report line. */
  window(t, rss) {
    const w = this.#win;
    this.#win = this.#fresh();
    this.#rss.push({ t, rss });
    this.#firstWindowEnd ??= t;
    const lat = w.latencies.sort((a, b) => a - b);
    const errors = [...w.errors].map(([k, v]) => `${k}=${v}`).join(' ') || 'none';
    const phase = Object.entries(this.#w).filter(([, [a, b]]) => t >= a && t - 1 <= b + 60_000 && t >= a).map(([k]) => k);
    return `[${fmt(t / 1000, 0)}s] requests ${w.requests} ok ${w.ok} p50 ${fmt(p(lat, 0.5))} ms p99 ${fmt(p(lat, 0.99))} ms ` +
      `rss ${rss.map((r) => fmt(r, 0)).join('/')} MB errors: ${errors}${phase.length ? ` (faults so far: ${phase.join(', ')})` : ''}`;
  }

  summary(logs) {
    const T = this.#total;
    const lat = T.latencies.sort((a, b) => a - b);
    const list = (m) => ([...m].map(([k, v]) => `  ${k}: ${v}`).join('\n') || '  none');
    // RSS after the first minute (the first window in runs of two minutes or less) against the rest.
    const end = this.#rss.at(-1)?.t ?? 0;
    const baseAt = end > 120_000 ? 60_000 : (this.#firstWindowEnd ?? 0);
    const base = this.#rss.find((r) => r.t >= baseAt - 1) ?? this.#rss[0];
    const later = this.#rss.filter((r) => r.t > base.t);
    const growth = base.rss.map((b, i) => Math.max(0, ...later.map((r) => r.rss[i])) / b - 1);
    const rssFlat = later.length === 0 || growth.every((g) => g <= 0.25);
    const lost = [...T.lost.values()].reduce((a, b) => a + b, 0);
    const text = [
      `requests ${T.requests}, as the contract says ${T.ok}, p50 ${fmt(p(lat, 0.5))} ms, p99 ${fmt(p(lat, 0.99))} ms, p99.9 ${fmt(p(lat, 0.999))} ms`,
      `tolerated failures (the contract allows them during the fault):`, list(T.tolerated),
      `lost requests (the contract says they succeed): ${lost}`, list(T.lost),
      `RSS: ${base.rss.map((r) => fmt(r, 0)).join('/')} MB at ${fmt(base.t / 1000, 0)} s, max after ${later.length ? base.rss.map((_, i) => fmt(Math.max(...later.map((r) => r.rss[i])), 0)).join('/') : '-'} MB ` +
        `(growth ${growth.map((g) => `${fmt(g * 100, 0)} %`).join('/')}): ${rssFlat ? 'flat' : 'GROWING'}`,
      `gateway logs: ${logs.map((l) => `${l.name} ${l.warn} warn, ${l.error} error`).join('; ')}`,
      lost === 0 && rssFlat ? 'PASS' : 'FAIL',
    ].join('\n');
    return { lost: lost > 0 || !rssFlat, text };
  }
}
