/**
 * The embedded store (SPEC §8): one SQLite file, `spdt.sqlite` in the data directory, in WAL mode.
 *
 * What keeps ingest fast is group commit: the `insert()` calls of one event-loop turn, and those
 * that arrive while a commit runs, are written in one transaction (one WAL append, one commit),
 * and each call resolves only after that commit. better-sqlite3 is synchronous: the transactions
 * run on this thread by default, or on a worker thread (`thread: 'worker'`, `sqlite-worker.ts`,
 * where it is built) that leaves the event loop to HTTP. On the 2-core machine we measure on, the
 * same thread won: ingest 0.43 of the bare server against 0.27, relay 0.32 against 0.21 (the
 * handoff costs more CPU than it frees; docs/performance.md). With spare cores, try the worker.
 * Either way the work is `sqlite-core.ts`'s, and nothing of the store is kept in memory.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { encodeEvent, openSqliteCore, type CoreSettings, type EncodedEvent, type SqliteCore } from './sqlite-core.js';
import type { Operation, Reply } from './sqlite-worker.js';
import type { Changes, ClaimedDelivery, DeliveryState, EventQuery, InsertResult, NewEvent, Outcome, Store, StoredEvent } from './types.js';

export interface SqliteStoreOptions {
  /**
   * `NORMAL` (default): in WAL mode a commit is in the operating system's hands once `insert()`
   * resolves, so it survives the collector's own crash or SIGKILL, but a power loss or kernel panic
   * can lose the last commits. `FULL`: an fsync per commit (per group), which survives those too.
   */
  synchronous?: 'NORMAL' | 'FULL';
  /** The database file, relative to the data directory (default `spdt.sqlite`). */
  file?: string;
  /**
   * How long a write waits for a lock held by another connection (a backup, the sqlite3 shell)
   * before it fails. It waits synchronously on the store's thread: keep it short. Default 5000.
   */
  busyTimeoutMs?: number;
  /** `main` (default) or `worker` (where built): the thread that runs the transactions. */
  thread?: 'worker' | 'main';
}

export const DEFAULT_FILE = 'spdt.sqlite';
const WORKER = new URL('./sqlite-worker.js', import.meta.url);

export function openSqliteStore(dataDir: string, options: SqliteStoreOptions = {}): Store {
  mkdirSync(dataDir, { recursive: true });
  const file = resolve(dataDir, options.file ?? DEFAULT_FILE);
  const settings: CoreSettings = { synchronous: options.synchronous ?? 'NORMAL', busyTimeoutMs: options.busyTimeoutMs ?? 5000 };
  const core = openSqliteCore(file, settings); // creates and migrates here: a bad file fails the start
  const thread = options.thread == 'worker' && existsSync(fileURLToPath(WORKER)) ? 'worker' : 'main';
  if (thread === 'main') return new SqliteStore(new SameThread(core));
  core.close();
  return new SqliteStore(new WorkerThread(file, settings));
}

/** Runs the core's operations, on this thread or another. */
interface Engine {
  run(op: Operation, ...args: unknown[]): Promise<unknown>;
  stop(): Promise<void>;
}

class SameThread implements Engine {
  constructor(private readonly core: SqliteCore) {}

  run(op: Operation, ...args: unknown[]): Promise<unknown> {
    try {
      return Promise.resolve(Reflect.apply(this.core[op], this.core, args));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async stop(): Promise<void> {
    this.core.close();
  }
}

class WorkerThread implements Engine {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve(value: unknown): void; reject(error: unknown): void }>();
  private serial = 0;
  private failure: Error | undefined;

  constructor(file: string, settings: CoreSettings) {
    this.worker = new Worker(WORKER, { workerData: { file, settings } });
    this.worker.unref(); // an idle store does not keep the process alive; one with work in flight does
    this.worker.on('message', (reply: Reply) => {
      const call = this.waiting.get(reply.id)!;
      this.waiting.delete(reply.id);
      if (this.waiting.size === 0) this.worker.unref();
      if ('error' in reply) call.reject(Object.assign(new Error(reply.error.message), { code: reply.error.code }));
      else call.resolve(reply.value);
    });
    this.worker.on('error', (error) => this.fail(error));
    this.worker.on('exit', (code) => this.fail(new Error(`the store's thread ended (exit code ${code})`)));
  }

  run(op: Operation, ...args: unknown[]): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const id = this.serial++;
      this.waiting.set(id, { resolve, reject });
      if (this.waiting.size === 1) this.worker.ref();
      this.worker.postMessage({ id, op, args });
    });
  }

  async stop(): Promise<void> {
    await this.run('close').catch(() => {});
    await this.worker.terminate();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const call of this.waiting.values()) call.reject(error);
    this.waiting.clear();
  }
}

interface QueuedInsert {
  events: EncodedEvent[];
  resolve(result: InsertResult): void;
  reject(error: unknown): void;
}

class SqliteStore implements Store {
  private queue: QueuedInsert[] = [];
  private flushing: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly engine: Engine) {}

  insert(events: NewEvent[]): Promise<InsertResult> {
    if (this.closed) return Promise.reject(new Error('the store is closed'));
    let encoded: EncodedEvent[];
    try {
      encoded = events.map(encodeEvent); // here, so only strings and numbers cross to the store's thread
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ events: encoded, resolve, reject });
      this.flushing ??= new Promise<void>((start) => setImmediate(start)).then(() => this.flush());
    });
  }

  /** Commits the queue as one transaction, again and again while calls arrived during the last commit. */
  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      try {
        const inserted = (await this.engine.run('insertBatch', batch.map((queued) => queued.events))) as boolean[][];
        batch.forEach((queued, index) => queued.resolve({ inserted: inserted[index]! }));
      } catch (error) {
        for (const queued of batch) queued.reject(error); // the edge answers 503
      }
    }
    this.flushing = undefined;
  }

  events(query: EventQuery): Promise<StoredEvent[]> {
    return this.run('events', query) as Promise<StoredEvent[]>;
  }

  changes(cursor: number, limit: number): Promise<Changes> {
    return this.run('changes', cursor, limit) as Promise<Changes>;
  }

  cursor(): Promise<number> {
    return this.run('cursor') as Promise<number>;
  }

  claim(options: Parameters<Store['claim']>[0]): Promise<ClaimedDelivery[]> {
    return this.run('claim', options) as Promise<ClaimedDelivery[]>;
  }

  record(outcomes: Outcome[]): Promise<void> {
    return this.run('record', outcomes) as Promise<void>;
  }

  /** See SqliteCore.replay: attempts start again from 0 and the max-age clock at the next try. */
  replay(eventIds?: string[]): Promise<number> {
    return this.run('replay', eventIds, Date.now()) as Promise<number>;
  }

  deliveries(query: { state?: DeliveryState; limit: number }): ReturnType<Store['deliveries']> {
    return this.run('deliveries', query) as ReturnType<Store['deliveries']>;
  }

  deliveryCounts(): ReturnType<Store['deliveryCounts']> {
    return this.run('deliveryCounts') as ReturnType<Store['deliveryCounts']>;
  }

  /** False when the file cannot be written (the write lock cannot be taken) or the store is closed. */
  async healthy(): Promise<boolean> {
    if (this.closed) return false;
    return (await this.engine.run('healthy').catch(() => false)) === true;
  }

  /** Commits what is queued, then closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.flushing;
    await this.engine.stop();
  }

  private run(op: Operation, ...args: unknown[]): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error('the store is closed'));
    return this.engine.run(op, ...args);
  }
}
