// CDF-aware configuration: the top-level `cdf:` section (token/inspect), the allow-rule conditions
// `cdf`, `project` and `capabilities`, and the issuer keys `profile`, `groupsClaim`, `scopesClaim`,
// `audienceClaim` and `groupsOverage`. Cross-section rules (project/capabilities need `cdf:`) are
// checked by checkCdfRules, which load.ts calls with every section at hand.

import {
  MAX_TIMER_MS,
  array, bool, childPath, clientSecretProblem, httpUrl, indexPath, int, object, oneOf, refine, report, required,
  scopeToken, secret, str, strings, withDefault,
  type Checked, type Context, type Schema,
} from './schema.js';

const positiveMs = int({ min: 1, max: MAX_TIMER_MS });

export const ISSUER_PROFILES = ['generic', 'entra', 'cognito', 'auth0', 'keycloak'] as const;
export type IssuerProfile = (typeof ISSUER_PROFILES)[number];

export interface CdfConfig {
  /** CDF cluster URL, e.g. https://westeurope-1.cognitedata.com: token/inspect is asked here. */
  readonly baseUrl: string;
  readonly inspectTtlMs: number;            // default 300000
  readonly timeoutMs: number;               // default 2000
  /** Tokens whose inspect answer is kept (LRU). Default 10000. */
  readonly cacheSize: number;
}

export interface CdfRuleCondition {
  readonly access: 'read' | 'write';
  /** First path segment after the project (assets, timeseries, …); null: any. */
  readonly resources: readonly string[] | null;
}

export interface GroupsOverageConfig {
  readonly graphUrl: string;                // default https://graph.microsoft.com
  readonly tokenUrl: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly scopes: readonly string[];       // default [<graphUrl>/.default]
  readonly cacheTtlMs: number;              // default 600000
  readonly timeoutMs: number;               // default 5000
  readonly securityEnabledOnly: boolean;    // default true (what the groups claim's "Security groups" holds)
}

/** What refineIssuer reads of an issuer (structural: the issuer type is derived from its schema). */
interface IssuerShape {
  readonly issuer: string;
  readonly jwksUri: string | null;
  readonly profile: IssuerProfile;
  readonly groupsOverage: GroupsOverageConfig | null;
}

/** What checkCdfRules reads of a route. */
interface RouteShape {
  readonly prefix: string;
  readonly rewritePrefix: string | null;
  readonly allow: ReadonlyArray<{ readonly cdf: CdfRuleCondition | null; readonly project: string | null; readonly capabilities: readonly string[] | null }>;
}
const stripSlash = (s: string): string => s.replace(/\/+$/, '');

// ---- top-level `cdf:` ----------------------------------------------------------------------------

export const cdfSectionSchema: Schema<CdfConfig> = object({
  baseUrl: required(refine(httpUrl({ query: false }), stripSlash)),
  inspectTtlMs: withDefault(positiveMs, 300000),
  timeoutMs: withDefault(positiveMs, 2000),
  cacheSize: withDefault(int({ min: 1, max: 1_000_000 }), 10000),
});

// ---- allow-rule conditions -------------------------------------------------------------------------

const PROJECT = /^[a-z0-9][a-z0-9-]{0,63}$/;
const CAPABILITY = /^[A-Za-z][A-Za-z0-9]*Acl:[A-Z][A-Z0-9_]*$/;
const SEGMENT = /^[A-Za-z0-9._~-]+$/;

const cdfCondition: Schema<CdfRuleCondition> = object({
  access: required(oneOf(['read', 'write'] as const), 'required: read or write'),
  resources: withDefault(strings((s) => (SEGMENT.test(s) ? undefined : 'must be one path segment (assets, timeseries, models, …)')), null),
});

/** Fields spread into the allow-rule schema. */
export const cdfRuleFields = {
  cdf: withDefault(cdfCondition, null as CdfRuleCondition | null),
  project: withDefault(str((s) => (PROJECT.test(s) ? undefined : 'must be a CDF project name (lower-case letters, digits and -)')), null as string | null),
  capabilities: withDefault(strings((s) => (CAPABILITY.test(s) ? undefined : 'must be acl:ACTION, e.g. timeSeriesAcl:WRITE')), null as string[] | null),
};

// ---- issuer profiles ---------------------------------------------------------------------------------

