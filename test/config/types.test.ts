// The exported config types are derived from the schemas: these compile only while each type is
// exactly what the rest of the gateway relies on (checked by `npm run typecheck`), and the value
// the loader returns has that shape, frozen.
import t from 'tap';
import type * as C from '../../src/config/types.js';
import { ALGORITHMS, LOG_LEVELS } from '../../src/config/types.js';
import { parse, withSections } from '../fixtures/config.js';

type Eq<A, B> = (<X>() => X extends A ? 1 : 2) extends (<X>() => X extends B ? 1 : 2) ? true : false;
const exact = <A, B>(yes: Eq<A, B>): Eq<A, B> => yes;

t.test('types', async (t) => {
  const checks = [
    exact<C.ServerConfig['port'], number>(true),
    exact<C.ServerConfig['publicUrl'], string>(true),
    exact<C.ServerConfig['maxBodyBytes'], number | null>(true),
    exact<C.ServerConfig['trustedProxies'], readonly string[]>(true),
    exact<C.TokensConfig['jwksCacheMaxAgeMs'], number>(true),
    exact<C.TokensConfig['maxTokenBytes'], number>(true),
    exact<C.IssuerConfig['algorithms'], readonly C.Algorithm[]>(true),
    exact<C.IssuerConfig['jwksUri'], string | null>(true),
    exact<C.LogLevel, (typeof LOG_LEVELS)[number]>(true),
    exact<C.UpstreamConfig['name'], string>(true),
    exact<C.CredentialsConfig['type'], 'user-token' | 'none' | 'api-key' | 'client-credentials'>(true),
    exact<C.ClientCredentials['tokenEndpointAuthMethod'], 'client_secret_basic' | 'client_secret_post'>(true),
    exact<C.ApiKeyCredentials['value'], string>(true),
    exact<C.RouteConfig['login'], string | null>(true),
    exact<C.AllowRule['methods'], readonly string[] | null>(true),
    exact<C.LoginConfig['sessionStore'], 'cookie' | 'redis'>(true),
    exact<C.LoginConfig['cookieSecrets'], readonly string[]>(true),
    exact<C.LoginProjectConfig['clientSecret'], string | null>(true),
    exact<C.RedisConfig['password'], string | null>(true),
    exact<C.GatewayConfig['login'], C.LoginConfig | null>(true),
  ];
  t.ok(checks.every(Boolean));
  t.equal(ALGORITHMS[0], 'RS256');
});

t.test('the loaded value is deeply frozen', async (t) => {
  const c: C.GatewayConfig = parse(withSections({ server: { trustedProxies: ['10.0.0.0/8'] } }));
  for (const part of [c, c.server, c.server.trustedProxies, c.tokens, c.issuers[0]?.audiences, c.upstreams.cdf, c.routes[0]?.allow[0]]) {
    t.ok(Object.isFrozen(part));
  }
});
