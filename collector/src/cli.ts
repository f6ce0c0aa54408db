/**
 * The `spdt-collector` bin: `spdt-collector` starts the collector from the environment (and
 * `SPDT_CONFIG`); `spdt-collector replay [--event-id ID]…` puts dead deliveries back to pending.
 * A bad setting is printed (naming the variable, never its value) and exits 2. On SIGTERM or
 * SIGINT it stops accepting, finishes what is in flight (at most 10 s), closes the store, exits 0.
 */
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './log.js';
import { runReplay } from './relay/replay-cli.js';
import { createCollector, DRAIN_MS } from './server.js';

async function main(argv: string[]): Promise<number | undefined> {
  const [command, ...rest] = argv;
  if (command == '--help' || command == '-h') {
    process.stdout.write('usage: spdt-collector            start (configured by environment, SPEC §8)\n       spdt-collector replay [--event-id ID …]\n');
    return 0;
  }
  if (command !== undefined && command != 'replay' && command != 'start') {
    process.stderr.write(`spdt-collector: unknown command ${JSON.stringify(command.slice(0, 64))} (try --help)\n`);
    return 2;
  }
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`spdt-collector: ${error.message}\n`);
    return 2;
  }
  if (command == 'replay') return runReplay(rest, config);

  const log = createLogger({ secrets: [config.adminToken, config.serverToken, ...config.connections.map((c) => c.token)] });
  const collector = await createCollector(config, { log });
  const { port } = await collector.listen();
  log.info('listening', { host: config.host, port, role: config.role, connections: config.connections.length });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', { signal });
    // A last resort: whatever the drain leaves hanging, the process ends shortly after its limit.
    setTimeout(() => process.exit(0), DRAIN_MS + 2_000).unref();
    collector.close().then(
      () => process.exit(0),
      (error) => {
        log.error('stop failed', { error });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  return undefined; // keeps running
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`spdt-collector: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
