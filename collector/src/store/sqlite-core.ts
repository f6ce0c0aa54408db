/**
 * The SQLite store's engine: every operation of the Store as one synchronous step on one
 * better-sqlite3 connection, each write in its own `BEGIN IMMEDIATE` transaction. `sqlite.ts` runs
 * it on a worker thread (`sqlite-worker.ts`) or, where that file is not built, on the caller's
 * thread, and gives it the Store's promises and group commit.
 *
 * Writers are serialised by SQLite, which gives what PostgreSQL's `FOR UPDATE SKIP LOCKED` gives
 * the relay there: a delivery claimed under a lease is not claimed again until the lease ends, and
 * change numbers commit in order. Nothing of the store is kept in memory: every read pages
 * through an index with LIMIT.
 */
import Database from 'better-sqlite3';
import { shortenIp } from './ip.js';
import { migrate } from './schema.js';
import type { Changes, ClaimedDelivery, ClaimedEvent, Delivery, DeliveryState, EventQuery, NewEvent, Outcome, Store, StoredEvent } from './types.js';

export interface CoreSettings {
  synchronous: 'NORMAL' | 'FULL';
  busyTimeoutMs: number;
}

interface EventRow {
  seq: number;
  key: string;
  action: string;
  event_id: string;
  time: number;
  received_at: number;
  uid: string | null;
  sid: string | null;
  cid: string | null;
  alias: string | null;
  opt_out_targeting: number | null;
  transport: StoredEvent['transport'];
  action_source: StoredEvent['action_source'];
  ip: string;
  user_agent: string | null;
  body: string;
  problems: string;
  change_seq: number;
}

interface DeliveryRow {
  id: number;
  event_seq: number;
  connection_id: string;
  state: DeliveryState;
  attempts: number;
  last_status: number | null;
  last_error: string | null;
  next_attempt_at: number | null;
  first_attempt_at: number | null;
  delivered_at: number | null;
}

type ClaimRow = Pick<DeliveryRow, 'id' | 'connection_id' | 'attempts' | 'first_attempt_at'> &
  Pick<EventRow, 'action' | 'event_id' | 'time' | 'received_at' | 'uid' | 'alias' | 'opt_out_targeting' | 'action_source' | 'ip' | 'body'>;

export type ClaimOptions = Parameters<Store['claim']>[0];
export type DeliveryListing = (Delivery & { event_id: string; key: string })[];
export type DeliveryCounts = { connection_id: string; state: DeliveryState; count: number }[];

const EVENT_COLUMNS =
  'seq, key, action, event_id, time, received_at, uid, sid, cid, alias, opt_out_targeting, ' +
  'transport, action_source, ip, user_agent, body, problems, change_seq';
// What a claim reads: the delivery's own columns and what the mapping needs of its event (ClaimedEvent).
const CLAIM_COLUMNS =
  'd.id, d.connection_id, d.attempts, d.first_attempt_at, ' +
  'e.action, e.event_id, e.time, e.received_at, e.uid, e.alias, e.opt_out_targeting, e.action_source, e.ip, e.body';
const DELIVERY_COLUMNS =
  'id, event_seq, connection_id, state, attempts, last_status, last_error, next_attempt_at, first_attempt_at, delivered_at';

