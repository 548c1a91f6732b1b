// The request a piece of code runs for, without threading it through every signature: the log
// mixin reads the request id from here and tracing the parent span. Entered once per request (the
// onRequest hook); code outside any request sees undefined.
//
// How far the context reaches depends on what it costs. AsyncLocalStorage follows a request into
// everything it awaits (a JWKS fetch, token/inspect, a session refresh), and on Node 24 it rides
// on AsyncContextFrame at almost no cost. Before Node 24 it works through async_hooks, which then
// run for every promise and async resource of the process: measured on Node 20, one core, ~20 %
// of a proxied request. So there, unless `log.requestContext: always` or tracing asks for it, the
// context covers the request's synchronous part only (where a cached token is decided and the
// request forwarded; the error handler re-enters it), and lines logged by asynchronous work
// carry no request id rather than a wrong one.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { ActiveTracing, Span } from '../tracing.js';

export interface RequestContext {
  readonly id: string;
  /** The innermost open span (tracing on), else null. */
  readonly span: Span | null;
  readonly tracing: ActiveTracing | null;
}

export type RequestContextMode = 'auto' | 'always';

/** Whether AsyncLocalStorage runs on AsyncContextFrame (Node ≥ 24 unless turned off, or 22/23 with the flag). */
export function hasAsyncContextFrame(version = process.versions.node, flags: readonly string[] = nodeFlags()): boolean {
  if (flags.includes('--no-async-context-frame')) return false;
  return Number(version.split('.')[0]) >= 24 || flags.includes('--experimental-async-context-frame');
}

/** The process's Node and V8 flags: the command line's, then NODE_OPTIONS'. */
export function nodeFlags(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): string[] {
  return [...execArgv, ...nodeOptions.split(/\s+/)];
}

const storage = new AsyncLocalStorage<RequestContext>();
const CHEAP = hasAsyncContextFrame();
let follows = CHEAP;
/** The context of the synchronous section running now (when contexts do not follow awaits). */
let section: RequestContext | undefined;

/**
 * Whether contexts follow asynchronous work: always with AsyncContextFrame, with `always`, or
 * with tracing (a span's children need their parent). Turned on, it stays on for the process
 * (async_hooks, once installed, are not worth removing).
 */
export function setContextReach(mode: RequestContextMode, tracing: boolean): void {
  follows ||= CHEAP || mode === 'always' || tracing;
}

/** Whether contexts follow asynchronous work in this process (see setContextReach). */
export function contextFollowsAwaits(): boolean {
  return follows;
}

export function currentRequest(): RequestContext | undefined {
  return follows ? storage.getStore() : section;
}

/** Runs fn as part of the request ctx: with everything it awaits, or its synchronous part only (see above). */
export function runInRequest<T>(ctx: RequestContext, fn: () => T): T {
  if (follows) return storage.run(ctx, fn);
  const outer = section;
  section = ctx;
  try {
    return fn();
  } finally {
    section = outer;
  }
}
