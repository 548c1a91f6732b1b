// `npm run demo`: a development IdP, a recording stand-in for the CDF API and the gateway (built,
// from ../dist) running examples/demo.yaml, all on loopback in this one process. Ctrl-C stops all.
//
// Ports: IdP 4000, CDF stand-in 5000, gateway 8080, admin 9090, dashboard 3000, live service 5001;
// DEMO_PORT_BASE=N uses N..N+5, and DEMO_IDP_PORT / DEMO_CDF_PORT / DEMO_GATEWAY_PORT /
// DEMO_ADMIN_PORT / DEMO_SPA_PORT / DEMO_LIVE_PORT set one each.
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { startIdp, USERS, CLI_CLIENT, RESOURCE } from './idp.mjs';
import { startCdfStandin } from './cdf-standin.mjs';
import { startDashboard, startLiveService } from './live-app.mjs';

const CONFIG = fileURLToPath(new URL('../examples/demo.yaml', import.meta.url));
const READY_LINE = 'cdf-auth-gateway demo is ready';

function ports(env) {
  const base = env.DEMO_PORT_BASE ? Number(env.DEMO_PORT_BASE) : null;
  const pick = (name, fallback, offset) => {
    const v = Number(env[name] ?? (base !== null ? base + offset : fallback));
    if (!Number.isInteger(v) || v < 1 || v > 65535) throw new Error(`${name}: not a usable port: ${env[name] ?? base}`);
    return String(v);
  };
  return {
    DEMO_IDP_PORT: pick('DEMO_IDP_PORT', 4000, 0),
    DEMO_CDF_PORT: pick('DEMO_CDF_PORT', 5000, 1),
    DEMO_GATEWAY_PORT: pick('DEMO_GATEWAY_PORT', 8080, 2),
    DEMO_ADMIN_PORT: pick('DEMO_ADMIN_PORT', 9090, 3),
    DEMO_SPA_PORT: pick('DEMO_SPA_PORT', 3000, 4),
    DEMO_LIVE_PORT: pick('DEMO_LIVE_PORT', 5001, 5),
  };
}

/** The gateway's JSON log lines, shortened for a person watching the terminal. */
const gatewayLog = {
  write(line) {
    let l;
    try { l = JSON.parse(line); } catch { process.stdout.write(`[gateway] ${line}`); return; }
    if (l.msg === 'request') {
      process.stdout.write(`[gateway] ${l.method} ${l.path} → ${l.status} (${l.decision}${l.sub ? `, sub=${l.sub}` : ''})\n`);
    } else {
      const { level, time, service, pid, hostname, msg, ...rest } = l;
      const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
      process.stdout.write(`[gateway] ${level >= 50 ? 'error' : level >= 40 ? 'warn' : 'info'}: ${msg}${extra}\n`);
    }
  },
};

/**
 * Whether the running gateway sends a browser to log in (the login feature is configured in
 * demo.yaml, but a build without it answers 401): asked the way a browser would ask.
 */
async function browserLoginWorks(gw) {
  try {
    const res = await fetch(`${gw}/api/v1/projects/demo/assets`, { headers: { accept: 'text/html' }, redirect: 'manual' });
    await res.arrayBuffer();
    return res.status >= 300 && res.status < 400;
  } catch {
    return false;
  }
}

