// The OpenTelemetry SDK side of tracing.ts, imported only when tracing is on. Spans are batched
// and exported over OTLP/HTTP (JSON); sampling follows the caller's decision when a traceparent
// comes in, else `sampleRatio`. No global provider or context manager is installed: parents are
// passed explicitly (request/context.ts carries them), so nothing else in the process changes.
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, defaultTextMapGetter, defaultTextMapSetter, trace, type Attributes, type Span } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, ParentBasedSampler, SimpleSpanProcessor, TraceIdRatioBasedSampler, TracerProvider, type SpanExporter } from '@opentelemetry/sdk-trace';
import { ATTR_ERROR_TYPE, ATTR_HTTP_REQUEST_METHOD, ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { IncomingHttpHeaders } from 'node:http';
import type { TracingConfig } from '../config/types.js';
import type { ActiveTracing } from '../tracing.js';

/** `<endpoint>/v1/traces`, the OTLP/HTTP traces path, unless the endpoint already names it. */
export function tracesUrl(endpoint: string): string {
  const base = endpoint.replace(/\/+$/, '');
  return base.endsWith('/v1/traces') ? base : `${base}/v1/traces`;
}

export function createTracing(cfg: TracingConfig | null, testExporter?: SpanExporter): ActiveTracing {
  const exporter = testExporter ?? new OTLPTraceExporter({
    url: tracesUrl(cfg!.otlpEndpoint), headers: { ...cfg!.headers }, timeoutMillis: 10_000,
  });
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: cfg?.serviceName ?? 'cdf-auth-gateway' }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(cfg?.sampleRatio ?? 1) }),
    // Tests read spans as soon as a request ends; production batches.
    spanProcessors: [testExporter !== undefined ? new SimpleSpanProcessor({ exporter }) : new BatchSpanProcessor({ exporter })],
  });
  const tracer = provider.getTracer('cdf-auth-gateway');
  const propagator = new W3CTraceContextPropagator();

  return {
    serverSpan(method: string, headers: IncomingHttpHeaders): Span {
      const parent = propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter);
      return tracer.startSpan(method, { kind: SpanKind.SERVER, attributes: { [ATTR_HTTP_REQUEST_METHOD]: method } }, parent);
    },
    childSpan(parent: Span, name: string, kind: 'internal' | 'client', attributes?: Attributes): Span {
      return tracer.startSpan(name, {
        kind: kind === 'client' ? SpanKind.CLIENT : SpanKind.INTERNAL, ...(attributes === undefined ? {} : { attributes }),
      }, trace.setSpan(ROOT_CONTEXT, parent));
    },
    inject(span: Span, headers: Record<string, string | string[]>): void {
      delete headers.traceparent;
      delete headers.tracestate;
      propagator.inject(trace.setSpan(ROOT_CONTEXT, span), headers, defaultTextMapSetter);
    },
    fail(span: Span, err: unknown): void {
      if (!span.isRecording()) return;
      // A GatewayError's reason code (`code`), a Node error's code, else the error's name.
      const e = err as { name?: unknown; message?: unknown; code?: unknown; reason?: unknown } | null;
      const type = typeof e?.code === 'string' ? e.code : typeof e?.reason === 'string' ? e.reason : typeof e?.name === 'string' ? e.name : 'error';
      span.setAttribute(ATTR_ERROR_TYPE, type);
      span.setStatus({ code: SpanStatusCode.ERROR, message: typeof e?.message === 'string' ? e.message : String(err) });
    },
    async shutdown(): Promise<void> {
      await provider.shutdown();
    },
  };
}
