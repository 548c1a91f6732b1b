// Resident memory of a gateway process under distinct tokens: send every token of a list twice,
// back to back (`concurrency` in flight, keep-alive, loopback: the gateway caches a token the
// second time it verifies, so this fills its cache as clients reusing their tokens do) and sample VmRSS from /proc/<pid>/status every
// 100 ms while sending and for `afterSec` after; the kernel's high-water mark (VmHWM) catches
// peaks between samples.
import fs from 'node:fs';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { isStopping } from './proc.mjs';

export const MB = 1e6;
/** Times each token is sent, back to back (the gateway caches a token the second time it verifies). */
export const SENDS = 2;
export const mb = (bytes) => (bytes / MB).toFixed(1);

/** VmRSS and VmHWM of `pid` in bytes, or null once the process is gone. */
export function readMem(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch { return null; }
}

/**
 * @param {object} o
 * @param {{ pid: number, port: number, running(): boolean }} o.gw   a started gateway
 * @param {string} o.path          request path
 * @param {string[]} o.tokens      each sent `sends` times in a row, in order
 * @param {number} [o.sends]       times each token is sent (SENDS)
 * @param {number} [o.concurrency] requests in flight (64)
 * @param {number} [o.afterSec]    idle sampling after the last response (5)
 * @param {number} [o.maxSec]      stop sending after this long (300)
 * @param {(line: string) => void} [o.progress]
 * @returns {Promise<{ startRss, peak, growth, endRss, afterRss, sent, ok, statuses, errors, firstError, seconds, samples }>}
 */
export async function measureRss({ gw, path, tokens, sends = SENDS, concurrency = 64, afterSec = 5, maxSec = 300, progress }) {
  const pid = gw.pid;
  const samples = [];
  let peakRss = 0;
  const t0 = Date.now();
  const sample = () => {
    const m = readMem(pid);
    if (!m) return;
    samples.push({ t: (Date.now() - t0) / 1000, rss: m.rss });
    if (m.rss > peakRss) peakRss = m.rss;
  };
  sample();
  const startRss = samples[0]?.rss ?? NaN;
  const sampler = setInterval(sample, 100);

  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const statuses = {};
  let errors = 0;
  let firstError = null;
  let next = 0;
  let done = 0;
  const deadline = t0 + maxSec * 1000;
  const total = tokens.length * sends;
  const step = Math.max(1, Math.floor(total / 5));
  const get = (token) => new Promise((resolve) => {
    const req = http.get({
      host: '127.0.0.1', port: gw.port, path, agent, headers: { authorization: `Bearer ${token}` }, timeout: 10_000,
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
      res.on('error', (e) => resolve(e));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve(e));
  });
  async function worker() {
    while (next < total && Date.now() < deadline && !isStopping()) {
      const r = await get(tokens[Math.floor(next++ / sends)]);
      if (typeof r === 'number') statuses[r] = (statuses[r] ?? 0) + 1;
      else { errors++; firstError ??= r.message; }
      if (++done % step === 0 && progress) {
        const m = readMem(pid);
        progress(`${done.toLocaleString('en-US').padStart(7)} sent, ${((Date.now() - t0) / 1000).toFixed(0).padStart(3)} s, RSS ${m ? mb(m.rss) : '—'} MB, peak so far ${mb(Math.max(peakRss, m?.rss ?? 0))} MB`);
      }
    }
  }
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
    const seconds = (Date.now() - t0) / 1000;
    const endRss = readMem(pid)?.rss ?? NaN;
    await sleep(afterSec * 1000);
    sample();
    const mem = readMem(pid);
    const hwm = mem?.hwm ?? NaN;
    const peak = Math.max(peakRss, Number.isFinite(hwm) ? hwm : 0);
    return {
      startRss, peak, growth: peak - startRss, endRss, afterRss: mem?.rss ?? null, hwm, sampledPeak: peakRss,
      sent: done, ok: statuses[200] ?? 0, statuses, errors, firstError, seconds,
      samples: samples.filter((_, i) => i % 10 === 0), // one per second
    };
  } finally {
    clearInterval(sampler);
    agent.destroy();
  }
}
