/**
 * The SQLite store: the shared contract on real files in temporary directories, then what only
 * SQLite has (its file, migrations, WAL, group commit seen in the WAL itself).
 */
import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { migrations } from '../src/store/schema.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import type { NewEvent, Store } from '../src/store/types.js';
import { storeContract } from './store-contract.js';
import { buildStore, type BuiltStore } from './support/store-build.js';

const BUSY_MS = 50; // how long a write waits for a lock before it fails; short, so a broken store fails fast

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'spdt-store-'));
}

type Open = typeof openSqliteStore;

function sqliteHarness(openStore: () => Open, thread: 'main' | 'worker') {
  return async () => {
  const dir = tempDir();
  const open = () => openStore()(dir, { busyTimeoutMs: BUSY_MS, thread });
  let locker: Database.Database | undefined;
  return {
    store: open(),
    reopen: async () => open(),
    // Another process holding the write lock (a backup, the sqlite3 shell) past the busy timeout.
    breakWrites: async () => {
      locker = new Database(join(dir, 'spdt.sqlite'));
      locker.exec('BEGIN IMMEDIATE');
    },
    dispose: async () => {
      if (locker?.inTransaction) locker.exec('ROLLBACK');
      locker?.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  };
}

// The transactions on the caller's thread (as the TypeScript sources run), and on the store's
// worker thread (as the built collector runs), from the same sources compiled to JavaScript.
storeContract('SQLite, same thread', sqliteHarness(() => openSqliteStore, 'main'));

let built: BuiltStore;
let openBuilt: Open;
beforeAll(async () => {
  built = buildStore();
  ({ openSqliteStore: openBuilt } = (await import(/* @vite-ignore */ built.url)) as { openSqliteStore: Open });
});
afterAll(() => built.remove());
storeContract('SQLite, worker thread', sqliteHarness(() => openBuilt, 'worker'));

let serial = 0;
const event = (overrides: Partial<NewEvent> = {}): NewEvent => ({
  key: 'key-1',
  action: 'view',
  event_id: `sqlite-${++serial}`,
  time: 1_767_225_600_000,
  received_at: 1_767_225_600_000,
  transport: 'beacon',
  action_source: 'WEB',
  ip: '203.0.113.7',
  body: { url: 'https://shop.example/' },
  problems: [],
  deliveries: [],
  ...overrides,
});

describe('SQLite store', () => {
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });
  const openIn = (dir: string, options?: Parameters<typeof openSqliteStore>[1]): Store => {
    const store = openSqliteStore(dir, options);
    cleanup.push(() => store.close());
    return store;
  };
  const side = (file: string) => {
    const db = new Database(file);
    cleanup.push(() => db.close());
    return db;
  };
  const newDir = () => {
    const dir = tempDir();
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  };

  it('creates its directory and spdt.sqlite, migrates an empty file, and reopens it without migrating again', async () => {
    const dir = join(newDir(), 'nested', 'data');
    const first = openIn(dir);
    const file = join(dir, 'spdt.sqlite');
    expect(existsSync(file)).toBe(true);
    const stored = event();
    await first.insert([stored]);
    await first.close();

    const peek = side(file);
    expect(peek.pragma('user_version', { simple: true })).toBe(migrations.length);
    expect(peek.pragma('journal_mode', { simple: true })).toBe('wal');
    const tables = peek.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all();
    expect(tables).toEqual(['deliveries', 'delivery_counts', 'events']);

    const second = openIn(dir); // the migration would fail on the existing tables if it ran again
    expect((await second.events({ limit: 10 })).map((e) => e.event_id)).toEqual([stored.event_id]);
    expect(peek.pragma('user_version', { simple: true })).toBe(migrations.length);
  });

  it('refuses a database written by a newer collector, leaving it as it was', () => {
    const dir = newDir();
    const file = join(dir, 'spdt.sqlite');
    const newer = side(file);
    newer.pragma(`user_version = ${migrations.length + 1}`);
    expect(() => openSqliteStore(dir)).toThrow(/newer/);
    expect(newer.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table'").pluck().get()).toBe(0);
  });

  it('uses the file named in options, with synchronous=FULL when asked', async () => {
    const dir = newDir();
    const store = openIn(dir, { file: 'other.db', synchronous: 'FULL' });
    await store.insert([event()]);
    expect(existsSync(join(dir, 'other.db'))).toBe(true);
    expect(existsSync(join(dir, 'spdt.sqlite'))).toBe(false);
  });

  it.each(['main', 'worker'] as const)('writes the insert() calls of one tick in one transaction, each resolving after that commit (%s thread)', async (thread) => {
    const dir = newDir();
    const store = (thread === 'main' ? openSqliteStore : openBuilt)(dir, { thread });
    cleanup.push(() => store.close());
    await store.insert([event()]); // the tables' first pages exist
    const peek = side(join(dir, 'spdt.sqlite'));
    peek.pragma('wal_checkpoint(TRUNCATE)'); // an empty WAL: what follows is all it will hold
    const visible = peek.prepare('SELECT count(*) FROM events WHERE event_id = ?').pluck();

    const events = Array.from({ length: 50 }, () => event());
    await Promise.all(
      events.map((each) =>
        store.insert([each]).then(() => {
          // Another connection sees it the moment the call resolves: it was committed before.
          expect(visible.get(each.event_id)).toBe(1);
        }),
      ),
    );
    const [{ log }] = peek.pragma('wal_checkpoint(PASSIVE)') as [{ log: number }];
    // One commit of 50 rows writes each touched page once (table and four indexes: a handful of
    // frames); 50 commits would write at least 5 frames each.
    expect(log).toBeGreaterThan(0);
    expect(log).toBeLessThan(25);
  });

  it('keeps a (connection, state) count at 0 once its deliveries moved on, so a gauge falls to 0', async () => {
    const store = openIn(newDir());
    await store.insert([event({ deliveries: [{ connection_id: 'conn-a', state: 'pending' }] })]);
    const [claimed] = await store.claim({ limit: 1, now: Date.now(), leaseMs: 60_000, worker: 'w' });
    await store.record([{ id: claimed!.id, state: 'delivered', status: 200, at: Date.now() }]);
    expect(await store.deliveryCounts()).toEqual([
      { connection_id: 'conn-a', state: 'delivered', count: 1 },
      { connection_id: 'conn-a', state: 'pending', count: 0 },
    ]);
  });

  it('rejects reads and writes after close, and close is idempotent', async () => {
    const store = openIn(newDir());
    await store.close();
    await store.close();
    await expect(store.events({ limit: 1 })).rejects.toThrow(/closed/);
    await expect(store.claim({ limit: 1, now: 0, leaseMs: 1, worker: 'w' })).rejects.toThrow(/closed/);
  });
});
