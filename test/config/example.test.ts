// examples/gateway.yaml must stay valid: it is loaded here with a fake environment.
import t from 'tap';
import { join } from 'node:path';
import { ConfigError, loadConfigFile } from '../../src/config/load.js';

const EXAMPLE = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../../examples/gateway.yaml');

t.test('examples/gateway.yaml loads with its environment set', async (t) => {
  const secrets = t.testdir({ 'legacy-api-key': 'legacy-key-from-file\n', 'cookie-secrets': `${'n'.repeat(40)}\n${'o'.repeat(40)}\n` });
  const c = loadConfigFile(EXAMPLE, { SERVICE_CLIENT_SECRET: 'svc-secret', PARTNER_API_KEY: 'partner-key', SECRETS_DIR: secrets, LOGIN_CLIENT_SECRET: 'login-secret' });

  t.strictSame(Object.keys(c).sort(), ['admin', 'issuers', 'log', 'login', 'redis', 'routes', 'server', 'tokens', 'tracing', 'upstreams']);
  t.strictSame([...new Set(Object.values(c.upstreams).map((u) => u.credentials.type))].sort(),
    ['api-key', 'client-credentials', 'none', 'user-token'], 'uses all four credential types');
  t.match(c.upstreams.service?.credentials, { type: 'client-credentials', clientSecret: 'svc-secret' });
  t.match(c.upstreams.legacy?.credentials, { type: 'api-key', header: 'api-key', value: 'legacy-key-from-file' });
  t.match(c.upstreams.partner, { url: 'https://partner.example/api/v2', credentials: { header: 'x-partner-key', value: 'partner-key' } });
  t.ok(c.routes.some((r) => r.public), 'has a public route');
  t.ok(c.routes.some((r) => r.rewritePrefix !== null), 'has a rewritePrefix');
  t.strictSame(c.login?.cookieSecrets, ['n'.repeat(40), 'o'.repeat(40)], 'cookie secrets from a file, rotation order kept');
  t.match(c.login?.projects.demo, { clientSecret: 'login-secret', resource: 'https://cdf.example' });
  t.equal(c.routes[0]?.login, 'demo');
});

t.test('examples/gateway.yaml names the variables it needs', async (t) => {
  try {
    loadConfigFile(EXAMPLE, {});
    t.fail('should throw');
  } catch (e) {
    t.ok(e instanceof ConfigError);
    t.strictSame((e as ConfigError).problems.map((p) => p.reason).sort(), [
      'environment variable LOGIN_CLIENT_SECRET is not set',
      'environment variable PARTNER_API_KEY is not set',
      'environment variable SECRETS_DIR is not set',
      'environment variable SECRETS_DIR is not set',
      'environment variable SERVICE_CLIENT_SECRET is not set',
    ]);
  }
});
