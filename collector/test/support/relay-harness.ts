/**
 * The relay against the real SQLite store in a temporary directory and the strict stand-in for
 * Spotify, with a logger that keeps every line (so tests can search it for the token).
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { vi } from 'vitest';
import type { CollectorContext, Config, Connection, Logger } from '../../src/context.js';
import { planDeliveries } from '../../src/relay/plan.js';
import { startRelay, type Relay, type RelayOptions } from '../../src/relay/worker.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Delivery, NewEvent } from '../../src/store/types.js';
import { startStandin, type Standin } from './spotify-standin.js';

export const UID = 'e80cb68aa08941c5937911daee4144ea';

export interface Harness {
  dir: string;
  ctx: CollectorContext;
  standin: Standin;
  connection: Connection;
  logs: string[];
  /** A NewEvent with its deliveries planned on the harness's connections. */
  event(id: string, over?: Partial<NewEvent>): NewEvent;
  /** Stores the events and signals the change, as ingest does. */
  add(...events: NewEvent[]): Promise<void>;
  start(options?: RelayOptions): Relay;
  /** The deliveries of one event (of the first connection). */
  delivery(eventId: string): Promise<Delivery>;
  /** Waits until the event's delivery satisfies the predicate. */
  until(eventId: string, predicate: (d: Delivery) => boolean, timeoutMs?: number): Promise<Delivery>;
  close(): Promise<void>;
}

export async function relayHarness(options: { relay?: Partial<Config['relay']>; connection?: Partial<Connection> } = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'spdt-relay-'));
  const standin = await startStandin({ connectionId: 'conn-1' });
  const connection: Connection = { connection_id: standin.connectionId, token: standin.token, custom: { quiz_done: 'CUSTOM_EVENT_2' }, url: standin.url, ...options.connection };
  const config: Config = {
    port: 0,
    host: '127.0.0.1',
    dataDir: dir,
    trustProxy: false,
    cookieDays: 365,
    role: 'all',
    connections: [connection],
    relay: { batch: 50, retryMs: 20, maxAgeSeconds: 86_400, ...options.relay },
  };
  const logs: string[] = [];
  const line = (level: string) => (msg: string, fields?: Record<string, unknown>) => void logs.push(JSON.stringify({ level, msg, ...fields }));
  const log: Logger = { info: line('info'), warn: line('warn'), error: line('error') };
  const store = openSqliteStore(dir);
  const ctx: CollectorContext = { config, store, registry: new Registry(), log, changes: new EventEmitter() };
  const relays: Relay[] = [];

  const harness: Harness = {
    dir,
    ctx,
    standin,
    connection,
    logs,
    event(id, over = {}) {
      const now = Date.now();
      const event: NewEvent = {
        key: 'k1',
        action: 'purchase',
        event_id: id,
        time: now - 500,
        received_at: now,
        uid: UID,
        sid: '0f6c9a3d2b1e4c5f8a7b6c5d4e3f2a1b',
        transport: 'beacon',
        action_source: 'WEB',
        ip: '203.0.113.7',
        user_agent: 'Mozilla/5.0 (test)',
        body: { url: 'https://shop.example/thanks', value: 79.99, currency: 'USD', order_id: 'SP-' + id },
        problems: [],
        deliveries: [],
        ...over,
      };
      event.deliveries = planDeliveries(event, config.connections);
      return event;
    },
    async add(...events) {
      await store.insert(events);
      ctx.changes.emit('change');
    },
    start(relayOptions) {
      const relay = startRelay(ctx, relayOptions);
      relays.push(relay);
      return relay;
    },
    async delivery(eventId) {
      const [event] = (await store.events({ limit: 100_000 })).filter((e) => e.event_id == eventId);
      if (!event) throw new Error(`event ${eventId} not stored`);
      return event.deliveries[0];
    },
    until(eventId, predicate, timeoutMs = 20_000) {
      return vi.waitFor(
        async () => {
          const delivery = await harness.delivery(eventId);
          if (!delivery || !predicate(delivery)) throw new Error(`delivery of ${eventId} not there yet: ${JSON.stringify(delivery)}`);
          return delivery;
        },
        { timeout: timeoutMs, interval: 20 },
      );
    },
    async close() {
      await Promise.all(relays.map((r) => r.stop()));
      await standin.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return harness;
}
