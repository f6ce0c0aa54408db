/**
 * What every Store must do (src/store/types.ts, SPEC §8, §9, §11), as one vitest suite that runs
 * against a real store: `storeContract('SQLite', openForTest)` in store-sqlite.test.ts, and the
 * PostgreSQL store the same way. Times are passed explicitly (`now`, `at`), so nothing waits on a clock.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NewDelivery, NewEvent, Outcome, Store, StoredEvent } from '../src/store/types.js';

export interface StoreUnderTest {
  store: Store;
  /** A second store on the same data, as the next process (or another node) would open it. */
  reopen(): Promise<Store>;
  /**
   * Makes writes fail the way a real outage does (for SQLite: another process holding the write
   * lock past the busy timeout), so insert() must reject and healthy() answer false.
   */
  breakWrites(): Promise<void>;
  /** Releases what the harness holds; the stores are closed before. */
  dispose(): Promise<void>;
}

const T0 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const MINUTE = 60_000;

let serial = 0;
function newEvent(overrides: Partial<NewEvent> = {}): NewEvent {
  serial++;
  return {
    key: 'key-1',
    action: 'purchase',
    event_id: `ev-${serial}`,
    time: T0 - 5,
    received_at: T0,
    transport: 'beacon',
    action_source: 'WEB',
    ip: '203.0.113.7',
    body: { url: 'https://shop.example/thanks', value: 79.99, currency: 'USD' },
    problems: [],
    deliveries: [],
    ...overrides,
  };
}

const pending = (connection_id = 'conn-a'): NewDelivery => ({ connection_id, state: 'pending' });
const ids = (events: StoredEvent[]) => events.map((event) => event.event_id);

