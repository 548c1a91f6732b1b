// The per-request decision, evaluated against the route's compiled rules. Synchronous and
// allocation-free while no rule needs an answer from elsewhere; a promise when one does (CDF's
// token/inspect for `project`/`capabilities`, Microsoft Graph for an Entra groups-overage token).
// Public routes are not authorized here (they have no rules: this would answer no_rule).

import type { Principal } from '../token/principal.js';
import type { CdfGrants } from '../cdf/inspect.js';
import { cdfConditionHolds } from './cdf.js';
import type { CompiledRoute, CompiledRule } from './rules.js';

/** Why no rule allowed: `groups_overage` when a rule naming groups could not be decided. */
export type Refusal = 'no_rule' | 'groups_overage';
export type Verdict = 'allow' | Refusal;

/** What authorization may ask of other services; both may reject with a 503 GatewayError. */
export interface PolicyServices {
  /** CDF token/inspect (null: no `cdf:` section; rules naming a project then never hold). */
  readonly inspector: { grants(p: Principal, token: string): CdfGrants | Promise<CdfGrants> } | null;
  /** Graph for overage tokens of this principal's issuer, or null when it cannot be asked. */
  overage(p: Principal): { groups(p: Principal): readonly string[] | Promise<readonly string[]> } | null;
}

export const NO_SERVICES: PolicyServices = Object.freeze({ inspector: null, overage: () => null });

/** methods, subjects, scopes and cdf: everything decided from the request and the token alone. */
function holdsLocally(rule: CompiledRule, route: CompiledRoute, method: string, path: string, principal: Principal): boolean {
  if (rule.methods !== null && !rule.methods.has(method)) return false;
  if (rule.subjects !== null && !rule.subjects.has(principal.sub)) return false;
  if (rule.scopes !== null) {
    const scopes = rule.scopes;
    for (let s = 0; s < scopes.length; s++) if (!principal.scopes.has(scopes[s]!)) return false;
  }
  return rule.cdf === null || cdfConditionHolds(rule.cdf, method, route.apiPath(path));
}

function anyGroup(wanted: ReadonlySet<string>, groups: readonly string[]): boolean {
  for (let g = 0; g < groups.length; g++) if (wanted.has(groups[g]!)) return true;
  return false;
}

/**
 * Any rule may allow; all of a rule's conditions must hold; a null condition is no condition.
 * `methods` is an explicit list (HEAD is not implied by GET); `groups` any-of; `scopes` all-of;
 * `subjects` contains `sub`; `cdf` as policy/cdf.ts classifies the route's API path; `project`
 * and `capabilities` as CDF's token/inspect answers. No rules: deny. `path` is the canonical
 * request path the route matched; `token` the caller's verified token (CDF is asked with it).
 *
 * Rules decidable locally are tried first, so a request that one of them allows never waits for
 * CDF or Graph. Rejects with CdfUnavailableError / GroupsUnavailableError (503) when an answer
 * is needed and cannot be had.
 */
export function authorize(
  route: CompiledRoute, method: string, path: string, principal: Principal, services: PolicyServices = NO_SERVICES, token = '',
): Verdict | Promise<Verdict> {
  const rules = route.rules;
  let remote = false;       // a rule might hold on CDF's or Graph's answer
  let overage = false;      // a rule naming groups could not be decided
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    if (!holdsLocally(rule, route, method, path, principal)) continue;
    if (rule.groups !== null) {
      if (principal.groupsOverage === true) {
        if (services.overage(principal) === null) overage = true; else remote = true;
        continue;
      }
      if (!anyGroup(rule.groups, principal.groups)) continue;
    }
    if (rule.project !== null) {
      if (services.inspector !== null) remote = true;
      continue;
    }
    return 'allow';
  }
  if (remote) return authorizeRemote(route, method, path, principal, services, token);
  return overage ? 'groups_overage' : 'no_rule';
}

async function authorizeRemote(
  route: CompiledRoute, method: string, path: string, principal: Principal, services: PolicyServices, token: string,
): Promise<Verdict> {
  let groups: readonly string[] | null = null;
  let grants: CdfGrants | null = null;
  let overage = false;
  outer: for (const rule of route.rules) {
    if (!holdsLocally(rule, route, method, path, principal)) continue;
    if (rule.groups !== null) {
      if (principal.groupsOverage === true) {
        const graph = services.overage(principal);
        if (graph === null) { overage = true; continue; }
        groups ??= await graph.groups(principal);
      }
      if (!anyGroup(rule.groups, groups ?? principal.groups)) continue;
    }
    if (rule.project !== null) {
      if (services.inspector === null) continue;
      grants ??= await services.inspector.grants(principal, token);
      if (!grants.projects.has(rule.project)) continue;
      const caps = rule.capabilities;
      if (caps !== null) for (const c of caps) if (!grants.has(rule.project, c)) continue outer;
    }
    return 'allow';
  }
  return overage ? 'groups_overage' : 'no_rule';
}

/** The old boolean form, without CDF or Graph (rules needing them do not hold). */
export function isAllowed(route: CompiledRoute, method: string, principal: Principal, path = route.prefix): boolean {
  return authorize(route, method, path, principal, NO_SERVICES) === 'allow';
}
