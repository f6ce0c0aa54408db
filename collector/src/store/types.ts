/**
 * The one storage interface (SPEC §8, §9, §11). SQLite (`sqlite.ts`) and PostgreSQL (`postgres.ts`,
 * the scale issue) implement it with the same behaviour, and one test suite runs against both.
 * The store is the source of truth and the relay's job queue at once (as RudderStack keeps its jobs
 * in PostgreSQL): an event and its deliveries are written in one transaction, and nothing of the
 * store is kept in process memory.
 */

export type Transport = 'beacon' | 'image' | 'noscript' | 'server';
export type ActionSource = 'WEB' | 'APP' | 'OFFLINE';
export type DeliveryState = 'pending' | 'delivered' | 'dead' | 'skipped';
export type Json = Record<string, unknown>;

/** An event as ingest hands it to the store: validated, normalised, never carrying raw PII. */
export interface NewEvent {
  key: string;
  action: string;
  event_id: string;
  /** The event's own time, epoch ms. */
  time: number;
  /** When the collector received it, epoch ms. */
  received_at: number;
  uid?: string;
  sid?: string;
  cid?: string;
  /** Hashed identifiers and ids known for the visitor (the batch item's alias). */
  alias?: Record<string, string>;
  opt_out_targeting?: boolean;
  transport: Transport;
  action_source: ActionSource;
  /** The full client IP; the store keeps it only while a delivery of the event still needs it. */
  ip: string;
  user_agent?: string;
  body: Json;
  /** What validation had to drop or change: the tag's own warning texts. */
  problems: string[];
  /** One per connection that relays the event's key, written in the event's transaction. */
  deliveries: NewDelivery[];
}

export interface NewDelivery {
  connection_id: string;
  /** `skipped` (with the reason in `last_error`) for an event the connection cannot take. */
  state: 'pending' | 'skipped';
  last_error?: string;
}

/** A delivery as the admin API shows it (SPEC §8). Times are epoch ms. */
export interface Delivery {
  destination: 'spotify';
  connection_id: string;
  state: DeliveryState;
  attempts: number;
  last_status?: number;
  last_error?: string;
  next_attempt_at?: number;
  delivered_at?: number;
}

/** A stored event as `/api/events` and `/api/stream` show it. */
export interface StoredEvent extends Omit<NewEvent, 'deliveries' | 'ip'> {
  /** Shortened (IPv4 /24, IPv6 /48) once no delivery needs the full address. */
  ip: string;
  deliveries: Delivery[];
}

export interface InsertResult {
  /** Per input event, in order: true when it was new, false when (key, event_id) was already stored. */
  inserted: boolean[];
}

/** What the relay's mapping reads of a stored event (SPEC §9): all a claim loads. */
export type ClaimedEvent = Pick<
  StoredEvent,
  'action' | 'event_id' | 'time' | 'received_at' | 'uid' | 'alias' | 'opt_out_targeting' | 'action_source' | 'ip' | 'body'
>;

/** A pending delivery claimed by a relay worker, with what the mapping needs. */
export interface ClaimedDelivery {
  /** Opaque id of the delivery row, passed back in its outcome. */
  id: string;
  connection_id: string;
  attempts: number;
  /** When the delivery was first tried (its SPDT_RELAY_MAX_AGE clock); undefined before the first try. */
  first_attempt_at?: number;
  /** The event as stored, with the full IP while the delivery is pending (or the short one after a replay). */
  event: ClaimedEvent;
}

export type Outcome =
  | { id: string; state: 'delivered'; status: number; at: number }
  | { id: string; state: 'pending'; status?: number; error?: string; next_attempt_at: number; at: number }
  | { id: string; state: 'dead'; status?: number; error: string; at: number };

export interface EventQuery {
  key?: string;
  /** Epoch ms, compared with received_at, inclusive: the oldest `limit` from there. Absent: the newest `limit`. */
  since?: number;
  limit: number;
}

export interface Changes {
  /** Pass back to get what changed after these. */
  cursor: number;
  /** Events stored, or whose deliveries changed, after the given cursor: each as it is now, oldest change first. */
  events: StoredEvent[];
}

export interface Store {
  /**
   * Stores each event that is new by (key, event_id), with its deliveries, in one transaction.
   * Resolves only after the commit: an answered request survives a crash right after. Concurrent
   * calls may share one transaction (group commit), but none resolves before its own commit.
   * Rejects when the store cannot be written (the edge answers 503).
   */
  insert(events: NewEvent[]): Promise<InsertResult>;
  /** Stored events, oldest first (SPEC §8 `/api/events`). */
  events(query: EventQuery): Promise<StoredEvent[]>;
  /** The live view's feed: stored events and delivery changes after `cursor`, from every node. */
  changes(cursor: number, limit: number): Promise<Changes>;
  /** The cursor of the newest change, where a new stream starts. */
  cursor(): Promise<number>;
  /**
   * Claims up to `limit` pending deliveries due at `now` (of one connection when given), oldest
   * first, under a lease of `leaseMs`: no other worker claims them until the lease ends or an
   * outcome is recorded.
   */
  claim(options: { connection_id?: string; limit: number; now: number; leaseMs: number; worker: string }): Promise<ClaimedDelivery[]>;
  /**
   * Records what became of claimed deliveries, ends their leases, and shortens the IP of each event
   * whose deliveries have all finished.
   */
  record(outcomes: Outcome[]): Promise<void>;
  /** Dead deliveries (all, or of these event ids) back to pending with a fresh clock; how many. */
  replay(eventIds?: string[]): Promise<number>;
  /** Deliveries in a state with their events (SPEC §8 `/api/deliveries?state=`), oldest first. */
  deliveries(query: { state?: DeliveryState; limit: number }): Promise<(Delivery & { event_id: string; key: string })[]>;
  /** Counts for `/metrics`: deliveries by connection and state. */
  deliveryCounts(): Promise<{ connection_id: string; state: DeliveryState; count: number }[]>;
  /** True while the store answers (`/healthz`). */
  healthy(): Promise<boolean>;
  close(): Promise<void>;
}
