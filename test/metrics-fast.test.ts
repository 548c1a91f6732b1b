// The hot-path counters and histograms render exactly as prom-client's own, observation for observation.
import t from 'tap';
import { Counter, Histogram, Registry } from 'prom-client';
import { FastCounter, FastHistogram } from '../src/metrics-fast.js';

const BOUNDS = [0.001, 0.01, 0.1, 1];

t.test('FastCounter and FastHistogram render as prom-client Counter and Histogram', async (t) => {
  const theirs = new Registry();
  const ours = new Registry();
  const c1 = new Counter({ name: 'x_total', help: 'Requests', labelNames: ['route', 'status'], registers: [theirs] });
  const h1 = new Histogram({ name: 'x_seconds', help: 'Duration "quoted" \\ help', labelNames: ['route'], buckets: BOUNDS, registers: [theirs] });
  const c2 = new FastCounter('x_total', 'Requests', ['route', 'status'], [ours]);
  const h2 = new FastHistogram('x_seconds', 'Duration "quoted" \\ help', ['route'], BOUNDS, [ours]);
  const observations: Array<[string, number]> = [['a', 0.0005], ['a', 0.001], ['b', 0.05], ['a', 3], ['b', 0.2], ['a"q', 0.01]];
  for (const [route, v] of observations) {
    c1.labels(route, '200').inc();
    c2.labels(route, '200').inc();
    h1.labels(route).observe(v);
    h2.labels(route).observe(v);
  }
  c1.labels('a', '503').inc(2);
  c2.labels('a', '503').inc(2);
  t.equal(await ours.metrics(), await theirs.metrics(), 'the same exposition text');
});

t.test('a value above every bound counts only in +Inf, sum and count', async (t) => {
  const r = new Registry();
  const h = new FastHistogram('y_seconds', 'y', ['k'], [1], [r]);
  h.labels('v').observe(5);
  const text = await r.metrics();
  t.match(text, /y_seconds_bucket\{le="1",k="v"\} 0|y_seconds_bucket\{k="v",le="1"\} 0/);
  t.match(text, /y_seconds_bucket\{(le="\+Inf",k="v"|k="v",le="\+Inf")\} 1/);
  t.match(text, /y_seconds_sum\{k="v"\} 5/);
  t.match(text, /y_seconds_count\{k="v"\} 1/);
});

t.test('the last label values asked for are kept at hand without mixing series, and reset() forgets them', async (t) => {
  const r = new Registry();
  const c = new FastCounter('z_total', 'z', ['route', 'status'], [r]);
  const seq: Array<[string, string | number]> = [['a', 200], ['a', 200], ['a', '200'], ['b', 200], ['a', 200], ['a', 404], ['a', 404], ['b', 200]];
  for (const [route, status] of seq) c.labels(route, status).inc();
  const text = await r.metrics();
  t.match(text, /z_total\{route="a",status="200"\} 4\n/, 'a/200 four times (a number and its string are one series)');
  t.match(text, /z_total\{route="a",status="404"\} 2\n/);
  t.match(text, /z_total\{route="b",status="200"\} 2\n/);
  c.labels('a', 200).inc();
  c.reset();
  c.labels('a', 200).inc(5);
  t.match(await r.metrics(), /z_total\{route="a",status="200"\} 5\n/, 'after reset(), a new series, not the one kept at hand');
});
