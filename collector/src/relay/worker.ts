/**
 * The relay worker (SPEC §9): claims due deliveries of each connection from the store under a lease,
 * sends them to Spotify in one request per batch, and records what became of each. The store is the
 * queue: nothing is held in memory between a claim and its record, so a crash loses nothing (a
 * claimed batch is claimed again once its lease ends).
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import type { CollectorContext, Connection } from '../context.js';
import type { ClaimedDelivery, Outcome } from '../store/types.js';
import { postEvents } from './client.js';
import { toSpotifyEvent, type SpotifyEvent } from './mapping.js';
import { relayMetrics, statusClass } from './metrics.js';
import {
  MAX_DELAY_MS,
  TIMEOUT_MS,
  answerText,
  backoff,
  mustSplit,
  nextTry,
  refusalText,
  retryAfterMs,
  verdict,
  type Answer,
  type Verdict,
} from './outcome.js';

export interface RelayOptions {
  /** No answer within this is no answer (default 10 s). */
  timeoutMs?: number;
  /** How long a claim is ours (default `SPDT_RELAY_LEASE_MS`, else 60 s; at most 60 s, SPEC §11). */
  leaseMs?: number;
  /** Batches in flight per connection (default 2: one is sent while the next is claimed). */
  concurrency?: number;
  /** How often to look for due retries and other nodes' events when nothing wakes us. */
  pollMs?: number;
  /** How long stop() waits for requests in flight before cutting them short (default 10 s). */
  stopGraceMs?: number;
  random?: () => number;
  worker?: string;
}

export interface Relay {
  stop(): Promise<void>;
}

/** Events of one split request sent alone at once, at most. */
const SPLIT_CONCURRENCY = 10;
const MAX_LEASE_MS = 60_000;

interface Sendable {
  delivery: ClaimedDelivery;
  event: SpotifyEvent;
}