/** A claim path: dot-separated names (realm_access.roles), or a namespaced claim URL taken whole. */
function claimPathProblem(s: string): string | undefined {
  if (/\s/.test(s)) return 'must not contain whitespace';
  if (/^https?:\/\//.test(s)) return undefined;
  return s.split('.').some((p) => p === '') ? 'must be a dotted claim path (e.g. realm_access.roles)' : undefined;
}

const groupsOverageSchema: Schema<GroupsOverageConfig> = refine(object({
  graphUrl: withDefault(refine(httpUrl({ query: false }), stripSlash), 'https://graph.microsoft.com'),
  tokenUrl: required(httpUrl({ query: true })),
  clientId: required(str()),
  clientSecret: secret(clientSecretProblem),
  scopes: withDefault(array(str(scopeToken), { min: 1 }), null),
  cacheTtlMs: withDefault(positiveMs, 600000),
  timeoutMs: withDefault(positiveMs, 5000),
  securityEnabledOnly: withDefault(bool(), true),
}), (g) => ({ ...g, scopes: g.scopes ?? [`${g.graphUrl}/.default`] }));

/** Fields spread into the issuer schema. */
export const issuerProfileFields = {
  profile: withDefault(oneOf(ISSUER_PROFILES), 'generic' as const),
  groupsClaim: withDefault(str(claimPathProblem), null as string | null),
  scopesClaim: withDefault(str(claimPathProblem), null as string | null),
  audienceClaim: withDefault(str(claimPathProblem), null as string | null),
  groupsOverage: withDefault(groupsOverageSchema, null as GroupsOverageConfig | null),
};

const ENTRA_V1 = /^https:\/\/sts\.windows\.net\/([^/]+)\/?$/;
const ENTRA_V2 = /^(https:\/\/[^/]+)\/([^/]+)\/v2\.0$/;

/**
 * Profile-dependent checks and defaults on one issuer: `groupsOverage` is Entra's; an Entra issuer
 * without `jwksUri` gets its tenant's key URL (the v1 issuer, sts.windows.net, serves no discovery).
 */
export function refineIssuer<T extends IssuerShape>(i: T, path: string, ctx: Context): Checked<T> {
  if (i.groupsOverage !== null && i.profile !== 'entra') {
    return report(ctx, childPath(path, 'groupsOverage'), `is for profile: entra (this issuer's profile is ${i.profile})`);
  }
  if (i.profile !== 'entra') return i;
  const v1 = ENTRA_V1.exec(i.issuer);
  if (v1 !== null && !i.issuer.endsWith('/')) {
    return report(ctx, childPath(path, 'issuer'), `Entra v1 tokens carry iss "https://sts.windows.net/${v1[1]}/" (with the trailing /)`);
  }
  if (i.jwksUri !== null) return i;
  if (v1 !== null) return { ...i, jwksUri: `https://login.microsoftonline.com/${v1[1]}/discovery/keys` };
  const v2 = ENTRA_V2.exec(i.issuer);
  if (v2 !== null) return { ...i, jwksUri: `${v2[1]}/${v2[2]}/discovery/v2.0/keys` };
  return i;
}

// ---- cross-section -----------------------------------------------------------------------------------

const API = '/api/v1/projects/';

/** Whether a route's requests can reach the CDF API (its upstream path prefix is on or above it). */
function reachesCdfApi(r: RouteShape): boolean {
  const base = `${stripSlash(r.rewritePrefix ?? r.prefix)}/`;
  return base.startsWith(API) || API.startsWith(base);
}

/** project/capabilities need the `cdf:` section; capabilities need a project; `cdf` needs a CDF route. */
export function checkCdfRules(routes: readonly RouteShape[], cdf: CdfConfig | null, ctx: Context): void {
  routes.forEach((r, i) => r.allow.forEach((rule, j) => {
    const at = indexPath(childPath(indexPath('routes', i), 'allow'), j);
    if (cdf === null) {
      if (rule.project !== null) report(ctx, childPath(at, 'project'), 'needs the top-level cdf section (cdf.baseUrl) to ask CDF');
      if (rule.capabilities !== null) report(ctx, childPath(at, 'capabilities'), 'needs the top-level cdf section (cdf.baseUrl) to ask CDF');
    }
    if (rule.capabilities !== null && rule.project === null) {
      report(ctx, childPath(at, 'capabilities'), 'needs project: the CDF project the capabilities must be granted in');
    }
    if (rule.cdf !== null && !reachesCdfApi(r)) {
      report(ctx, childPath(at, 'cdf'), `never holds: route ${r.prefix} does not reach the CDF API (/api/v1/projects/…)`);
    }
  }));
}
