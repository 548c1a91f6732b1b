// The request a piece of code runs for, without threading it through every signature: the log
// mixin reads the request id from here and tracing the parent span. One AsyncLocalStorage.run per
// request (entered in the onRequest hook); code outside any request sees undefined.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { ActiveTracing, Span } from '../tracing.js';

export interface RequestContext {
  readonly id: string;
  /** The innermost open span (tracing on), else null. */
  readonly span: Span | null;
  readonly tracing: ActiveTracing | null;
}

const storage = new AsyncLocalStorage<RequestContext>();

export function currentRequest(): RequestContext | undefined {
  return storage.getStore();
}

/** Runs fn (and everything it awaits) as part of the request ctx. */
export function runInRequest<T>(ctx: RequestContext, fn: () => T): T {
  return storage.run(ctx, fn);
}
