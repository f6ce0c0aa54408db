/**
 * SPEC §8: an answered event survives a crash of the process right after. A child process inserts
 * events under load with the default synchronous=NORMAL and prints each event_id its store
 * acknowledged; it is killed with SIGKILL mid-load, and every acknowledged event must be in the
 * reopened store, exactly once. Twice on the same file, so the second run also starts from a
 * crashed WAL.
 *
 * The child is plain Node: the store's modules are transpiled (TypeScript's transpileModule, no
 * type check) into a temporary directory whose node_modules links to ours, so no build is needed.
 */
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../src/store/sqlite.js';

const here = dirname(fileURLToPath(import.meta.url));
const storeSources = join(here, '..', 'src', 'store');
const writerScript = join(here, 'support', 'store-writer.mjs');
const ACKNOWLEDGED_BEFORE_KILL = 3000;

let work: string;
let storeModule: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'spdt-durability-'));
  const out = join(work, 'store');
  mkdirSync(out);
  for (const name of ['sqlite', 'schema', 'ip', 'types']) {
    const source = readFileSync(join(storeSources, `${name}.ts`), 'utf8');
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
    });
    writeFileSync(join(out, `${name}.js`), outputText);
  }
  writeFileSync(join(work, 'package.json'), '{"type":"module"}');
  const betterSqlite = createRequire(import.meta.url).resolve('better-sqlite3');
  symlinkSync(betterSqlite.slice(0, betterSqlite.lastIndexOf('/node_modules/') + '/node_modules'.length), join(work, 'node_modules'));
  storeModule = pathToFileURL(join(out, 'sqlite.js')).href;
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Runs the writer until it has acknowledged `count` events, SIGKILLs it, and returns what it acknowledged. */
function writeUntilKilled(dataDir: string, run: string, count: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [writerScript, storeModule, dataDir, run], { stdio: ['ignore', 'pipe', 'pipe'] });
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
    for (const run of ['first', 'second']) {
      const ids = await writeUntilKilled(dataDir, run, ACKNOWLEDGED_BEFORE_KILL);
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
