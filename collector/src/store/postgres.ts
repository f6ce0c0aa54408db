/**
 * The PostgreSQL store (SPEC §11): the same behaviour as the SQLite store, for several collector
 * processes sharing one database. What differs is only what many nodes need:
 * - the schema is migrated under a transaction-scoped advisory lock, so nodes starting at once
 *   migrate it once;
 * - relay workers claim deliveries with `FOR UPDATE SKIP LOCKED` and a lease, so two workers never
 *   hold the same delivery and a dead worker's lease simply runs out;
 * - the change sequence (the live view's feed) is one counter row that every writing transaction
 *   updates: its row lock makes transactions commit in sequence order, so a poller that has seen
 *   change N never misses a change below N that commits later (a plain sequence cannot promise that).
 */
import pg from 'pg';
import { shortenIp } from './ip.js';
import type {
  Changes, ClaimedDelivery, ClaimedEvent, Delivery, DeliveryState, EventQuery, InsertResult, Json, NewEvent, Outcome, Store, StoredEvent,
} from './types.js';

const MIGRATIONS: string[] = [
  `CREATE TABLE spdt_counter (only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row), seq bigint NOT NULL);
   INSERT INTO spdt_counter (seq) VALUES (0);
   CREATE TABLE events (
     id bigserial PRIMARY KEY,
     key text NOT NULL,
     event_id text NOT NULL,
     action text NOT NULL,
     time bigint NOT NULL,
     received_at bigint NOT NULL,
     uid text, sid text, cid text,
     alias jsonb,
     opt_out_targeting boolean,
     transport text NOT NULL,
     action_source text NOT NULL,
     ip text NOT NULL,
     user_agent text,
     body jsonb NOT NULL,
     problems jsonb NOT NULL,
     change_seq bigint NOT NULL,
     UNIQUE (key, event_id)
   );
   CREATE INDEX events_received ON events (received_at, id);
   CREATE INDEX events_key_received ON events (key, received_at, id);
   CREATE INDEX events_change ON events (change_seq);
   CREATE TABLE deliveries (
     id bigserial PRIMARY KEY,
     event_row bigint NOT NULL REFERENCES events (id),
     connection_id text NOT NULL,
     state text NOT NULL,
     attempts integer NOT NULL DEFAULT 0,
     last_status integer,
     last_error text,
     next_attempt_at bigint,
     delivered_at bigint,
     first_attempt_at bigint,
     lease_until bigint,
     worker text
   );
   CREATE INDEX deliveries_event ON deliveries (event_row);
   CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id) WHERE state = 'pending';
   CREATE INDEX deliveries_state ON deliveries (state, id);`,
];

/** Any constant: the key of the advisory lock that serialises migrations across nodes. */
const MIGRATION_LOCK = 0x5d7c011;

// int8 columns (times, ids) come back as numbers: epoch milliseconds fit a double exactly.
const types = { getTypeParser: (oid: number, format?: any) => (oid === 20 ? Number : (pg.types.getTypeParser as any)(oid, format)) };

