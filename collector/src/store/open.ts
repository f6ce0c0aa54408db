/**
 * Which store a collector uses (SPEC §8, §11): PostgreSQL when `DATABASE_URL` is set, shared by any
 * number of collector processes; otherwise the embedded SQLite file in `SPDT_DATA_DIR`.
 */
import type { Config } from '../context.js';
import type { Store } from './types.js';

export async function openStore(config: Pick<Config, 'dataDir' | 'databaseUrl'>): Promise<Store> {
  if (config.databaseUrl) {
    const { openPostgresStore } = await import('./postgres.js');
    return openPostgresStore(config.databaseUrl);
  }
  const { openSqliteStore } = await import('./sqlite.js');
  return openSqliteStore(config.dataDir);
}
