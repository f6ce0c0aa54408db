// Makes sure the collector's tests have PostgreSQL binaries (initdb, pg_ctl): Debian's package. The
// tests start a throwaway cluster of their own (collector/test/support/postgres.ts); no server needs
// to run. SPDT_TEST_DATABASE_URL points them at an existing server instead.
import { existsSync, readdirSync } from 'node:fs';
import { execSync } from 'node:child_process';

const ROOT = '/usr/lib/postgresql';
const installed = () => existsSync(ROOT) && readdirSync(ROOT).some((v) => existsSync(`${ROOT}/${v}/bin/initdb`));
if (!process.env.SPDT_TEST_DATABASE_URL && !installed()) {
  if (process.getuid?.() !== 0) {
    console.error('No PostgreSQL for the collector tests. Install Debian\'s (apt-get install -y postgresql) or set SPDT_TEST_DATABASE_URL.');
    process.exit(1);
  }
  console.log('Installing PostgreSQL (apt-get install -y postgresql) for the collector tests…');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execSync('apt-get update -qq && apt-get install -y -qq postgresql', { stdio: 'inherit', env });
}