export function storeContract(name: string, open: () => Promise<StoreUnderTest>): void {
  describe(`Store contract: ${name}`, () => {
    let harness: StoreUnderTest;
    let store: Store;
    const opened: Store[] = [];

    beforeEach(async () => {
      harness = await open();
      store = harness.store;
      opened.push(store);
    });

    afterEach(async () => {
      for (const each of opened.splice(0)) await each.close().catch(() => {});
      await harness.dispose();
    });

    const reopen = async () => {
      const next = await harness.reopen();
      opened.push(next);
      return next;
    };
    const all = (from: Store = store) => from.events({ limit: 100_000 });
    const only = async (eventId: string, from: Store = store) => {
      const found = (await all(from)).filter((event) => event.event_id === eventId);
      expect(found).toHaveLength(1);
      return found[0]!;
    };

    describe('insert', () => {
      it('stores an event with every field as given, leaving out the optional ones it did not have', async () => {
        const full = newEvent({
          uid: 'a'.repeat(32),
          sid: 's-1',
          cid: 'c-1',
          alias: { hashed_email: 'f'.repeat(64) },
          opt_out_targeting: false,
          user_agent: 'Mozilla/5.0',
          body: { url: 'https://shop.example/p', nested: { list: [1, 'two', null] } },
          problems: ['purchase: value is not a number, dropped'],
          deliveries: [pending('conn-a'), { connection_id: 'conn-b', state: 'skipped', last_error: 'no CUSTOM_EVENT slot' }],
        });
        const bare = newEvent({ action: 'view' });
        expect(await store.insert([full, bare])).toEqual({ inserted: [true, true] });

        const stored = await only(full.event_id);
        const { deliveries, ip, ...rest } = full;
        expect(stored).toEqual({
          ...rest,
          ip, // a delivery is pending: the full address
          deliveries: [
            { destination: 'spotify', connection_id: 'conn-a', state: 'pending', attempts: 0, next_attempt_at: full.received_at },
            { destination: 'spotify', connection_id: 'conn-b', state: 'skipped', attempts: 0, last_error: 'no CUSTOM_EVENT slot' },
          ],
        });

        const plain = await only(bare.event_id);
        expect(plain.deliveries).toEqual([]);
        for (const field of ['uid', 'sid', 'cid', 'alias', 'opt_out_targeting', 'user_agent']) expect(plain).not.toHaveProperty(field);
        expect(JSON.stringify(plain)).not.toContain('null');
      });

      it('stores each (key, event_id) once whatever transport brought it, and says per event which were new', async () => {
        const beacon = newEvent({ transport: 'beacon', deliveries: [pending()] });
        expect(await store.insert([beacon])).toEqual({ inserted: [true] });

        const sameByImage = { ...beacon, transport: 'image' as const, body: { url: 'https://other.example/' } };
        const sameByServer = { ...beacon, transport: 'server' as const, action_source: 'OFFLINE' as const };
        const otherKey = { ...beacon, key: 'key-2' };
        const fresh = newEvent();
        const result = await store.insert([sameByImage, fresh, sameByServer, otherKey, fresh]);
        expect(result).toEqual({ inserted: [false, true, false, true, false] });

        const copies = (await store.events({ key: 'key-1', limit: 100 })).filter((event) => event.event_id === beacon.event_id);
        expect(copies).toHaveLength(1);
        const stored = copies[0]!;
        expect(stored.transport).toBe('beacon');
        expect(stored.body).toEqual(beacon.body);
        expect(stored.deliveries).toHaveLength(1); // the duplicates' deliveries were not written
        expect(await store.deliveryCounts()).toEqual([{ connection_id: 'conn-a', state: 'pending', count: 2 }]);
      });

      it('gives each concurrent call its own flags, the first stored copy winning', async () => {
        const [x, y, z] = [newEvent(), newEvent(), newEvent()];
        const calls = [store.insert([x, y]), store.insert([y, z]), store.insert([]), store.insert([z, x])];
        expect(await Promise.all(calls)).toEqual([{ inserted: [true, true] }, { inserted: [false, true] }, { inserted: [] }, { inserted: [false, false] }]);
        expect(ids(await all()).sort()).toEqual([x, y, z].map((event) => event.event_id).sort());
      });

      it('commits many concurrent calls, each resolving with its events stored for the next process to see', async () => {
        const events = Array.from({ length: 200 }, () => newEvent());
        const calls = Array.from({ length: 20 }, (_, i) => store.insert(events.slice(i * 10, i * 10 + 10)));
        const seen: number[] = [];
        await Promise.all(calls.map((call, i) => call.then((result) => (expect(result.inserted).toEqual(Array(10).fill(true)), seen.push(i)))));
        expect(seen).toHaveLength(20);
        const other = await reopen();
        expect(ids(await all(other)).sort()).toEqual(ids(events as StoredEvent[]).sort());
      });

      it('rejects every call of a commit that cannot be written, and answers unhealthy', async () => {
        expect(await store.healthy()).toBe(true);
        await harness.breakWrites();
        const calls = [store.insert([newEvent()]), store.insert([newEvent(), newEvent()])];
        const results = await Promise.allSettled(calls);
        expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected']);
        expect(await store.healthy()).toBe(false);
      });
    });

    describe('events()', () => {
      // Two keys, received one millisecond apart, two sharing a millisecond.
      const received = [1, 2, 3, 3, 4, 5, 6, 7];
      const seed = async () => {
        const events = received.map((ms, i) => newEvent({ key: i % 2 ? 'key-odd' : 'key-even', received_at: T0 + ms }));
        // Stored out of order of receipt, in two calls: order comes from received_at, then storage order.
        await store.insert(events.slice(4));
        await store.insert(events.slice(0, 4));
        return events.map((event) => event.event_id);
      };

      it('without since: the newest `limit`, oldest first', async () => {
        const id = await seed();
        expect(ids(await store.events({ limit: 3 }))).toEqual([id[5], id[6], id[7]]);
        expect(ids(await store.events({ limit: 100 }))).toEqual(id);
        expect(ids(await store.events({ key: 'key-odd', limit: 2 }))).toEqual([id[5], id[7]]);
        expect(await store.events({ limit: 0 })).toEqual([]);
      });

      it('with since (inclusive, on received_at): the oldest `limit` from there, for paging forward', async () => {
        const id = await seed();
        expect(ids(await store.events({ since: T0 + 3, limit: 3 }))).toEqual([id[2], id[3], id[4]]);
        expect(ids(await store.events({ since: T0 + 3, limit: 100 }))).toEqual(id.slice(2));
        expect(ids(await store.events({ key: 'key-even', since: T0 + 2, limit: 2 }))).toEqual([id[2], id[4]]);
        expect(await store.events({ since: T0 + 8, limit: 10 })).toEqual([]);
      });
    });

    describe('changes()', () => {
      it('feeds new events, then each delivery change of an event as the event is now', async () => {
        const start = await store.cursor();
        expect(await store.changes(start, 10)).toEqual({ cursor: start, events: [] });

        const a = newEvent({ deliveries: [pending()] });
        const b = newEvent();
        await store.insert([a, b]);
        const first = await store.changes(start, 10);
        expect(ids(first.events)).toEqual([a.event_id, b.event_id]);
        expect(first.cursor).toBeGreaterThan(start);
        expect(await store.cursor()).toBe(first.cursor);

        const [claimed] = await store.claim({ limit: 1, now: T0, leaseMs: MINUTE, worker: 'w1' });
        await store.record([{ id: claimed!.id, state: 'delivered', status: 200, at: T0 + 1 }]);
        const second = await store.changes(first.cursor, 10);
        expect(ids(second.events)).toEqual([a.event_id]);
        expect(second.events[0]!.deliveries).toEqual([
          { destination: 'spotify', connection_id: 'conn-a', state: 'delivered', attempts: 1, last_status: 200, delivered_at: T0 + 1 },
        ]);
        expect(second.cursor).toBeGreaterThan(first.cursor);
        expect(await store.changes(second.cursor, 10)).toEqual({ cursor: second.cursor, events: [] });

        // From the start, each event appears once, where its latest change put it.
        expect(ids((await store.changes(start, 10)).events)).toEqual([b.event_id, a.event_id]);
      });

      it('pages with limit and a cursor that picks up where the page ended', async () => {
        const start = await store.cursor();
        const events = Array.from({ length: 5 }, () => newEvent());
        await store.insert(events);
        const pages: string[][] = [];
        let cursor = start;
        for (let page = await store.changes(cursor, 2); page.events.length > 0; page = await store.changes(cursor, 2)) {
          pages.push(ids(page.events));
          cursor = page.cursor;
        }
        expect(pages).toEqual([ids(events.slice(0, 2) as StoredEvent[]), ids(events.slice(2, 4) as StoredEvent[]), [events[4]!.event_id]]);
      });

      it('is shared by every store on the same data (another node)', async () => {
        const other = await reopen();
        const start = await other.cursor();
        const event = newEvent();
        await store.insert([event]);
        expect(ids((await other.changes(start, 10)).events)).toEqual([event.event_id]);
      });
    });

    describe('claim() and leases', () => {
      it('claims due pending deliveries oldest first, up to limit, of one connection when asked', async () => {
        const early = newEvent({ received_at: T0 - 2, deliveries: [pending('conn-a'), pending('conn-b')] });
        const late = newEvent({ received_at: T0 - 1, deliveries: [pending('conn-a')] });
        const skipped = newEvent({ received_at: T0 - 3, deliveries: [{ connection_id: 'conn-a', state: 'skipped', last_error: 'alias' }] });
        const future = newEvent({ received_at: T0 + 5, deliveries: [pending('conn-a')] });
        await store.insert([late, early, skipped, future]);

        const ofA = await store.claim({ connection_id: 'conn-a', limit: 10, now: T0, leaseMs: MINUTE, worker: 'w1' });
        expect(ofA.map((claimed) => [claimed.connection_id, claimed.event.event_id])).toEqual([
          ['conn-a', early.event_id],
          ['conn-a', late.event_id],
        ]);
        const rest = await store.claim({ limit: 1, now: T0, leaseMs: MINUTE, worker: 'w1' });
        expect(rest.map((claimed) => [claimed.connection_id, claimed.event.event_id])).toEqual([['conn-b', early.event_id]]);
        expect(await store.claim({ limit: 10, now: T0, leaseMs: MINUTE, worker: 'w1' })).toEqual([]);
        expect(await store.claim({ limit: 10, now: T0 + 5, leaseMs: MINUTE, worker: 'w1' })).toHaveLength(1); // the future one is due now
      });

      it('hands a claimed delivery to no one else before its lease ends, and to another worker after', async () => {
        const event = newEvent({ deliveries: [pending()], ip: '198.51.100.23', uid: 'device-1', alias: { hashed_email: 'a'.repeat(64) }, opt_out_targeting: true });
        await store.insert([event]);
        const [first] = await store.claim({ limit: 5, now: T0, leaseMs: MINUTE, worker: 'w1' });
        expect(first).toMatchObject({ connection_id: 'conn-a', attempts: 0 });
        expect(first).not.toHaveProperty('first_attempt_at');
        expect(first!.event.ip).toBe('198.51.100.23'); // the full address, for ip_address
        const { action, event_id, time, received_at, uid, alias, opt_out_targeting, action_source, body } = event;
        expect(first!.event).toMatchObject({ action, event_id, time, received_at, uid, alias, opt_out_targeting, action_source, body }); // what the mapping reads

        const other = await reopen(); // another worker process on the same data
        expect(await other.claim({ limit: 5, now: T0 + MINUTE - 1, leaseMs: MINUTE, worker: 'w2' })).toEqual([]);
        expect(await store.claim({ limit: 5, now: T0 + MINUTE - 1, leaseMs: MINUTE, worker: 'w1' })).toEqual([]);
        const [second] = await other.claim({ limit: 5, now: T0 + MINUTE, leaseMs: MINUTE, worker: 'w2' });
        expect(second?.id).toBe(first!.id);
      });

      it('claims nothing with limit 0 and nothing but pending deliveries', async () => {
        await store.insert([newEvent({ deliveries: [pending()] })]);
        expect(await store.claim({ limit: 0, now: T0, leaseMs: MINUTE, worker: 'w1' })).toEqual([]);
        const [claimed] = await store.claim({ limit: 1, now: T0, leaseMs: MINUTE, worker: 'w1' });
        await store.record([{ id: claimed!.id, state: 'dead', status: 400, error: 'bad event', at: T0 }]);
        expect(await store.claim({ limit: 1, now: T0 + 10 * MINUTE, leaseMs: MINUTE, worker: 'w1' })).toEqual([]);
      });
    });

    describe('record()', () => {
      const claimOne = async (now = T0) => {
        const [claimed] = await store.claim({ limit: 1, now, leaseMs: MINUTE, worker: 'w1' });
        expect(claimed).toBeDefined();
        return claimed!;
      };

      it('retries: counts the try, ends the lease, waits for next_attempt_at, keeps the first try as the clock', async () => {
        const event = newEvent({ deliveries: [pending()] });
        await store.insert([event]);
        const claimed = await claimOne();
        await store.record([{ id: claimed.id, state: 'pending', status: 503, error: 'Service Unavailable', next_attempt_at: T0 + 1000, at: T0 + 10 }]);
        expect((await only(event.event_id)).deliveries).toEqual([
          { destination: 'spotify', connection_id: 'conn-a', state: 'pending', attempts: 1, last_status: 503, last_error: 'Service Unavailable', next_attempt_at: T0 + 1000 },
        ]);
        expect(await store.claim({ limit: 1, now: T0 + 999, leaseMs: MINUTE, worker: 'w1' })).toEqual([]);
        const again = await claimOne(T0 + 1000); // the lease ended with the outcome, well before its minute
        expect(again).toMatchObject({ id: claimed.id, attempts: 1, first_attempt_at: T0 + 10 });

        await store.record([{ id: again.id, state: 'pending', error: 'timeout after 10 s', next_attempt_at: T0 + 3000, at: T0 + 1010 }]);
        const third = await claimOne(T0 + 3000);
        expect(third).toMatchObject({ attempts: 2, first_attempt_at: T0 + 10 });
        expect((await only(event.event_id)).deliveries[0]).toMatchObject({ attempts: 2, last_error: 'timeout after 10 s', next_attempt_at: T0 + 3000 });
      });

      it('delivers and gives up, and ignores an outcome for a delivery that has already ended', async () => {
        const ok = newEvent({ deliveries: [pending()] });
        const bad = newEvent({ deliveries: [pending()] });
        await store.insert([ok, bad]);
        const claims = await store.claim({ limit: 2, now: T0, leaseMs: MINUTE, worker: 'w1' });
        const idOf = (event: NewEvent) => claims.find((claimed) => claimed.event.event_id === event.event_id)!.id;
        const outcomes: Outcome[] = [
          { id: idOf(ok), state: 'delivered', status: 200, at: T0 + 20 },
          { id: idOf(bad), state: 'dead', status: 400, error: '{"error":"invalid event_name"}', at: T0 + 20 },
        ];
        await store.record(outcomes);
        expect((await only(ok.event_id)).deliveries).toEqual([
          { destination: 'spotify', connection_id: 'conn-a', state: 'delivered', attempts: 1, last_status: 200, delivered_at: T0 + 20 },
        ]);
        expect((await only(bad.event_id)).deliveries).toEqual([
          { destination: 'spotify', connection_id: 'conn-a', state: 'dead', attempts: 1, last_status: 400, last_error: '{"error":"invalid event_name"}' },
        ]);

        const cursor = await store.cursor();
        await store.record([{ id: idOf(ok), state: 'dead', error: 'late worker', at: T0 + 30 }]);
        expect((await only(ok.event_id)).deliveries[0]).toMatchObject({ state: 'delivered', attempts: 1 });
        expect((await store.changes(cursor, 10)).events).toEqual([]);
      });

      it('lists deliveries by state with their event, and counts them by connection and state', async () => {
        const a = newEvent({ key: 'key-a', deliveries: [pending('conn-a'), pending('conn-b')] });
        const b = newEvent({ key: 'key-b', deliveries: [pending('conn-a'), { connection_id: 'conn-b', state: 'skipped', last_error: 'not relayed' }] });
        await store.insert([a, b]);
        const claims = await store.claim({ limit: 10, now: T0, leaseMs: MINUTE, worker: 'w1' });
        const find = (event: NewEvent, connection: string) => claims.find((c) => c.event.event_id === event.event_id && c.connection_id === connection)!.id;
        await store.record([
          { id: find(a, 'conn-a'), state: 'dead', status: 422, error: 'refused', at: T0 + 1 },
          { id: find(b, 'conn-a'), state: 'dead', status: 422, error: 'refused', at: T0 + 2 },
          { id: find(a, 'conn-b'), state: 'delivered', status: 200, at: T0 + 3 },
        ]);

        const dead = await store.deliveries({ state: 'dead', limit: 10 });
        expect(dead).toEqual([
          { destination: 'spotify', connection_id: 'conn-a', state: 'dead', attempts: 1, last_status: 422, last_error: 'refused', event_id: a.event_id, key: 'key-a' },
          { destination: 'spotify', connection_id: 'conn-a', state: 'dead', attempts: 1, last_status: 422, last_error: 'refused', event_id: b.event_id, key: 'key-b' },
        ]);
        expect(await store.deliveries({ state: 'dead', limit: 1 })).toEqual(dead.slice(0, 1));
        expect(await store.deliveries({ state: 'pending', limit: 10 })).toEqual([]);
        expect((await store.deliveries({ limit: 10 })).map((d) => d.state).sort()).toEqual(['dead', 'dead', 'delivered', 'skipped']);

        const counts = (await store.deliveryCounts()).filter((row) => row.count > 0);
        expect(counts).toEqual([
          { connection_id: 'conn-a', state: 'dead', count: 2 },
          { connection_id: 'conn-b', state: 'delivered', count: 1 },
          { connection_id: 'conn-b', state: 'skipped', count: 1 },
        ]);
      });
    });

    describe('IP shortening', () => {
      it('stores the short address at once when no delivery is pending', async () => {
        const none = newEvent({ ip: '203.0.113.7' });
        const skippedOnly = newEvent({ ip: '2001:db8:1:2::7', deliveries: [{ connection_id: 'conn-a', state: 'skipped', last_error: 'x' }] });
        const mapped = newEvent({ ip: '::ffff:198.51.100.9' });
        await store.insert([none, skippedOnly, mapped]);
        expect((await only(none.event_id)).ip).toBe('203.0.113.0');
        expect((await only(skippedOnly.event_id)).ip).toBe('2001:db8:1::');
        expect((await only(mapped.event_id)).ip).toBe('198.51.100.0');
      });

      it('keeps the full address until the last pending delivery ends, then shortens it in that transaction', async () => {
        const event = newEvent({ ip: '2001:db8:abcd:12::1', deliveries: [pending('conn-a'), pending('conn-b')] });
        await store.insert([event]);
        const claims = await store.claim({ limit: 2, now: T0, leaseMs: MINUTE, worker: 'w1' });
        const [a, b] = ['conn-a', 'conn-b'].map((connection) => claims.find((c) => c.connection_id === connection)!);

        await store.record([{ id: a!.id, state: 'pending', status: 500, error: 'oops', next_attempt_at: T0 + 1, at: T0 }]);
        expect((await only(event.event_id)).ip).toBe('2001:db8:abcd:12::1');
        await store.record([{ id: b!.id, state: 'delivered', status: 200, at: T0 }]);
        expect((await only(event.event_id)).ip).toBe('2001:db8:abcd:12::1'); // conn-a still needs it

        const [retry] = await store.claim({ limit: 1, now: T0 + 1, leaseMs: MINUTE, worker: 'w1' });
        expect(retry!.event.ip).toBe('2001:db8:abcd:12::1');
        const cursor = await store.cursor();
        await store.record([{ id: retry!.id, state: 'dead', error: 'too old', at: T0 + 2 }]);
        const [changed] = (await store.changes(cursor, 10)).events;
        expect(changed!.ip).toBe('2001:db8:abcd::');
        expect((await only(event.event_id)).ip).toBe('2001:db8:abcd::');
      });
    });

    describe('replay()', () => {
      const killAll = async (events: NewEvent[]) => {
        await store.insert(events);
        const claims = await store.claim({ limit: 100, now: T0, leaseMs: MINUTE, worker: 'w1' });
        await store.record(claims.map((c): Outcome => ({ id: c.id, state: 'dead', status: 500, error: 'gave up', at: T0 + 1 })));
        return claims;
      };

      it('puts dead deliveries back to pending, due now, with a fresh clock and attempts from 0', async () => {
        const event = newEvent({ ip: '203.0.113.200', deliveries: [pending()] });
        await killAll([event]);
        const cursor = await store.cursor();
        const before = Date.now();
        expect(await store.replay()).toBe(1);

        const [changed] = (await store.changes(cursor, 10)).events;
        expect(changed!.event_id).toBe(event.event_id);
        const delivery = changed!.deliveries[0]!;
        expect(delivery).toMatchObject({ state: 'pending', attempts: 0 });
        expect(delivery.next_attempt_at).toBeGreaterThanOrEqual(before);
        expect(delivery.next_attempt_at).toBeLessThanOrEqual(Date.now());

        const [claimed] = await store.claim({ limit: 1, now: Date.now(), leaseMs: MINUTE, worker: 'w1' });
        expect(claimed).toMatchObject({ attempts: 0 });
        expect(claimed).not.toHaveProperty('first_attempt_at');
        expect(claimed!.event.ip).toBe('203.0.113.0'); // shortened when it died; sent without ip_address
        expect(await store.deliveryCounts()).toContainEqual({ connection_id: 'conn-a', state: 'pending', count: 1 });
        expect(await store.replay()).toBe(0);
      });

      it('replays only the named events when given ids', async () => {
        const [a, b, c] = [newEvent({ deliveries: [pending()] }), newEvent({ deliveries: [pending()] }), newEvent({ deliveries: [pending()] })];
        await killAll([a, b, c]);
        expect(await store.replay([a.event_id, c.event_id, 'unknown'])).toBe(2);
        const dead = await store.deliveries({ state: 'dead', limit: 10 });
        expect(dead.map((d) => d.event_id)).toEqual([b.event_id]);
        expect(await store.replay([])).toBe(0);
      });
    });

    describe('healthy() and close()', () => {
      it('commits inserts still queued when closed, then answers unhealthy and rejects writes', async () => {
        const event = newEvent();
        const queued = store.insert([event]);
        await store.close();
        expect(await queued).toEqual({ inserted: [true] });
        expect(await store.healthy()).toBe(false);
        await expect(store.insert([newEvent()])).rejects.toThrow();
        const next = await reopen();
        expect(ids(await all(next))).toEqual([event.event_id]);
      });
    });
  });
}
