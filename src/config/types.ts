// The validated, frozen configuration. Produced only by config/load.ts; every other module
// receives the parts it needs and never reads process.env or the YAML itself.
// Each type is derived from the schema that validates it (sections/*.ts, login.ts): an option is
// declared once, with its default, and documented there.

import type { DeepReadonly } from './schema.js';
import type { ValidatedConfig } from './load.js';

export { ALGORITHMS, type Algorithm } from './sections/tokens.js';
export { LOG_LEVELS } from './sections/server.js';
export type LogLevel = LogConfig['level'];

export type GatewayConfig = DeepReadonly<ValidatedConfig>;

export type ServerConfig = GatewayConfig['server'];
export type AdminConfig = GatewayConfig['admin'];
export type LogConfig = GatewayConfig['log'];
export type IssuerConfig = GatewayConfig['issuers'][number];
export type TokensConfig = GatewayConfig['tokens'];

export type UpstreamConfig = GatewayConfig['upstreams'][string];
export type CredentialsConfig = UpstreamConfig['credentials'];
export type UserTokenCredentials = Extract<CredentialsConfig, { readonly type: 'user-token' }>;
export type NoCredentials = Extract<CredentialsConfig, { readonly type: 'none' }>;
export type ApiKeyCredentials = Extract<CredentialsConfig, { readonly type: 'api-key' }>;
export type ClientCredentials = Extract<CredentialsConfig, { readonly type: 'client-credentials' }>;

export type RouteConfig = GatewayConfig['routes'][number];
export type AllowRule = RouteConfig['allow'][number];
export type CorsConfig = NonNullable<RouteConfig['cors']>;

/** null in GatewayConfig when the file has no `login:` section (no browser login). */
export type LoginConfig = NonNullable<GatewayConfig['login']>;
export type LoginProjectConfig = LoginConfig['projects'][string];
export type RedisConfig = NonNullable<LoginConfig['redis']>;

/** The top-level `redis:` section (state shared by replicas); null in GatewayConfig when absent. */
export type SharedRedisConfig = NonNullable<GatewayConfig['redis']>;
export {
  ISSUER_PROFILES, type IssuerProfile, type CdfConfig, type CdfRuleCondition, type GroupsOverageConfig,
} from './cdf.js';
/** null in GatewayConfig when the file has no `tracing:` section (tracing off, the SDK never loaded). */
export type TracingConfig = NonNullable<GatewayConfig['tracing']>;
