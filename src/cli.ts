// CLI: load config → build gateway → listen; `check` validates only. Graceful shutdown on
// SIGTERM/SIGINT: stop accepting, drain in-flight requests, exit (forced after shutdownTimeoutMs).
// SIGHUP or a change of the config file reloads it: valid → applied, invalid → the running
// configuration keeps serving and every bad key is logged.
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { ConfigError, loadConfigFile } from './config/load.js';
import { createGateway, type Gateway } from './server.js';
import { watchConfigFile } from './reload.js';

const DEFAULT_CONFIG = '/etc/cdf-auth-gateway/gateway.yaml';
const USAGE = `Usage:
  cdf-auth-gateway [--config FILE]          start the gateway (default ${DEFAULT_CONFIG})
  cdf-auth-gateway check [--config FILE]    validate the configuration and exit
  cdf-auth-gateway --version | --help`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv, allowPositionals: true,
      options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean' } },
    });
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) { process.stdout.write(USAGE + '\n'); return 0; }
  if (values.version) { process.stdout.write(version() + '\n'); return 0; }
  const command = positionals[0] ?? 'run';
  if (positionals.length > 1 || (command !== 'run' && command !== 'check')) {
    process.stderr.write(`unknown command: ${positionals.join(' ')}\n${USAGE}\n`);
    return 2;
  }
  const file = values.config ?? DEFAULT_CONFIG;

  let config;
  try {
    config = loadConfigFile(file, env);
  } catch (e) {
    if (e instanceof ConfigError) {
      const { problems } = e;
      process.stderr.write(`${file}: invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'})\n`);
      for (const p of problems) process.stderr.write(`  ${p.path}: ${p.reason}\n`);
      return 1;
    }
    throw e;
  }
  if (command === 'check') {
    process.stdout.write(`${file}: ok (${config.issuers.length} issuers, ${Object.keys(config.upstreams).length} upstreams, ${config.routes.length} routes)\n`);
    return 0;
  }

  const gateway = createGateway(config);
  let stopping = false;
  let reloading: Promise<void> = Promise.resolve();
  const reload = (trigger: string) => {
    reloading = reloading.then(() => reloadFrom(gateway, file, env, trigger));
  };
  process.on('SIGHUP', () => reload('SIGHUP'));
  const unwatch = watchConfigFile(file, () => reload('file changed'));
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    unwatch();
    gateway.logger.info({ signal }, 'shutting down: draining in-flight requests');
    const force = setTimeout(() => {
      gateway.logger.warn('shutdown timeout: closing remaining connections');
      gateway.logger.flush();
      process.exit(1);
    }, config.server.shutdownTimeoutMs);
    force.unref();
    gateway.close().then(() => process.exit(0), (err: unknown) => {
      gateway.logger.error({ err }, 'error during shutdown');
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  try {
    await gateway.listen();
  } catch (e) {
    gateway.logger.fatal({ err: e }, 'cannot listen');
    gateway.logger.flush();
    return 1;
  }
  return -1; // keep running
}

/** Loads `file` again and applies it; an invalid file changes nothing (the log names every bad key). */
async function reloadFrom(gateway: Gateway, file: string, env: NodeJS.ProcessEnv, trigger: string): Promise<void> {
  let next;
  try {
    next = loadConfigFile(file, env);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    gateway.metrics.configReload('invalid');
    gateway.logger.error({ trigger, problems: e.problems }, `configuration reload refused: ${e.problems.length} problem(s); the running configuration keeps serving`);
    return;
  }
  try {
    await gateway.reload(next);
  } catch (err) {
    gateway.metrics.configReload('invalid');
    gateway.logger.error({ trigger, err }, 'configuration reload failed; the running configuration keeps serving');
  }
}

/** Runs the command line of this process; its exit code is set when it ends (a running gateway keeps going). */
export function run(): void {
  main(process.argv.slice(2), process.env).then((code) => { if (code >= 0) process.exitCode = code; }, (err: unknown) => {
    process.stderr.write(`fatal: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  });
}
