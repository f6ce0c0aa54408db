/**
 * A collector process reduced to its store and relay worker, configured from the environment as
 * the collector is (loadConfig), for the tests that SIGKILL it. Test-only knobs: RELAY_TEST_LEASE_MS
 * and RELAY_TEST_TIMEOUT_MS (a restart must not wait out a 60 s lease). Logs go to stdout.
 */
import { EventEmitter } from 'node:events';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { createRegistry } from '../../src/metrics.js';
import { startRelay } from '../../src/relay/worker.js';
import { openSqliteStore } from '../../src/store/sqlite.js';

const config = loadConfig(process.env);
const store = openSqliteStore(config.dataDir);
const log = createLogger({ write: (line) => process.stdout.write(line + '\n') });
const relay = startRelay(
  { config, store, registry: createRegistry(), log, changes: new EventEmitter() },
  {
    leaseMs: Number(process.env.RELAY_TEST_LEASE_MS ?? 60_000),
    timeoutMs: Number(process.env.RELAY_TEST_TIMEOUT_MS ?? 10_000),
    concurrency: Number(process.env.RELAY_TEST_CONCURRENCY ?? 2),
  },
);
process.stdout.write(JSON.stringify({ msg: 'relay child ready' }) + '\n');
process.on('SIGTERM', async () => {
  await relay.stop();
  await store.close();
  process.exit(0);
});
