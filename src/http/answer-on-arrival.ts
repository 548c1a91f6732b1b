// Routes that never read a request body answer from their onRequest hook and never let the request
// go further. Fastify's body handling comes next: it refuses a Content-Type it cannot parse (415)
// before any handler, and would do so before the gateway decided, for a body the gateway only
// streams (the proxy) or never reads (forward-auth). Every answer goes through the reply: a
// refusal, an error (thrown or rejected: the error handler), or the upstream's response.
import type { FastifyReply, FastifyRequest } from 'fastify';

type Answer = (request: FastifyRequest, reply: FastifyReply) => unknown;

/** Route options: `handle` as the route's onRequest hook, and a handler that is never reached. */
export function answerOnArrival(handle: Answer) {
  return {
    onRequest: (request: FastifyRequest, reply: FastifyReply): void => {
      const r = handle(request, reply);
      // A rejection after the answer went out (the reply is a thenable a handler may return) has no one to tell.
      if (r instanceof Promise) r.catch((err: unknown) => { if (!reply.sent) void reply.send(err); });
    },
    handler: (): never => { throw new Error('unreachable: the route answers from its onRequest hook'); },
  };
}