/** Opens (creating and migrating) the database file; throws when it cannot be used. */
export function openSqliteCore(file: string, settings: CoreSettings): SqliteCore {
  const db = new Database(file, { timeout: settings.busyTimeoutMs });
  try {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${settings.synchronous === 'FULL' ? 'FULL' : 'NORMAL'}`);
    migrate(db);
    db.function('spdt_shorten_ip', { deterministic: true }, (ip: unknown) => shortenIp(String(ip)));
    return new SqliteCore(db);
  } catch (error) {
    db.close();
    throw error;
  }
}

export class SqliteCore {
  private readonly sql;
  /** Writes each call's events in one transaction (one group commit); per call, per event: was it new. */
  readonly insertBatch: (batch: EncodedEvent[][]) => boolean[][];
  readonly claim: (options: ClaimOptions) => ClaimedDelivery[];
  readonly record: (outcomes: Outcome[]) => void;
  /**
   * Dead deliveries back to pending, due `now`, with a fresh clock: `first_attempt_at` cleared (the
   * next try restarts SPDT_RELAY_MAX_AGE) and `attempts` reset to 0, so the relay's backoff starts
   * again at SPDT_RELAY_RETRY_MS. `last_status` and `last_error` stay until the next try, to show
   * why it died. An IP shortened meanwhile stays short. Event ids match in any key.
   */
  readonly replay: (eventIds: string[] | undefined, now: number) => number;

  constructor(private readonly db: Database.Database) {
    this.sql = prepareStatements(db);
    const { sql } = this;
    this.insertBatch = immediate(db, (batch: EncodedEvent[][]) => {
      const counts = new CountChanges();
      let change = sql.nextChange.get() as number;
      const results = batch.map((events) =>
        events.map((event) => {
          const inserted = writeEvent(sql, event, change, counts);
          if (inserted) change++;
          return inserted;
        }),
      );
      counts.write(sql);
      return results;
    });
    const claimDue = immediate(db, ({ connection_id, limit, now, leaseMs, worker }: ClaimOptions) => {
      const due = (
        connection_id === undefined ? sql.dueClaims.all(now, now, limit) : sql.dueClaimsOf.all(now, now, connection_id, limit)
      ) as ClaimRow[];
      if (due.length > 0) sql.lease.run(now + leaseMs, worker, JSON.stringify(due.map((row) => row.id)));
      return due.map(toClaimed);
    });
    this.claim = (options) => (options.limit > 0 ? claimDue(options) : []);
    this.record = immediate(db, (outcomes: Outcome[]) => {
      const counts = new CountChanges();
      // Only deliveries still pending: a late outcome for one that has already ended changes nothing.
      const ended = sql.recordOutcomes.all(JSON.stringify(outcomes.map(outcomeColumns))) as { event_seq: number; connection_id: string; state: DeliveryState }[];
      for (const { connection_id, state } of ended) {
        counts.add(connection_id, 'pending', -1);
        counts.add(connection_id, state, 1);
      }
      touchEvents(sql, ended.map((row) => row.event_seq));
      counts.write(sql);
    });
    this.replay = immediate(db, (eventIds: string[] | undefined, now: number) => {
      const replayed = (eventIds === undefined ? sql.replayAll.all(now) : sql.replayOf.all(now, JSON.stringify(eventIds))) as {
        event_seq: number;
        connection_id: string;
      }[];
      const counts = new CountChanges();
      for (const { connection_id } of replayed) {
        counts.add(connection_id, 'dead', -1);
        counts.add(connection_id, 'pending', 1);
      }
      touchEvents(sql, replayed.map((row) => row.event_seq));
      counts.write(sql);
      return replayed.length;
    });
  }

  events({ key, since, limit }: EventQuery): StoredEvent[] {
    const rows = (
      since === undefined
        ? key === undefined
          ? this.sql.newestEvents.all(pageSize(limit))
          : this.sql.newestEventsOf.all(key, pageSize(limit))
        : key === undefined
          ? this.sql.eventsSince.all(since, pageSize(limit))
          : this.sql.eventsOfSince.all(key, since, pageSize(limit))
    ) as EventRow[];
    return this.loadEvents(rows).map(({ event }) => event);
  }

  changes(cursor: number, limit: number): Changes {
    const rows = this.sql.changedEvents.all(cursor, pageSize(limit)) as EventRow[];
    return { cursor: rows.length > 0 ? rows[rows.length - 1]!.change_seq : cursor, events: this.loadEvents(rows).map(({ event }) => event) };
  }

  cursor(): number {
    return (this.sql.nextChange.get() as number) - 1;
  }

  deliveries({ state, limit }: { state?: DeliveryState; limit: number }): DeliveryListing {
    const rows = (state === undefined ? this.sql.allDeliveries.all(pageSize(limit)) : this.sql.deliveriesIn.all(state, pageSize(limit))) as (DeliveryRow & {
      event_id: string;
      key: string;
    })[];
    return rows.map((row) => ({ ...toDelivery(row), event_id: row.event_id, key: row.key }));
  }

  /** Every (connection, state) seen so far, zeros included, so a gauge falls to 0 instead of vanishing. */
  deliveryCounts(): DeliveryCounts {
    return this.sql.deliveryCounts.all() as DeliveryCounts;
  }

  /** Takes and releases the write lock: false when the file cannot be written. */
  healthy(): boolean {
    try {
      this.sql.begin.run();
      this.sql.rollback.run();
      return true;
    } catch {
      if (this.db.inTransaction) this.sql.rollback.run();
      return false;
    }
  }

  close(): void {
    this.db.close();
  }

  /** Rows as StoredEvents with their deliveries (one query for the whole page). */
  private loadEvents(rows: EventRow[]): { seq: number; event: StoredEvent }[] {
    if (rows.length === 0) return [];
    const deliveries = new Map<number, Delivery[]>();
    for (const row of this.sql.deliveriesOfEvents.all(JSON.stringify(rows.map((r) => r.seq))) as DeliveryRow[]) {
      let list = deliveries.get(row.event_seq);
      if (list === undefined) deliveries.set(row.event_seq, (list = []));
      list.push(toDelivery(row));
    }
    return rows.map((row) => ({ seq: row.seq, event: toStoredEvent(row, deliveries.get(row.seq) ?? []) }));
  }
}

function prepareStatements(db: Database.Database) {
  const prepare = (source: string) => db.prepare(source);
  return {
    begin: prepare('BEGIN IMMEDIATE'),
    rollback: prepare('ROLLBACK'),
    nextChange: prepare('SELECT COALESCE(MAX(change_seq), 0) + 1 FROM events').pluck(),
    insertEvent: prepare(
      `INSERT INTO events (key, event_id, action, time, received_at, uid, sid, cid, alias, opt_out_targeting,
         transport, action_source, ip, user_agent, body, problems, change_seq)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (key, event_id) DO NOTHING`,
    ),
    insertDelivery: prepare(
      'INSERT INTO deliveries (event_seq, connection_id, state, next_attempt_at, last_error) VALUES (?, ?, ?, ?, ?)',
    ),
    addCount: prepare(
      `INSERT INTO delivery_counts (connection_id, state, count) VALUES (?, ?, ?)
       ON CONFLICT (connection_id, state) DO UPDATE SET count = count + excluded.count`,
    ),
    deliveryCounts: prepare('SELECT connection_id, state, count FROM delivery_counts ORDER BY connection_id, state'),
    // The newest page, returned oldest first.
    newestEvents: prepare(`SELECT * FROM (SELECT ${EVENT_COLUMNS} FROM events ORDER BY received_at DESC, seq DESC LIMIT ?) ORDER BY received_at, seq`),
    newestEventsOf: prepare(
      `SELECT * FROM (SELECT ${EVENT_COLUMNS} FROM events WHERE key = ? ORDER BY received_at DESC, seq DESC LIMIT ?) ORDER BY received_at, seq`,
    ),
    eventsSince: prepare(`SELECT ${EVENT_COLUMNS} FROM events WHERE received_at >= ? ORDER BY received_at, seq LIMIT ?`),
    eventsOfSince: prepare(`SELECT ${EVENT_COLUMNS} FROM events WHERE key = ? AND received_at >= ? ORDER BY received_at, seq LIMIT ?`),
    changedEvents: prepare(`SELECT ${EVENT_COLUMNS} FROM events WHERE change_seq > ? ORDER BY change_seq LIMIT ?`),
    deliveriesOfEvents: prepare(`SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE event_seq IN (SELECT value FROM json_each(?)) ORDER BY id`),
    dueClaims: prepare(
      `SELECT ${CLAIM_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.event_seq
       WHERE d.state = 'pending' AND d.next_attempt_at <= ? AND (d.lease_until IS NULL OR d.lease_until <= ?)
       ORDER BY d.next_attempt_at, d.id LIMIT ?`,
    ),
    dueClaimsOf: prepare(
      `SELECT ${CLAIM_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.event_seq
       WHERE d.state = 'pending' AND d.next_attempt_at <= ? AND (d.lease_until IS NULL OR d.lease_until <= ?) AND d.connection_id = ?
       ORDER BY d.next_attempt_at, d.id LIMIT ?`,
    ),
    lease: prepare('UPDATE deliveries SET lease_until = ?, worker = ? WHERE id IN (SELECT value FROM json_each(?))'),
    // One statement for a whole batch's outcomes (see outcomeColumns); every outcome counts as a try
    // and sets the SPDT_RELAY_MAX_AGE clock on the first. (`+state`: find each row by its id, never
    // scan every pending delivery by state.)
    recordOutcomes: prepare(
      `UPDATE deliveries SET state = o.state, attempts = deliveries.attempts + 1, last_status = o.status, last_error = o.error,
         next_attempt_at = o.next_attempt_at, delivered_at = COALESCE(o.delivered_at, deliveries.delivered_at),
         first_attempt_at = COALESCE(deliveries.first_attempt_at, o.at), lease_until = NULL, worker = NULL
       FROM (SELECT value ->> 0 AS id, value ->> 1 AS state, value ->> 2 AS status, value ->> 3 AS error,
               value ->> 4 AS next_attempt_at, value ->> 5 AS delivered_at, value ->> 6 AS at FROM json_each(?)) AS o
       WHERE deliveries.id = o.id AND +deliveries.state = 'pending'
       RETURNING deliveries.event_seq, deliveries.connection_id, deliveries.state`,
    ),
    // A delivery of each event changed: it moves to the end of the change feed, and once none of its
    // deliveries is pending its IP is shortened, in the same transaction. (`+state`: look the
    // event's few deliveries up by event_seq, never scan every pending delivery by state.)
    touchEvents: prepare(
      `UPDATE events SET change_seq = t.change,
         ip = CASE WHEN EXISTS (SELECT 1 FROM deliveries WHERE event_seq = events.seq AND +state = 'pending') THEN ip ELSE spdt_shorten_ip(ip) END
       FROM (SELECT value ->> 0 AS seq, value ->> 1 AS change FROM json_each(?)) AS t
       WHERE events.seq = t.seq`,
    ),
    replayAll: prepare(
      `UPDATE deliveries SET state = 'pending', attempts = 0, first_attempt_at = NULL, next_attempt_at = ?,
         delivered_at = NULL, lease_until = NULL, worker = NULL
       WHERE state = 'dead' RETURNING event_seq, connection_id`,
    ),
    replayOf: prepare(
      `UPDATE deliveries SET state = 'pending', attempts = 0, first_attempt_at = NULL, next_attempt_at = ?,
         delivered_at = NULL, lease_until = NULL, worker = NULL
       WHERE state = 'dead' AND (SELECT event_id FROM events WHERE seq = deliveries.event_seq) IN (SELECT value FROM json_each(?))
       RETURNING event_seq, connection_id`,
    ),
    allDeliveries: prepare(
      `SELECT d.id, d.event_seq, d.connection_id, d.state, d.attempts, d.last_status, d.last_error, d.next_attempt_at,
         d.first_attempt_at, d.delivered_at, e.event_id, e.key
       FROM deliveries d JOIN events e ON e.seq = d.event_seq ORDER BY d.id LIMIT ?`,
    ),
    deliveriesIn: prepare(
      `SELECT d.id, d.event_seq, d.connection_id, d.state, d.attempts, d.last_status, d.last_error, d.next_attempt_at,
         d.first_attempt_at, d.delivered_at, e.event_id, e.key
       FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE d.state = ? ORDER BY d.next_attempt_at, d.id LIMIT ?`,
    ),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

/** A better-sqlite3 transaction run as BEGIN IMMEDIATE: the write lock first, then the reads it depends on. */
function immediate<A extends unknown[], R>(db: Database.Database, body: (...args: A) => R): (...args: A) => R {
  const wrapped = db.transaction(body);
  return (...args: A) => wrapped.immediate(...args);
}

/**
 * An event as the insert statement binds it: its columns (JSON texts made, the IP already
 * shortened when no delivery will need it) and its deliveries. Made where insert() is called, so
 * only strings and numbers cross to the store's thread.
 */
export interface EncodedEvent {
  columns: (string | number | null)[];
  received_at: number;
  deliveries: { connection_id: string; state: 'pending' | 'skipped'; last_error: string | null }[];
}

export function encodeEvent(event: NewEvent): EncodedEvent {
  const needsIp = event.deliveries.some((delivery) => delivery.state === 'pending');
  return {
    columns: [
      event.key,
      event.event_id,
      event.action,
      event.time,
      event.received_at,
      event.uid ?? null,
      event.sid ?? null,
      event.cid ?? null,
      event.alias === undefined ? null : JSON.stringify(event.alias),
      event.opt_out_targeting === undefined ? null : event.opt_out_targeting ? 1 : 0,
      event.transport,
      event.action_source,
      needsIp ? event.ip : shortenIp(event.ip),
      event.user_agent ?? null,
      JSON.stringify(event.body),
      JSON.stringify(event.problems),
    ],
    received_at: event.received_at,
    deliveries: event.deliveries.map((d) => ({ connection_id: d.connection_id, state: d.state, last_error: d.last_error ?? null })),
  };
}

/** Writes one event unless (key, event_id) is stored; its deliveries only when it is new. */
function writeEvent(sql: Statements, event: EncodedEvent, changeSeq: number, counts: CountChanges): boolean {
  const { changes, lastInsertRowid } = sql.insertEvent.run(...event.columns, changeSeq);
  if (changes === 0) return false;
  for (const delivery of event.deliveries) {
    const pending = delivery.state === 'pending';
    sql.insertDelivery.run(lastInsertRowid, delivery.connection_id, delivery.state, pending ? event.received_at : null, delivery.last_error);
    counts.add(delivery.connection_id, delivery.state, 1);
  }
  return true;
}

/** An outcome as one row of recordOutcomes: [id, state, status, error, next_attempt_at, delivered_at, at]. */
function outcomeColumns(outcome: Outcome): (string | number | null)[] {
  const status = outcome.status ?? null;
  switch (outcome.state) {
    case 'delivered':
      return [Number(outcome.id), 'delivered', status, null, null, outcome.at, outcome.at];
    case 'pending':
      return [Number(outcome.id), 'pending', status, outcome.error ?? null, outcome.next_attempt_at, null, outcome.at];
    case 'dead':
      return [Number(outcome.id), 'dead', status, outcome.error, null, null, outcome.at];
  }
}

/** Gives each event (once) the next change numbers, in order, and shortens IPs no delivery needs. */
function touchEvents(sql: Statements, seqs: number[]): void {
  const unique = [...new Set(seqs)];
  if (unique.length === 0) return;
  const first = sql.nextChange.get() as number;
  sql.touchEvents.run(JSON.stringify(unique.map((seq, i) => [seq, first + i])));
}

/** The changes of one transaction to `delivery_counts`, written as one upsert per (connection, state). */
class CountChanges {
  private readonly deltas = new Map<string, { connection_id: string; state: DeliveryState; delta: number }>();

  add(connection_id: string, state: DeliveryState, delta: number): void {
    const id = `${state}\u0000${connection_id}`;
    const entry = this.deltas.get(id);
    if (entry) entry.delta += delta;
    else this.deltas.set(id, { connection_id, state, delta });
  }

  write(sql: Statements): void {
    for (const { connection_id, state, delta } of this.deltas.values()) {
      if (delta !== 0) sql.addCount.run(connection_id, state, delta);
    }
  }
}

function pageSize(limit: number): number {
  return Number.isFinite(limit) && limit > 0 ? Math.floor(limit) : 0;
}

function toDelivery(row: DeliveryRow): Delivery {
  const delivery: Delivery = { destination: 'spotify', connection_id: row.connection_id, state: row.state, attempts: row.attempts };
  if (row.last_status !== null) delivery.last_status = row.last_status;
  if (row.last_error !== null) delivery.last_error = row.last_error;
  if (row.next_attempt_at !== null) delivery.next_attempt_at = row.next_attempt_at;
  if (row.delivered_at !== null) delivery.delivered_at = row.delivered_at;
  return delivery;
}

function toClaimed(row: ClaimRow): ClaimedDelivery {
  const event: ClaimedEvent = {
    action: row.action,
    event_id: row.event_id,
    time: row.time,
    received_at: row.received_at,
    action_source: row.action_source,
    ip: row.ip,
    body: JSON.parse(row.body) as ClaimedEvent['body'],
  };
  if (row.uid !== null) event.uid = row.uid;
  if (row.alias !== null) event.alias = JSON.parse(row.alias) as Record<string, string>;
  if (row.opt_out_targeting !== null) event.opt_out_targeting = row.opt_out_targeting === 1;
  const claimed: ClaimedDelivery = { id: String(row.id), connection_id: row.connection_id, attempts: row.attempts, event };
  if (row.first_attempt_at !== null) claimed.first_attempt_at = row.first_attempt_at;
  return claimed;
}

/** A row as the API shows it: optional fields the event did not have are left out, not null. */
function toStoredEvent(row: EventRow, deliveries: Delivery[]): StoredEvent {
  const event = { key: row.key, action: row.action, event_id: row.event_id, time: row.time, received_at: row.received_at } as StoredEvent;
  if (row.uid !== null) event.uid = row.uid;
  if (row.sid !== null) event.sid = row.sid;
  if (row.cid !== null) event.cid = row.cid;
  if (row.alias !== null) event.alias = JSON.parse(row.alias) as Record<string, string>;
  if (row.opt_out_targeting !== null) event.opt_out_targeting = row.opt_out_targeting === 1;
  event.transport = row.transport;
  event.action_source = row.action_source;
  event.ip = row.ip;
  if (row.user_agent !== null) event.user_agent = row.user_agent;
  event.body = JSON.parse(row.body) as StoredEvent['body'];
  event.problems = JSON.parse(row.problems) as string[];
  event.deliveries = deliveries;
  return event;
}
