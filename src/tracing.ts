// OpenTelemetry tracing, off unless `tracing:` is configured. Off means off: the SDK and the
// exporter are never imported, no span object exists, and every call site checks
// `activeSpan() === null` (one AsyncLocalStorage read) before building anything. The incoming
// `traceparent` then reaches the upstream untouched, like any other header.
// On: tracing/sdk.ts is loaded at start; each request gets a server span continuing the client's
// W3C trace context, and the upstream call a client span whose context goes upstream.
import type { Attributes, Span } from '@opentelemetry/api';
import type { IncomingHttpHeaders } from 'node:http';
import type { SpanExporter } from '@opentelemetry/sdk-trace';
import type { TracingConfig } from './config/types.js';
import { currentRequest, runInRequest } from './request/context.js';

export type { Span } from '@opentelemetry/api';

/** A started tracer (tracing/sdk.ts). */
export interface ActiveTracing {
  /** The span of an incoming request, continuing its `traceparent` (a non-recording span when not sampled). */
  serverSpan(method: string, headers: IncomingHttpHeaders): Span;
  childSpan(parent: Span, name: string, kind: 'internal' | 'client', attributes?: Attributes): Span;
  /** Replaces `traceparent`/`tracestate` on an outgoing header object with span's context. */
  inject(span: Span, headers: Record<string, string | string[]>): void;
  /** Marks a span failed: status ERROR, `error.type`, the message (never a stack). */
  fail(span: Span, err: unknown): void;
  /** Exports what is buffered and stops. */
  shutdown(): Promise<void>;
}

/** Loads the SDK only when tracing is configured (or a test hands in an exporter). */
export async function startTracing(cfg: TracingConfig | null, exporter?: SpanExporter): Promise<ActiveTracing | null> {
  if (cfg === null && exporter === undefined) return null;
  const { createTracing } = await import('./tracing/sdk.js');
  return createTracing(cfg, exporter);
}

/** The current request's innermost span when tracing is on, else null. */
export function activeSpan(): Span | null {
  const ctx = currentRequest();
  return ctx === undefined ? null : ctx.span;
}

/**
 * Runs fn inside a child span of the current request's span (spans fn opens nest under it).
 * Without tracing, or outside a request, it just runs fn; hot call sites check activeSpan()
 * first so that no closure is built when tracing is off.
 */
export function withSpan<T>(name: string, fn: () => Promise<T>, attributes?: Attributes): Promise<T> {
  const ctx = currentRequest();
  if (ctx === undefined || ctx.span === null || ctx.tracing === null) return fn();
  const { tracing } = ctx;
  const span = tracing.childSpan(ctx.span, name, 'internal', attributes);
  return runInRequest({ id: ctx.id, span, tracing }, fn).then(
    (v) => { span.end(); return v; },
    (err: unknown) => { tracing.fail(span, err); span.end(); throw err; },
  );
}

/** Marks the current span failed (for failures a function reports without throwing). */
export function failSpan(err: unknown): void {
  const ctx = currentRequest();
  if (ctx !== undefined && ctx.span !== null && ctx.tracing !== null) ctx.tracing.fail(ctx.span, err);
}
