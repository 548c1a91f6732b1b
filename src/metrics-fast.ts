// Counters and histograms for the per-request metrics, cheap on the hot path: prom-client's own
// validate and hash their label values on every inc()/observe() (about 0.3 µs each, several per
// request). Here a label set is resolved once to a series object (the last one asked for is kept
// at hand: consecutive requests mostly share route, status and decision) and an observation is
// a few number writes. They register in a prom-client Registry as metric objects of their own (name,
// help, type, get()) and render exactly as prom-client's Counter and Histogram do.
import type { Registry } from 'prom-client';

type Labels = Record<string, string>;
/** A label value; a number (an HTTP status) is written as its decimal string. */
type LabelValue = string | number;
interface MetricValue { labels: Record<string, string | number>; value: number; metricName?: string }
interface MetricJson { name: string; help: string; type: 'counter' | 'histogram'; values: MetricValue[]; aggregator: 'sum' }

abstract class FastMetric<S> {
  readonly aggregator = 'sum';
  private readonly series = new Map<string, { labels: Labels; s: S }>();
  /** The label values asked for last and their series: under load most requests repeat them. */
  private last: readonly LabelValue[] | null = null;
  private lastSeries: S | null = null;

  constructor(readonly name: string, readonly help: string, private readonly labelNames: readonly string[], registers: readonly Registry[]) {
    for (const r of registers) r.registerMetric(this as never);
  }

  /** The series of these label values (in labelNames order): the last one asked for when they repeat, else one string key and one Map lookup. */
  protected seriesOf(values: readonly LabelValue[]): S {
    const last = this.last;
    if (last !== null && sameValues(last, values)) return this.lastSeries!;
    const key = values.join('\0');
    let e = this.series.get(key);
    if (e === undefined) {
      const labels: Labels = {};
      this.labelNames.forEach((n, i) => { labels[n] = String(values[i]); });
      e = { labels, s: this.create() };
      this.series.set(key, e);
    }
    this.last = values;
    this.lastSeries = e.s;
    return e.s;
  }

  protected entries(): Iterable<{ labels: Labels; s: S }> { return this.series.values(); }
  protected abstract create(): S;
  reset(): void {
    this.series.clear();
    this.last = null;
    this.lastSeries = null;
  }
}

/** The same label values, compared as given (200 and '200' are one series, found through the map). */
function sameValues(a: readonly LabelValue[], b: readonly LabelValue[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export interface CounterSeries { inc(by?: number): void }

export class FastCounter extends FastMetric<{ value: number; inc(by?: number): void }> {
  readonly type = 'counter';
  labels(...values: LabelValue[]): CounterSeries { return this.seriesOf(values); }
  protected create() { return { value: 0, inc(by = 1) { this.value += by; } }; }
  async get(): Promise<MetricJson> {
    return { name: this.name, help: this.help, type: 'counter', aggregator: 'sum', values: [...this.entries()].map((e) => ({ labels: e.labels, value: e.s.value })) };
  }
}

export interface HistogramSeries { observe(value: number): void }

interface Buckets { counts: Float64Array; sum: number; count: number; observe(v: number): void }

export class FastHistogram extends FastMetric<Buckets> {
  readonly type = 'histogram';
  constructor(name: string, help: string, labelNames: readonly string[], private readonly bounds: readonly number[], registers: readonly Registry[]) {
    super(name, help, labelNames, registers);
  }

  labels(...values: LabelValue[]): HistogramSeries { return this.seriesOf(values); }

  protected create(): Buckets {
    const bounds = this.bounds;
    return {
      counts: new Float64Array(bounds.length), sum: 0, count: 0,
      observe(v: number) {
        this.sum += v;
        this.count++;
        for (let i = 0; i < bounds.length; i++) if (v <= bounds[i]!) { this.counts[i]!++; return; }
      },
    };
  }

  async get(): Promise<MetricJson> {
    const values: MetricValue[] = [];
    for (const { labels, s } of this.entries()) {
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += s.counts[i]!;
        values.push({ labels: { le, ...labels }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { le: '+Inf', ...labels }, value: s.count, metricName: `${this.name}_bucket` });
      values.push({ labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: 'histogram', aggregator: 'sum', values };
  }
}