export function startRelay(ctx: CollectorContext, options: RelayOptions = {}): Relay {
  const { connections, relay: settings } = ctx.config;
  const timeoutMs = options.timeoutMs ?? TIMEOUT_MS;
  const leaseMs = Math.min(options.leaseMs ?? settings.leaseMs ?? MAX_LEASE_MS, MAX_LEASE_MS);
  const pollMs = options.pollMs ?? Math.min(1000, Math.max(50, settings.retryMs));
  const random = options.random ?? Math.random;
  const worker = options.worker ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const maxAgeMs = settings.maxAgeSeconds * 1000;
  const metrics = relayMetrics(ctx.registry);

  let running = true;
  const cut = new AbortController();
  // Every request in flight listens to it (two lanes per connection, ten at once in a split).
  setMaxListeners(0, cut.signal);
  let generation = 0;
  const sleepers = new Set<() => void>();
  const wakeAll = () => {
    generation++;
    for (const wake of [...sleepers]) wake();
  };
  ctx.changes.on('change', wakeAll);

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      sleepers.add(done);
    });

  /**
   * One batch in flight at a time; the store's work overlaps it: the next batch is claimed while
   * this one is out, and its outcomes are recorded while the next one is out.
   */
  async function lane(connection: Connection): Promise<void> {
    const connection_id = connection.connection_id;
    let storeDown = false;
    const claim = async () => {
      try {
        const claimed = await ctx.store.claim({ connection_id, limit: settings.batch, now: Date.now(), leaseMs, worker });
        storeDown = false;
        return claimed;
      } catch (error) {
        // One line when the store stops answering, not one per poll.
        if (!storeDown) ctx.log.warn('relay: cannot claim deliveries, retrying', { connection_id, error: (error as Error)?.message });
        storeDown = true;
        return [];
      }
    };
    let recording = Promise.resolve();
    let next: { claimed: Promise<ClaimedDelivery[]>; seen: number } | undefined;
    // A batch claimed ahead is still sent while stopping: its lease is ended by its record.
    while (running || next) {
      const { claimed: claiming, seen } = next ?? { seen: generation, claimed: claim() };
      next = undefined;
      const claimed = await claiming;
      if (!claimed.length) {
        // Nothing due: wait for a change on this node, or poll for due retries and other nodes' events.
        if (running && generation == seen) await sleep(pollMs);
        continue;
      }
      if (running) next = { seen: generation, claimed: claim() };
      const outcomes = await deliver(connection, claimed);
      recording = recording.then(() => record(connection_id, outcomes));
    }
    await recording;
  }

  async function deliver(connection: Connection, claimed: ClaimedDelivery[]): Promise<Outcome[]> {
    const claimedAt = Date.now();
    const outcomes: Outcome[] = [];
    const batch: Sendable[] = [];
    for (const delivery of claimed) {
      const mapped = toSpotifyEvent(delivery.event, connection);
      // Planned when stored, unsendable now: a slot removed from the config, or no identifier left after a replay.
      if ('skip' in mapped) outcomes.push({ id: delivery.id, state: 'dead', error: mapped.skip, at: claimedAt });
      else batch.push({ delivery, event: mapped.event });
    }
    if (batch.length) outcomes.push(...(await send(connection, batch, claimedAt)));
    countOutcomes(connection.connection_id, outcomes);
    return outcomes;
  }

  async function record(connection_id: string, outcomes: Outcome[]): Promise<void> {
    try {
      await ctx.store.record(outcomes);
    } catch (error) {
      // The lease ends and the batch is claimed again: Spotify deduplicates the repeat by event_id.
      ctx.log.error('relay: cannot record outcomes', { connection_id, deliveries: outcomes.length, error: (error as Error)?.message });
    }
    ctx.changes.emit('change');
  }

  async function send(connection: Connection, batch: Sendable[], claimedAt: number): Promise<Outcome[]> {
    const connection_id = connection.connection_id;
    const answer = await request(connection, batch.map((b) => b.event));
    const judged = verdict(answer);
    if (judged == 'token') metrics.failing.set({ connection_id }, 1);
    else if (judged != 'retry') metrics.failing.set({ connection_id }, 0);
    if (judged != 'delivered') {
      ctx.log.warn(`relay: ${judged == 'token' ? 'token refused by Spotify, deliveries wait' : judged == 'refused' ? 'request refused by Spotify' : 'request failed, will retry'}`, {
        connection_id,
        status: 'status' in answer ? answer.status : statusClass(answer),
        event_count: batch.length,
      });
    }
    if (mustSplit(judged, batch.length)) {
      // One bad event must not sink its neighbours: each is sent alone, once, while the lease lasts.
      return (await inParallel(batch, SPLIT_CONCURRENCY, (one) =>
        Date.now() - claimedAt < leaseMs - timeoutMs - 1000 ? send(connection, [one], claimedAt) : Promise.resolve([retrySoon(one.delivery)]),
      )).flat();
    }
    const at = Date.now();
    return batch.map(({ delivery }) => judge(connection, delivery, answer, judged, at));
  }

  function judge(connection: Connection, delivery: ClaimedDelivery, answer: Answer, judged: Verdict, at: number): Outcome {
    const id = delivery.id;
    const status = 'status' in answer ? { status: answer.status } : {};
    if (judged == 'delivered' && 'status' in answer) return { id, state: 'delivered', status: answer.status, at };
    if (judged == 'refused' && 'status' in answer) return { id, state: 'dead', status: answer.status, error: refusalText(answer, connection.token), at };
    const error = answerText(answer, connection.token);
    // A refused token says nothing about the events: they wait at the longest delay, never given up early.
    const wait = judged == 'token' ? MAX_DELAY_MS : backoff(delivery.attempts, settings.retryMs, random());
    const notBefore = 'status' in answer ? retryAfterMs(answer.retryAfter, at) : undefined;
    const next = nextTry({ now: at, firstAttemptAt: delivery.first_attempt_at, maxAgeMs }, wait, notBefore);
    if (next.state == 'dead') return { id, state: 'dead', ...status, error: `given up after SPDT_RELAY_MAX_AGE (${settings.maxAgeSeconds} s); last: ${error}`, at };
    return { id, state: 'pending', ...status, error, next_attempt_at: next.next_attempt_at, at };
  }

  function countOutcomes(connection_id: string, outcomes: Outcome[]): void {
    const counts = { delivered: 0, retry: 0, dead: 0 };
    for (const outcome of outcomes) counts[outcome.state == 'pending' ? 'retry' : outcome.state]++;
    for (const [outcome, n] of Object.entries(counts)) if (n) metrics.outcomes.inc({ connection_id, outcome }, n);
  }

  function retrySoon(delivery: ClaimedDelivery): Outcome {
    const at = Date.now();
    return { id: delivery.id, state: 'pending', error: 'not yet sent alone (its batch was refused; the lease ran short)', next_attempt_at: at + settings.retryMs, at };
  }

  async function request(connection: Connection, events: SpotifyEvent[]): Promise<Answer> {
    const started = process.hrtime.bigint();
    const answer = await postEvents(connection, events, timeoutMs, cut.signal);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    metrics.latency.observe({ connection_id: connection.connection_id }, seconds);
    metrics.requests.inc({ connection_id: connection.connection_id, status_class: statusClass(answer) });
    return answer;
  }

  const concurrency = Math.max(1, options.concurrency ?? 2);
  const lanes = connections.flatMap((connection) => {
    metrics.failing.set({ connection_id: connection.connection_id }, 0);
    return Array.from({ length: concurrency }, () =>
      lane(connection).catch((error) => ctx.log.error('relay: worker stopped on an error', { connection_id: connection.connection_id, error: (error as Error)?.message })),
    );
  });
  const done = Promise.all(lanes);

  return {
    async stop() {
      if (!running) return done.then(() => undefined);
      running = false;
      wakeAll();
      ctx.changes.off('change', wakeAll);
      let grace: NodeJS.Timeout | undefined;
      const graceOver = new Promise<'late'>((resolve) => (grace = setTimeout(() => resolve('late'), options.stopGraceMs ?? TIMEOUT_MS)));
      // Requests still in flight after the grace are cut short and recorded as retries.
      if ((await Promise.race([done, graceOver])) == 'late') cut.abort();
      clearTimeout(grace);
      await done;
    },
  };
}

/** Runs `task` over `items`, at most `limit` at once, results in order. */
async function inParallel<T, R>(items: T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const runner = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, runner));
  return results;
}
