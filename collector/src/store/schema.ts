/**
 * The SQLite schema and its migrations. `PRAGMA user_version` is the number of migrations applied;
 * at start the collector applies the missing ones in order, each in its own `BEGIN IMMEDIATE`
 * transaction that re-reads the version first, so two processes starting at once on the same file
 * apply each migration once. Migrations are append-only: never edit one that has shipped.
 *
 * The tables map one to one onto PostgreSQL (§11): `seq`/`id` become identity columns, the JSON
 * texts `jsonb`, and `claim()`'s select becomes `FOR UPDATE SKIP LOCKED`. One thing does not carry
 * over as is: here writers are serialised, so change numbers commit in order; in PostgreSQL a
 * sequence value can commit after a larger one, which a `change_seq > cursor` poll would miss.
 */
import type Database from 'better-sqlite3';

export const migrations: readonly string[] = [
  // 1: events stored once per (key, event_id), their deliveries, and the counts /metrics reads.
  `
  CREATE TABLE events (
    seq INTEGER PRIMARY KEY,              -- storage order
    key TEXT NOT NULL,
    event_id TEXT NOT NULL,
    action TEXT NOT NULL,
    time INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    uid TEXT,
    sid TEXT,
    cid TEXT,
    alias TEXT,                           -- JSON object
    opt_out_targeting INTEGER,            -- 0/1, NULL when the event did not say
    transport TEXT NOT NULL,
    action_source TEXT NOT NULL,
    ip TEXT NOT NULL,                     -- full while a delivery is pending, then shortened
    user_agent TEXT,
    body TEXT NOT NULL,                   -- JSON object
    problems TEXT NOT NULL,               -- JSON array of strings
    change_seq INTEGER NOT NULL,          -- the live feed's cursor: set on insert and on every delivery change
    UNIQUE (key, event_id)
  );
  CREATE INDEX events_by_key_received ON events (key, received_at);
  CREATE INDEX events_by_received ON events (received_at);
  CREATE UNIQUE INDEX events_by_change ON events (change_seq);

  CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    event_seq INTEGER NOT NULL REFERENCES events (seq),
    connection_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead', 'skipped')),
    attempts INTEGER NOT NULL DEFAULT 0,  -- tries made since the delivery was stored or replayed
    last_status INTEGER,
    last_error TEXT,
    next_attempt_at INTEGER,              -- pending only
    first_attempt_at INTEGER,             -- the SPDT_RELAY_MAX_AGE clock; cleared by a replay
    delivered_at INTEGER,
    lease_until INTEGER,                  -- a worker holds the claim until then
    worker TEXT,
    UNIQUE (event_seq, connection_id)
  );
  CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);

  -- Kept in step by the store in the transactions that change deliveries, so /metrics does not
  -- count a table that grows without bound on every scrape.
  CREATE TABLE delivery_counts (
    connection_id TEXT NOT NULL,
    state TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (connection_id, state)
  );
  `,
];

/** Brings the database to the newest schema; throws when it was written by a newer collector. */
export function migrate(db: Database.Database): void {
  const version = () => db.pragma('user_version', { simple: true }) as number;
  if (version() > migrations.length) {
    throw new Error(`the database schema (version ${version()}) is newer than this collector's (${migrations.length})`);
  }
  for (let target = 1; target <= migrations.length; target++) {
    db.transaction(() => {
      if (version() >= target) return; // another process got here first
      db.exec(migrations[target - 1]!);
      db.pragma(`user_version = ${target}`);
    }).immediate();
  }
}
