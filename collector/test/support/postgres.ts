/**
 * A throwaway PostgreSQL cluster for the tests (SPEC §11): Debian's `postgresql` binaries, `initdb`
 * and `pg_ctl` run as the `postgres` user on a temporary directory and a free port, listening on
 * loopback only. `SPDT_TEST_DATABASE_URL` points the tests at an existing server instead.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

export interface Cluster {
  /** A superuser URL of the cluster's default database. */
  url: string;
  stop(): void;
}

function binDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).sort((a, b) => +b - +a) : [];
  const found = versions.map((v) => path.join(root, v, 'bin')).find((dir) => fs.existsSync(path.join(dir, 'initdb')));
  if (!found) throw new Error('PostgreSQL is not installed: apt-get install -y postgresql (or set SPDT_TEST_DATABASE_URL)');
  return found;
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });

/** Runs a PostgreSQL binary as the `postgres` user when we are root (initdb refuses root). */
function runAsPostgres(bin: string, args: string[]): void {
  const asRoot = process.getuid?.() === 0;
  const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  const result = spawnSync(cmd, argv, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${path.basename(bin)} failed: ${result.stderr || result.stdout}`);
}

export async function startCluster(): Promise<Cluster> {
  if (process.env.SPDT_TEST_DATABASE_URL) return { url: process.env.SPDT_TEST_DATABASE_URL, stop() {} };
  const bin = binDir();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spdt-pg-'));
  if (process.getuid?.() === 0) execFileSync('chown', ['postgres:postgres', dir]);
  const data = path.join(dir, 'data');
  runAsPostgres(path.join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  const port = await freePort();
  // fsync stays on: the durability tests SIGKILL collectors, not the database server.
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=200`;
  runAsPostgres(path.join(bin, 'pg_ctl'), ['-D', data, '-o', options, '-l', path.join(dir, 'log'), '-w', 'start']);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop() {
      try {
        runAsPostgres(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** A fresh, empty database on the cluster, for one test file or test; returns its URL. */
export async function freshDatabase(clusterUrl: string, name = 'spdt_' + Math.random().toString(36).slice(2, 10)): Promise<string> {
  const client = new pg.Client({ connectionString: clusterUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(clusterUrl);
  url.pathname = '/' + name;
  return url.toString();
}
