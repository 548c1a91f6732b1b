// examples/entra.yaml and examples/google.yaml pass `cdf-auth-gateway check` with their documented
// environment, and name what they need without it.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ROOT } from '../fixtures/deploy.js';

const CLI = join(ROOT, 'dist/main.js');
const check = (file: string, env: Record<string, string>) =>
  spawnSync(process.execPath, [CLI, 'check', '--config', join(ROOT, 'examples', file)], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', ...env } });
const COOKIE = 'c'.repeat(48);

// Passes with env; without it, fails naming every variable.
function checkNeeds(t: Test, file: string, env: Record<string, string>) {
  const r = check(file, env);
  t.equal(r.status, 0, r.stdout + r.stderr);
  const bare = check(file, {});
  t.equal(bare.status, 1);
  for (const v of Object.keys(env)) t.match(bare.stderr, v, `needs ${v}`);
  return parse(readFileSync(join(ROOT, 'examples', file), 'utf8'));
}

t.test('examples/entra.yaml', async (t) => {
  const env = { GATEWAY_COOKIE_SECRET: COOKIE, LOGIN_CLIENT_SECRET: 'login-secret', SERVICE_CLIENT_SECRET: 'svc-secret', GRAPH_CLIENT_SECRET: 'graph-secret' };
  const cfg = checkNeeds(t, 'entra.yaml', env);
  t.ok(cfg.issuers.every((i: { profile?: string }) => i.profile === 'entra'), 'profile: entra');
  const issuers = cfg.issuers.map((i: { issuer: string }) => i.issuer);
  t.ok(issuers.some((i: string) => /^https:\/\/login\.microsoftonline\.com\/[^/]+\/v2\.0$/.test(i)), 'the v2 issuer');
  t.ok(issuers.some((i: string) => /^https:\/\/sts\.windows\.net\/[^/]+\/$/.test(i)), 'the v1 issuer CDF tokens carry (trailing slash)');
  for (const p of Object.values(cfg.login.projects) as Array<{ issuer: string }>) t.ok(issuers.includes(p.issuer), 'login issuers are trusted issuers');
});

t.test('examples/google.yaml', async (t) => {
  const secrets = t.testdir({ 'cdf-client-secret': 'cdf-secret\n' });
  const env = { GATEWAY_COOKIE_SECRET: COOKIE, GOOGLE_CLIENT_SECRET: 'google-secret', SECRETS_DIR: secrets };
  const cfg = checkNeeds(t, 'google.yaml', env);
  t.strictSame(cfg.issuers.map((i: { issuer: string }) => i.issuer), ['https://accounts.google.com']);
  t.notOk(JSON.stringify(cfg.routes).includes('groups'), 'Google ID tokens carry no groups: rules use subjects');
});

// One example per issuer profile, each using its profile.
for (const [file, profile] of [['cognito.yaml', 'cognito'], ['auth0.yaml', 'auth0'], ['keycloak.yaml', 'keycloak']] as const) {
  t.test(`examples/${file}`, async (t) => {
    // `check` itself runs in the every-example test below (each spawn costs seconds on a busy machine).
    const cfg = parse(readFileSync(join(ROOT, 'examples', file), 'utf8'));
    t.strictSame(cfg.issuers.map((i: { profile: string }) => i.profile), [profile]);
  });
}

// Every file under examples/ passes `check` with its documented environment: a new example
// without an entry here fails, so none can rot unchecked.
t.test('every example config passes cdf-auth-gateway check', async (t) => {
  const { readdirSync, mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const secrets = mkdtempSync(join(tmpdir(), 'examples-'));
  writeFileSync(join(secrets, 'legacy-api-key'), 'legacy-key\n');
  writeFileSync(join(secrets, 'cookie-secrets'), `${COOKIE}\n`);
  writeFileSync(join(secrets, 'cdf-client-secret'), 'cdf-secret\n');
  const envs: Record<string, Record<string, string>> = {
    'gateway.yaml': { SERVICE_CLIENT_SECRET: 's', PARTNER_API_KEY: 'p', LOGIN_CLIENT_SECRET: 'l', SECRETS_DIR: secrets },
    'demo.yaml': {
      DEMO_IDP_PORT: '4000', DEMO_CDF_PORT: '5000', DEMO_GATEWAY_PORT: '8080', DEMO_ADMIN_PORT: '9090', DEMO_SPA_PORT: '3000', DEMO_LIVE_PORT: '5001',
      DEMO_COOKIE_SECRET: COOKIE, DEMO_LOGIN_CLIENT_SECRET: 'l', DEMO_SVC_SECRET: 's',
    },
    'entra.yaml': { GATEWAY_COOKIE_SECRET: COOKIE, LOGIN_CLIENT_SECRET: 'l', SERVICE_CLIENT_SECRET: 's', GRAPH_CLIENT_SECRET: 'g' },
    'cognito.yaml': { GATEWAY_COOKIE_SECRET: COOKIE, LOGIN_CLIENT_SECRET: 'l' },
    'auth0.yaml': { GATEWAY_COOKIE_SECRET: COOKIE, LOGIN_CLIENT_SECRET: 'l' },
    'keycloak.yaml': { GATEWAY_COOKIE_SECRET: COOKIE, LOGIN_CLIENT_SECRET: 'l' },
    'google.yaml': { GATEWAY_COOKIE_SECRET: COOKIE, GOOGLE_CLIENT_SECRET: 'g', SECRETS_DIR: secrets },
  };
  const files = readdirSync(join(ROOT, 'examples')).filter((f) => /\.ya?ml$/.test(f)).sort();
  t.ok(files.length >= 4);
  for (const f of files) {
    const env = envs[f];
    t.ok(env, `${f} has an environment in this test`);
    if (env === undefined) continue;
    const r = check(f, env);
    t.equal(r.status, 0, `${f}: ${r.stdout}${r.stderr}`);
  }
});
