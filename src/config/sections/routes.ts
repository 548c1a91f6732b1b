// The `routes` section: which paths go where, and who may use them (deny by default). Prefixes
// are compared the way the router compares them (policy/rules.ts normalisePrefix).

import { ALLOWED_METHODS, isAllowedMethod } from '../../errors.js';
import { normalisePrefix } from '../../policy/rules.js';
import { cdfRuleFields } from '../cdf.js';
import {
  INVALID, array, bool, canonicalPathProblem, childPath, isAbsent, isToken, object, peekBool, refine, report,
  required, scopeToken, str, strings, uniqueBy, withDefault,
  type Context, type Field, type Infer,
} from '../schema.js';
import { corsSchema } from './cors.js';

// Only the methods the gateway forwards: a rule naming another (TRACE, PROPFIND, …) could never
// match, since those are answered 405 before any rule is read.
const methodSchema = refine(str((s) => {
  if (!isToken(s)) return 'must be an HTTP method name';
  return isAllowedMethod(s.toUpperCase()) ? undefined : `must be one of ${ALLOWED_METHODS} (the gateway answers any other method 405)`;
}), (s) => s.toUpperCase());

/** Any rule may allow a request; all of one rule's conditions must hold. null: no condition. */
export const allowRuleSchema = object({
  /** Upper-cased. */
  methods: withDefault(array(methodSchema, { min: 1 }), null),
  /** Any listed group suffices. */
  groups: withDefault(strings(), null),
  /** Every listed scope is required. */
  scopes: withDefault(strings(scopeToken), null),
  /** `sub` must be one of these. */
  subjects: withDefault(strings(), null),
  /** CDF-aware conditions: cdf (read/write), project, capabilities (config/cdf.ts). */
  ...cdfRuleFields,
});

type Rule = Infer<typeof allowRuleSchema>;

const ALLOW_REQUIRED = 'required: at least one rule (routes deny by default; use public: true for open routes)';

/** `allow` depends on `public`: required (non-empty) on private routes, forbidden on public ones. */
function allowField(env: Context['env']): Field<Rule[]> {
  const rules = array(allowRuleSchema, { min: 1, minReason: ALLOW_REQUIRED });
  return {
    keys: (name) => [name],
    read(obj, name, path, ctx) {
      const p = childPath(path, name);
      const isPublic = isAbsent(obj.public) ? false : peekBool(obj.public, env);
      if (isPublic === undefined) {
        // `public` itself is invalid (and reported): check the rules as written, nothing more.
        return isAbsent(obj[name]) ? INVALID : rules.check(obj[name], p, ctx);
      }
      if (isPublic) return isAbsent(obj[name]) ? [] : report(ctx, p, 'a public route must not have allow rules');
      return isAbsent(obj[name]) ? report(ctx, p, ALLOW_REQUIRED) : rules.check(obj[name], p, ctx);
    },
  };
}

/** The gateway's own paths: a route may not take them (or anything under them). */
export const RESERVED_SEGMENTS = ['auth', 'login'] as const;

/** Whether a route with this prefix would claim part of /auth or /login (`/loginx` is another segment). */
export function isReservedPrefix(prefix: string): boolean {
  const first = normalisePrefix(prefix).split('/')[1];
  if (first === undefined) return false;
  const name = first.split(';', 1)[0];
  return (RESERVED_SEGMENTS as readonly string[]).includes(name ?? '');
}

const prefixSchema = str((s) => canonicalPathProblem(s)
  ?? (isReservedPrefix(s) ? 'is reserved for the gateway (/auth and /login, and everything under them)' : undefined));

/** Names the sections a route refers to, as written (even where those sections are invalid). */
export interface RouteRefs {
  readonly upstreams: readonly string[] | null;
  /** null: no login section. */
  readonly projects: readonly string[] | null;
}

function nameOf(what: string, names: readonly string[] | null) {
  return (s: string): string | undefined => {
    if (names === null || names.includes(s)) return undefined;
    return names.length === 0 ? `is not one of the ${what} (none are defined)` : `is not one of the ${what} (${names.join(', ')})`;
  };
}

export function routeSchema(refs: RouteRefs, env: Context['env']) {
  return object({
    /** As written, starting with '/'. */
    prefix: required(prefixSchema),
    /** A key of `upstreams`. */
    upstream: required(str(nameOf('upstreams', refs.upstreams))),
    rewritePrefix: withDefault(str(canonicalPathProblem), null),
    public: withDefault(bool(), false),
    /** WebSocket upgrades allowed (authenticated like a GET on the route). */
    websockets: withDefault(bool(), true),
    /** Empty for public routes. */
    allow: allowField(env),
    /** A key of `login.projects`: browsers without a session are sent to that login. */
    login: withDefault(str((s) => refs.projects === null ? 'needs a login section (login.projects)'
      : nameOf('login projects', refs.projects)(s)), null),
    /** Browser calls from other origins; preflights answered by the gateway. null: none. */
    cors: withDefault(corsSchema, null),
  });
}

/** Duplicate prefixes are found on the prefixes as written, even in routes with other problems. */
export function routesSchema(refs: RouteRefs, env: Context['env']) {
  const route = routeSchema(refs, env);
  return uniqueBy(array(route), 'prefix', 'prefix', (item, ctx) => {
    const prefix = route.peek(item, 'prefix', ctx);
    return prefix === undefined ? undefined : { key: normalisePrefix(prefix), shown: prefix };
  });
}