function banner(env, config, loginWorks) {
  const gw = config.server.publicUrl;
  const cdf = `http://127.0.0.1:${env.DEMO_CDF_PORT}`;
  const idp = `http://127.0.0.1:${env.DEMO_IDP_PORT}`;
  const users = Object.entries(USERS)
    .map(([name, u]) => `    ${name.padEnd(6)} groups: ${u.groups.length ? u.groups.join(', ') : '(none)'}`).join('\n');
  const browser = loginWorks
    ? `  Log in through the gateway (any user below, any password), then see CDF's answer:\n    ${gw}/api/v1/projects/demo/assets\n`
      + `  Who you are: ${gw}/auth/userinfo    Log out: ${gw}/auth/logout?redirect=/status\n`
      + `  An app CDF opens (timeSeriesAcl:WRITE in demo: bob yes, alice no): ${gw}/apps/timeseries-editor/\n`
      + `  A dashboard on another origin calling the gateway (CORS with the session cookie, and a\n`
      + `  WebSocket through the gateway; sign in from there): http://127.0.0.1:${env.DEMO_SPA_PORT}/\n`
    : '  (This build of the gateway has no browser login yet: use the curl lines below.)\n';
  const token = `TOKEN=$(curl -s -u ${CLI_CLIENT.id}:${CLI_CLIENT.secret} -d grant_type=client_credentials `
    + `-d resource=${RESOURCE} -d scope=user_impersonation ${idp}/token | sed -E 's/.*"access_token":"([^"]+)".*/\\1/')`;
  return `
cdf-auth-gateway demo (config: examples/demo.yaml)
  gateway        ${gw}
  admin          http://127.0.0.1:${env.DEMO_ADMIN_PORT}/metrics
  IdP            http://localhost:${env.DEMO_IDP_PORT}  (development IdP, listening on 127.0.0.1)
  CDF stand-in   ${cdf}
  dashboard      http://127.0.0.1:${env.DEMO_SPA_PORT}  (an app on another origin; live service behind /live)

Open in a browser:
  What the CDF stand-in received (the credential swap, request by request):
    ${cdf}/_demo/requests
${browser}
Demo users (any password):
${users}
  Client-credentials client for curl: ${CLI_CLIENT.id} / ${CLI_CLIENT.secret} (groups: readers)

Try it:
  ${token}
  curl -s -X POST -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"limit":2}' ${gw}/api/v1/projects/demo/assets/list
  curl -s -X POST -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{}' ${gw}/service/demo/timeseries/list
  curl -s ${gw}/status
Watch the [cdf] lines: the first call arrives with your token, the second with the gateway's own
(sub=svc), the third with none. Ctrl-C stops everything.
`;
}

async function main() {
  const env = {
    ...ports(process.env),
    // Fresh per run; the IdP and the gateway config receive the same values.
    DEMO_SVC_SECRET: randomBytes(24).toString('base64url'),
    DEMO_LOGIN_CLIENT_SECRET: randomBytes(24).toString('base64url'),
    DEMO_COOKIE_SECRET: randomBytes(32).toString('base64url'),
  };
  let dist;
  try {
    dist = {
      ...(await import('../dist/config/load.js')),
      ...(await import('../dist/server.js')),
    };
  } catch (err) {
    throw new Error(`cannot load the built gateway (run \`npm run build\`, or use \`npm run demo\`): ${err.message}`);
  }
  let config;
  try {
    config = dist.loadConfigFile(CONFIG, { ...process.env, ...env });
  } catch (err) {
    if (err instanceof dist.ConfigError) {
      throw new Error(`examples/demo.yaml is invalid:\n${err.problems.map((p) => `  ${p.path}: ${p.reason}`).join('\n')}`);
    }
    throw err;
  }

  const closers = [];
  let closing = null;
  const closeAll = () => (closing ??= (async () => {
    for (const close of closers.reverse()) await close().catch((e) => process.stderr.write(`demo: ${e.message}\n`));
  })());
  const stop = (signal) => {
    process.stdout.write(`\n${signal}: stopping the demo\n`);
    const force = setTimeout(() => { process.stderr.write('demo: shutdown timed out\n'); process.exit(1); }, 10_000);
    force.unref();
    closeAll().then(() => { process.stdout.write('demo stopped\n'); process.exit(0); });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));

  try {
    const idp = await startIdp({
      port: Number(env.DEMO_IDP_PORT), redirectUri: `${config.server.publicUrl}/auth/callback`,
      postLogoutRedirectUris: [`${config.server.publicUrl}/`, `${config.server.publicUrl}/status`],
      gatewaySecret: env.DEMO_LOGIN_CLIENT_SECRET, svcSecret: env.DEMO_SVC_SECRET,
    });
    closers.push(idp.close);
    const standin = await startCdfStandin({ port: Number(env.DEMO_CDF_PORT) });
    closers.push(standin.close);
    const live = await startLiveService({ port: Number(env.DEMO_LIVE_PORT) });
    closers.push(live.close);
    const dashboard = await startDashboard({ port: Number(env.DEMO_SPA_PORT), gatewayUrl: config.server.publicUrl });
    closers.push(dashboard.close);
    const gateway = dist.createGateway(config, { logStream: gatewayLog });
    closers.push(() => gateway.close());
    await gateway.listen().catch((err) => {
      throw err.code === 'EADDRINUSE'
        ? new Error(`gateway: port ${err.port ?? ''} on 127.0.0.1 is already in use (stop what holds it, or set DEMO_PORT_BASE)`)
        : err;
    });
  } catch (err) {
    await closeAll();
    throw err;
  }
  process.stdout.write(banner(env, config, await browserLoginWorks(config.server.publicUrl)));
  process.stdout.write(`${READY_LINE}: ${config.server.publicUrl}\n`);
}

main().catch((err) => {
  process.stderr.write(`demo: ${err.message}\n`);
  process.exit(1);
});
