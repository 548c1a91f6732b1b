// The per-request decision: pure, allocation-free, evaluated against the route's compiled rules.
// Public routes are not authorized here (server.ts skips authentication for them); called on a
// public route, which has no rules, this answers false like any route without rules.

import type { Principal } from '../token/principal.js';
import type { CompiledRoute } from './rules.js';

/**
 * Any rule may allow; all of a rule's conditions must hold; a null condition is no condition.
 * `methods` is an explicit list (HEAD is not implied by GET); `groups` any-of; `scopes` all-of;
 * `subjects` contains `sub`. No rules: deny.
 */
export function isAllowed(route: CompiledRoute, method: string, principal: Principal): boolean {
  const rules = route.rules;
  outer: for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    if (rule.methods !== null && !rule.methods.has(method)) continue;
    if (rule.subjects !== null && !rule.subjects.has(principal.sub)) continue;
    if (rule.groups !== null) {
      const groups = principal.groups;
      let any = false;
      for (let g = 0; g < groups.length; g++) {
        if (rule.groups.has(groups[g]!)) { any = true; break; }
      }
      if (!any) continue;
    }
    if (rule.scopes !== null) {
      const scopes = rule.scopes;
      for (let s = 0; s < scopes.length; s++) {
        if (!principal.scopes.has(scopes[s]!)) continue outer;
      }
    }
    return true;
  }
  return false;
}
