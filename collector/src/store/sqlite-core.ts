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
import type { Changes, ClaimedDelivery, Delivery, DeliveryState, EventQuery, NewEvent, Outcome, Store, StoredEvent } from './types.js';

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

export type ClaimOptions = Parameters<Store['claim']>[0];
export type DeliveryListing = (Delivery & { event_id: string; key: string })[];
export type DeliveryCounts = { connection_id: string; state: DeliveryState; count: number }[];

const EVENT_COLUMNS =
  'seq, key, action, event_id, time, received_at, uid, sid, cid, alias, opt_out_targeting, ' +
  'transport, action_source, ip, user_agent, body, problems, change_seq';
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
        connection_id === undefined ? sql.dueDeliveries.all(now, now, limit) : sql.dueDeliveriesOf.all(now, now, connection_id, limit)
      ) as DeliveryRow[];
      for (const delivery of due) sql.lease.run(now + leaseMs, worker, delivery.id);
      const events = this.loadEvents(sql.eventsBySeq.all(JSON.stringify(due.map((d) => d.event_seq))) as EventRow[]);
      const bySeq = new Map(events.map((event) => [event.seq, event.event]));
      return due.map((delivery) => {
        const claimed: ClaimedDelivery = { id: String(delivery.id), connection_id: delivery.connection_id, attempts: delivery.attempts, event: bySeq.get(delivery.event_seq)! };
        if (delivery.first_attempt_at !== null) claimed.first_attempt_at = delivery.first_attempt_at;
        return claimed;
      });
    });
    this.claim = (options) => (options.limit > 0 ? claimDue(options) : []);
    this.record = immediate(db, (outcomes: Outcome[]) => {
      const counts = new CountChanges();
      let change = sql.nextChange.get() as number;
      for (const outcome of outcomes) {
        const delivery = sql.deliveryById.get(Number(outcome.id)) as { event_seq: number; connection_id: string; state: DeliveryState } | undefined;
        if (delivery?.state !== 'pending') continue; // a late outcome for a delivery that has already ended
        applyOutcome(sql, outcome);
        counts.add(delivery.connection_id, 'pending', -1);
        counts.add(delivery.connection_id, outcome.state, 1);
        sql.touchEvent.run({ change: change++, seq: delivery.event_seq });
      }
      counts.write(sql);
    });
    this.replay = immediate(db, (eventIds: string[] | undefined, now: number) => {
      const replayed = (eventIds === undefined ? sql.replayAll.all(now) : sql.replayOf.all(now, JSON.stringify(eventIds))) as {
        event_seq: number;
        connection_id: string;
      }[];
      const counts = new CountChanges();
      let change = sql.nextChange.get() as number;
      for (const { event_seq, connection_id } of replayed) {
        counts.add(connection_id, 'dead', -1);
        counts.add(connection_id, 'pending', 1);
        sql.touchEvent.run({ change: change++, seq: event_seq });
      }
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
    eventsBySeq: prepare(`SELECT ${EVENT_COLUMNS} FROM events WHERE seq IN (SELECT value FROM json_each(?))`),
    deliveriesOfEvents: prepare(`SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE event_seq IN (SELECT value FROM json_each(?)) ORDER BY id`),
    dueDeliveries: prepare(
      `SELECT ${DELIVERY_COLUMNS} FROM deliveries
       WHERE state = 'pending' AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?)
       ORDER BY next_attempt_at, id LIMIT ?`,
    ),
    dueDeliveriesOf: prepare(
      `SELECT ${DELIVERY_COLUMNS} FROM deliveries
       WHERE state = 'pending' AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?) AND connection_id = ?
       ORDER BY next_attempt_at, id LIMIT ?`,
    ),
    lease: prepare('UPDATE deliveries SET lease_until = ?, worker = ? WHERE id = ?'),
    deliveryById: prepare('SELECT event_seq, connection_id, state FROM deliveries WHERE id = ?'),
    delivered: prepare(
      `UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, last_status = ?, last_error = NULL,
         next_attempt_at = NULL, delivered_at = ?, first_attempt_at = COALESCE(first_attempt_at, ?), lease_until = NULL, worker = NULL
       WHERE id = ?`,
    ),
    retry: prepare(
      `UPDATE deliveries SET attempts = attempts + 1, last_status = ?, last_error = ?,
         next_attempt_at = ?, first_attempt_at = COALESCE(first_attempt_at, ?), lease_until = NULL, worker = NULL
       WHERE id = ?`,
    ),
    dead: prepare(
      `UPDATE deliveries SET state = 'dead', attempts = attempts + 1, last_status = ?, last_error = ?,
         next_attempt_at = NULL, first_attempt_at = COALESCE(first_attempt_at, ?), lease_until = NULL, worker = NULL
       WHERE id = ?`,
    ),
    // A delivery of the event changed: it moves to the end of the change feed, and once none of its
    // deliveries is pending its IP is shortened, in the same transaction. (`+state`: look the
    // event's few deliveries up by event_seq, never scan every pending delivery by state.)
    touchEvent: prepare(
      `UPDATE events SET change_seq = @change,
         ip = CASE WHEN EXISTS (SELECT 1 FROM deliveries WHERE event_seq = @seq AND +state = 'pending') THEN ip ELSE spdt_shorten_ip(ip) END
       WHERE seq = @seq`,
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

/** One try's outcome; every outcome counts as a try and sets the max-age clock on the first. */
function applyOutcome(sql: Statements, outcome: Outcome): void {
  const id = Number(outcome.id);
  switch (outcome.state) {
    case 'delivered':
      sql.delivered.run(outcome.status, outcome.at, outcome.at, id);
      break;
    case 'pending':
      sql.retry.run(outcome.status ?? null, outcome.error ?? null, outcome.next_attempt_at, outcome.at, id);
      break;
    case 'dead':
      sql.dead.run(outcome.status ?? null, outcome.error, outcome.at, id);
      break;
  }
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