async function migrate(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query('CREATE TABLE IF NOT EXISTS spdt_schema (version integer NOT NULL)');
    const { rows } = await client.query('SELECT version FROM spdt_schema');
    const version: number = rows[0]?.version ?? 0;
    for (let v = version; v < MIGRATIONS.length; v++) await client.query(MIGRATIONS[v]);
    if (!rows.length) await client.query('INSERT INTO spdt_schema (version) VALUES ($1)', [MIGRATIONS.length]);
    else await client.query('UPDATE spdt_schema SET version = $1', [MIGRATIONS.length]);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/** Takes `n` numbers of the change sequence; the row lock is held until the caller commits. */
async function nextChanges(client: pg.PoolClient, n: number): Promise<number> {
  const { rows } = await client.query('UPDATE spdt_counter SET seq = seq + $1 RETURNING seq', [n]);
  return rows[0].seq - n + 1;
}

/**
 * Takes the change counter's row lock before any other row: every writing transaction takes it,
 * and taking it first in all of them keeps the lock order one. (A relay `record()` that locked an
 * event row first, then waited for the counter held by an ingest inserting that same event on
 * another node, deadlocked with it.)
 */
async function lockChanges(client: pg.PoolClient): Promise<void> {
  await client.query('SELECT seq FROM spdt_counter FOR UPDATE');
}

async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

const EVENT_COLUMNS = `e.id, e.key, e.event_id, e.action, e.time, e.received_at, e.uid, e.sid, e.cid, e.alias,
  e.opt_out_targeting, e.transport, e.action_source, e.ip, e.user_agent, e.body, e.problems`;

/** What a claim reads of each event: what the mapping needs (ClaimedEvent). */
const CLAIM_EVENT_COLUMNS = 'e.action, e.event_id, e.time, e.received_at, e.uid, e.alias, e.opt_out_targeting, e.action_source, e.ip, e.body';

function toClaimed(row: any): ClaimedDelivery {
  const event: ClaimedEvent = {
    action: row.action, event_id: row.event_id, time: row.time, received_at: row.received_at, action_source: row.action_source, ip: row.ip, body: row.body as Json,
  };
  for (const name of ['uid', 'alias', 'opt_out_targeting'] as const) if (row[name] != null) (event as any)[name] = row[name];
  const claimed: ClaimedDelivery = { id: String(row.id), connection_id: row.connection_id, attempts: row.attempts, event };
  if (row.first_attempt_at != null) claimed.first_attempt_at = row.first_attempt_at;
  return claimed;
}

function toDelivery(row: any): Delivery {
  const d: Delivery = { destination: 'spotify', connection_id: row.connection_id, state: row.state, attempts: row.attempts };
  if (row.last_status != null) d.last_status = row.last_status;
  if (row.last_error != null) d.last_error = row.last_error;
  if (row.state === 'pending' && row.next_attempt_at != null) d.next_attempt_at = row.next_attempt_at;
  if (row.delivered_at != null) d.delivered_at = row.delivered_at;
  return d;
}

function toEvent(row: any, deliveries: Delivery[]): StoredEvent {
  const e: StoredEvent = {
    key: row.key, action: row.action, event_id: row.event_id, time: row.time, received_at: row.received_at,
    transport: row.transport, action_source: row.action_source, ip: row.ip, body: row.body as Json, problems: row.problems, deliveries,
  };
  for (const name of ['uid', 'sid', 'cid', 'alias', 'opt_out_targeting', 'user_agent'] as const) if (row[name] != null) (e as any)[name] = row[name];
  return e;
}

/** The events of these rows with their deliveries, in the rows' order. */
async function withDeliveries(db: pg.Pool | pg.PoolClient, rows: any[]): Promise<StoredEvent[]> {
  if (!rows.length) return [];
  const { rows: found } = await db.query('SELECT * FROM deliveries WHERE event_row = ANY($1) ORDER BY id', [rows.map((r) => r.id)]);
  const byEvent = new Map<number, Delivery[]>();
  for (const d of found) byEvent.set(d.event_row, [...(byEvent.get(d.event_row) ?? []), toDelivery(d)]);
  return rows.map((r) => toEvent(r, byEvent.get(r.id) ?? []));
}

export interface PostgresOptions {
  /** Connections in this process's pool (default 10). */
  poolSize?: number;
}

export async function openPostgresStore(url: string, options: PostgresOptions = {}): Promise<Store> {
  const pool = new pg.Pool({ connectionString: url, max: options.poolSize ?? 10, types } as pg.PoolConfig);
  // An idle client's error (the server restarting) must not crash the process; queries report it.
  pool.on('error', () => {});
  // Nor may a checked-out client's, which the pool does not listen to (a session cut between two statements).
  pool.on('connect', (client) => client.on('error', () => {}));
  await migrate(pool);

  // Group commit: inserts that arrive while a transaction runs share the next one.
  let queue: { events: NewEvent[]; resolve(r: InsertResult): void; reject(e: unknown): void }[] = [];
  let flushing: Promise<void> | undefined;

  async function write(batch: typeof queue): Promise<void> {
    const events = batch.flatMap((call) => call.events);
    try {
      const inserted = await inTransaction(pool, async (client) => {
        const first = await nextChanges(client, events.length);
        const column = <T>(pick: (e: NewEvent, i: number) => T) => events.map(pick);
        const json = (v: unknown) => (v == null ? null : JSON.stringify(v));
        const { rows } = await client.query(
          `INSERT INTO events (key, event_id, action, time, received_at, uid, sid, cid, alias, opt_out_targeting,
             transport, action_source, ip, user_agent, body, problems, change_seq)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[],
             $8::text[], $9::jsonb[], $10::boolean[], $11::text[], $12::text[], $13::text[], $14::text[], $15::jsonb[],
             $16::jsonb[], $17::bigint[])
           ON CONFLICT (key, event_id) DO NOTHING
           RETURNING id, key, event_id`,
          [
            column((e) => e.key), column((e) => e.event_id), column((e) => e.action), column((e) => e.time),
            column((e) => e.received_at), column((e) => e.uid ?? null), column((e) => e.sid ?? null), column((e) => e.cid ?? null),
            column((e) => json(e.alias)), column((e) => e.opt_out_targeting ?? null), column((e) => e.transport),
            column((e) => e.action_source),
            // The full address only while a delivery will need it (SPEC §8).
            column((e) => (e.deliveries.some((d) => d.state === 'pending') ? e.ip : shortenIp(e.ip))),
            column((e) => e.user_agent ?? null), column((e) => json(e.body)), column((e) => json(e.problems)),
            column((_, i) => first + i),
          ],
        );
        const rowOf = new Map(rows.map((r) => [r.key + '\n' + r.event_id, r.id as number]));
        // The first occurrence of a (key, event_id) in this transaction is the one stored.
        const flags = events.map((e) => {
          const id = rowOf.get(e.key + '\n' + e.event_id);
          rowOf.delete(e.key + '\n' + e.event_id);
          return id;
        });
        const deliveries = events.flatMap((e, i) => (flags[i] == null ? [] : e.deliveries.map((d) => ({ row: flags[i]!, d, at: e.received_at }))));
        if (deliveries.length)
          await client.query(
            `INSERT INTO deliveries (event_row, connection_id, state, last_error, next_attempt_at)
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[])`,
            [
              deliveries.map((x) => x.row), deliveries.map((x) => x.d.connection_id), deliveries.map((x) => x.d.state),
              deliveries.map((x) => x.d.last_error ?? null), deliveries.map((x) => (x.d.state === 'pending' ? x.at : null)),
            ],
          );
        return flags.map((id) => id != null);
      });
      let offset = 0;
      for (const call of batch) {
        call.resolve({ inserted: inserted.slice(offset, (offset += call.events.length)) });
      }
    } catch (error) {
      for (const call of batch) call.reject(error);
    }
  }

  function flush(): Promise<void> {
    flushing ??= (async () => {
      while (queue.length) {
        const batch = queue;
        queue = [];
        await write(batch);
      }
      flushing = undefined;
    })();
    return flushing;
  }

  async function eventsOfRows(sql: string, params: unknown[]): Promise<StoredEvent[]> {
    const { rows } = await pool.query(sql, params);
    return withDeliveries(pool, rows);
  }

  /** Bumps the change sequence of these event rows (their deliveries changed). */
  async function touch(client: pg.PoolClient, rows: number[]): Promise<void> {
    const unique = [...new Set(rows)].sort((a, b) => a - b);
    if (!unique.length) return;
    const first = await nextChanges(client, unique.length);
    await client.query(
      'UPDATE events e SET change_seq = c.seq FROM unnest($1::bigint[], $2::bigint[]) AS c(id, seq) WHERE e.id = c.id',
      [unique, unique.map((_, i) => first + i)],
    );
  }

  const store: Store = {
    insert(events) {
      if (!events.length) return Promise.resolve({ inserted: [] });
      return new Promise((resolve, reject) => {
        queue.push({ events, resolve, reject });
        if (!flushing) setImmediate(flush);
      });
    },

    async events({ key, since, limit }: EventQuery) {
      const byKey = key == null ? '' : 'AND e.key = $3';
      const params = key == null ? [since ?? 0, limit] : [since ?? 0, limit, key];
      // With `since`, the oldest from there (paging forward); without, the newest, oldest first.
      if (since != null)
        return eventsOfRows(`SELECT ${EVENT_COLUMNS} FROM events e WHERE e.received_at >= $1 ${byKey} ORDER BY e.received_at, e.id LIMIT $2`, params);
      const newest = await eventsOfRows(`SELECT ${EVENT_COLUMNS} FROM events e WHERE e.received_at >= $1 ${byKey} ORDER BY e.received_at DESC, e.id DESC LIMIT $2`, params);
      return newest.reverse();
    },

    async changes(cursor, limit): Promise<Changes> {
      const { rows } = await pool.query(`SELECT ${EVENT_COLUMNS}, e.change_seq FROM events e WHERE e.change_seq > $1 ORDER BY e.change_seq LIMIT $2`, [cursor, limit]);
      return { cursor: rows.length ? rows[rows.length - 1].change_seq : cursor, events: await withDeliveries(pool, rows) };
    },

    async cursor() {
      const { rows } = await pool.query('SELECT seq FROM spdt_counter');
      return rows[0].seq;
    },

    async claim({ connection_id, limit, now, leaseMs, worker }) {
      // One statement: lease the due deliveries and read what the mapping needs of their events.
      const { rows } = await pool.query(
        `WITH due AS (
           SELECT id FROM deliveries
           WHERE state = 'pending' AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until <= $1)
             AND ($2::text IS NULL OR connection_id = $2)
           ORDER BY next_attempt_at, id
           LIMIT $3
           FOR UPDATE SKIP LOCKED)
         UPDATE deliveries d SET lease_until = $4, worker = $5 FROM due, events e
         WHERE d.id = due.id AND e.id = d.event_row
         RETURNING d.id, d.connection_id, d.attempts, d.first_attempt_at, d.next_attempt_at, ${CLAIM_EVENT_COLUMNS}`,
        [now, connection_id ?? null, limit, now + leaseMs, worker],
      );
      rows.sort((a, b) => a.next_attempt_at - b.next_attempt_at || a.id - b.id);
      return rows.map(toClaimed);
    },

    async record(outcomes: Outcome[]) {
      if (!outcomes.length) return;
      await inTransaction(pool, async (client) => {
        await lockChanges(client);
        const { rows } = await client.query(
          `UPDATE deliveries d SET
             state = o.state,
             attempts = d.attempts + 1,
             last_status = COALESCE(o.status, d.last_status),
             last_error = CASE WHEN o.state = 'delivered' THEN NULL ELSE o.error END,
             next_attempt_at = o.next_attempt_at,
             delivered_at = o.delivered_at,
             first_attempt_at = COALESCE(d.first_attempt_at, o.at),
             lease_until = NULL, worker = NULL
           FROM unnest($1::bigint[], $2::text[], $3::integer[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[])
             AS o(id, state, status, error, next_attempt_at, delivered_at, at)
           WHERE d.id = o.id AND d.state = 'pending'
           RETURNING d.event_row`,
          [
            outcomes.map((o) => o.id), outcomes.map((o) => o.state), outcomes.map((o) => ('status' in o ? o.status ?? null : null)),
            outcomes.map((o) => ('error' in o ? o.error ?? null : null)),
            outcomes.map((o) => (o.state === 'pending' ? o.next_attempt_at : null)),
            outcomes.map((o) => (o.state === 'delivered' ? o.at : null)), outcomes.map((o) => o.at),
          ],
        );
        const touched = rows.map((r) => r.event_row as number);
        // Every delivery of an event finished: the full IP is no longer needed (SPEC §8).
        const { rows: finished } = await client.query(
          `SELECT e.id, e.ip FROM events e WHERE e.id = ANY($1)
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_row = e.id AND d.state = 'pending')`,
          [touched],
        );
        if (finished.length)
          await client.query('UPDATE events e SET ip = s.ip FROM unnest($1::bigint[], $2::text[]) AS s(id, ip) WHERE e.id = s.id', [
            finished.map((r) => r.id), finished.map((r) => shortenIp(r.ip)),
          ]);
        await touch(client, touched);
      });
    },

    async replay(eventIds) {
      return inTransaction(pool, async (client) => {
        await lockChanges(client);
        const { rows } = await client.query(
          `UPDATE deliveries d SET state = 'pending', attempts = 0, next_attempt_at = $1, first_attempt_at = NULL, lease_until = NULL, worker = NULL
           WHERE d.state = 'dead' AND ($2::text[] IS NULL OR d.event_row IN (SELECT id FROM events WHERE event_id = ANY($2)))
           RETURNING d.event_row`,
          [Date.now(), eventIds ?? null],
        );
        await touch(client, rows.map((r) => r.event_row));
        return rows.length;
      });
    },

    async deliveries({ state, limit }: { state?: DeliveryState; limit: number }) {
      const { rows } = await pool.query(
        `SELECT d.*, e.event_id, e.key FROM deliveries d JOIN events e ON e.id = d.event_row
         WHERE ($1::text IS NULL OR d.state = $1) ORDER BY d.id LIMIT $2`,
        [state ?? null, limit],
      );
      return rows.map((r) => ({ ...toDelivery(r), event_id: r.event_id, key: r.key }));
    },

    async deliveryCounts() {
      const { rows } = await pool.query('SELECT connection_id, state, count(*)::int AS count FROM deliveries GROUP BY connection_id, state ORDER BY 1, 2');
      return rows;
    },

    async healthy() {
      try {
        // Answers and takes writes: a read-only database (a replica after failover) is not healthy.
        const { rows } = await pool.query("SELECT current_setting('transaction_read_only') = 'off' AS writable");
        return rows[0].writable;
      } catch {
        return false;
      }
    },

    async close() {
      await flush();
      await pool.end();
    },
  };
  return store;
}
