// The store contract (store-contract.ts) against a real PostgreSQL server: a throwaway cluster
// for this file, a fresh database per test, the store connecting as it would in production.
import pg from 'pg';
import { afterAll } from 'vitest';
import { openPostgresStore } from '../src/store/postgres.js';
import { freshDatabase, startCluster, type Cluster } from './support/postgres.js';
import { storeContract } from './store-contract.js';

let cluster: Promise<Cluster> | undefined;
const clusterOnce = () => (cluster ??= startCluster());
afterAll(async () => (await cluster)?.stop());

storeContract('PostgreSQL', async () => {
  const { url: clusterUrl } = await clusterOnce();
  const url = await freshDatabase(clusterUrl);
  const name = new URL(url).pathname.slice(1);
  const admin = new pg.Client({ connectionString: clusterUrl });
  await admin.connect();
  return {
    store: await openPostgresStore(url),
    reopen: () => openPostgresStore(url),
    // A real outage of writes: the database turns read-only (as a failed-over replica is) and the
    // store's sessions are cut, so every new one it opens refuses to write.
    async breakWrites() {
      await admin.query(`ALTER DATABASE ${name} SET default_transaction_read_only = on`);
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
    },
    dispose: () => admin.end(),
  };
});
