/**
 * SPEC §8: an answered event survives a crash of the process right after. A child process inserts
 * events under load with the default synchronous=NORMAL and prints each event_id its store
 * acknowledged; it is killed with SIGKILL mid-load, and every acknowledged event must be in the
 * reopened store, exactly once. Twice on the same file (transactions on the writer's own thread,
 * then on the store's worker thread), so the second run also starts from a crashed WAL.
 *
 * The child is plain Node: it imports the store transpiled by support/store-build.ts, no build needed.
 */
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../src/store/sqlite.js';
import { buildStore, type BuiltStore } from './support/store-build.js';

const writerScript = join(dirname(fileURLToPath(import.meta.url)), 'support', 'store-writer.mjs');
const ACKNOWLEDGED_BEFORE_KILL = 3000;

let built: BuiltStore;
let work: string;

beforeAll(() => {
  built = buildStore();
  work = mkdtempSync(join(tmpdir(), 'spdt-durability-'));
});

afterAll(() => {
  built.remove();
  rmSync(work, { recursive: true, force: true });
});

/** Runs the writer until it has acknowledged `count` events, SIGKILLs it, and returns what it acknowledged. */
function writeUntilKilled(dataDir: string, run: string, thread: 'main' | 'worker', count: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [writerScript, built.url, dataDir, run, thread], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let killed = false;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (!killed && out.split('\n').length - 1 >= count) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') return reject(new Error(`the writer exited by itself (${code}): ${err}`));
      resolve(out.slice(0, out.lastIndexOf('\n') + 1).split('\n').slice(0, -1)); // complete lines only
    });
  });
}

describe('durability under SIGKILL (synchronous=NORMAL)', () => {
  it('keeps every acknowledged event exactly once, through two crashes of the same file', async () => {
    const dataDir = join(work, 'data');
    const acknowledged: string[] = [];
    for (const [run, thread] of [['first', 'main'], ['second', 'worker']] as const) {
      const ids = await writeUntilKilled(dataDir, run, thread, ACKNOWLEDGED_BEFORE_KILL);
      expect(ids.length).toBeGreaterThanOrEqual(ACKNOWLEDGED_BEFORE_KILL);
      acknowledged.push(...ids);
    }

    const check = new Database(join(dataDir, 'spdt.sqlite'));
    try {
      expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
    } finally {
      check.close();
    }

    const store = openSqliteStore(dataDir);
    try {
      const stored = (await store.events({ limit: 1_000_000 })).map((event) => event.event_id);
      const times = new Map<string, number>();
      for (const id of stored) times.set(id, (times.get(id) ?? 0) + 1);
      const missing = acknowledged.filter((id) => !times.has(id));
      const repeated = [...times].filter(([, n]) => n > 1);
      expect({ missing: missing.slice(0, 5), missingCount: missing.length, repeated }).toEqual({ missing: [], missingCount: 0, repeated: [] });
      // The repeats the writer sent (the image copies) were stored once as well, and the store takes writes again.
      expect(await store.insert([{ ...(await store.events({ limit: 1 }))[0]!, deliveries: [] }])).toEqual({ inserted: [false] });
    } finally {
      await store.close();
    }
  });
});
