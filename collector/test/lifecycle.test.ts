/**
 * The collector as a process (SPEC §8): its CLI (`src/cli.ts`, compiled here into a private
 * directory, so a concurrent build of `dist/` by another test cannot hand a child a half-written
 * file) in a child process on a real SQLite file. A bad setting exits 2 naming it;
 * SIGTERM during load finishes what is in flight and exits 0; SIGKILL during load loses no event
 * that was answered 204, and stores none twice.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { wireBody } from './support/edge.js';

const root = resolve(import.meta.dirname, '..');
/** One level below the package, as dist/ is: the admin routes find `../../public` from there. */
const out = join(root, '.dist-lifecycle');
const bin = join(out, 'cli.js');
const children: ChildProcess[] = [];
const dirs: string[] = [];

beforeAll(() => {
  try {
    rmSync(out, { recursive: true, force: true });
    execFileSync(resolve(root, '..', 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json', '--outDir', out, '--declaration', 'false', '--sourceMap', 'false'], { cwd: root, stdio: 'pipe' });
  } catch (error) {
    // tsc emits even when another module of the package does not type-check yet; only missing output is fatal.
    if (!existsSync(bin)) throw error;
  }
}, 120_000);

afterAll(() => {
  rmSync(out, { recursive: true, force: true });
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir() {
  const dir = mkdtempSync(join(tmpdir(), 'spdt-lifecycle-'));
  dirs.push(dir);
  return dir;
}

interface Running {
  child: ChildProcess;
  port: number;
  output: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function run(env: Record<string, string>): { child: ChildProcess; output: string[]; exited: Running['exited'] } {
  const child = spawn(process.execPath, [bin], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const output: string[] = [];
  child.stdout!.on('data', (d) => output.push(String(d)));
  child.stderr!.on('data', (d) => output.push(String(d)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.once('exit', (code, signal) => done({ code, signal })));
  return { child, output, exited };
}

/** Starts the bin on a free port and waits for its `listening` line. */
async function start(dataDir: string): Promise<Running> {
  const running = run({ PORT: '0', SPDT_DATA_DIR: dataDir });
  const port = await new Promise<number>((resolvePort, reject) => {
    const look = () => {
      const match = /"msg":"listening".*?"port":(\d+)/.exec(running.output.join(''));
      if (match) resolvePort(Number(match[1]));
    };
    running.child.stderr!.on('data', look);
    running.exited.then(() => reject(new Error(`exited before listening: ${running.output.join('')}`)));
  });
  return { ...running, port };
}

/** One ingest request on its own connection; resolves to the status, or 0 when the connection failed. */
function ingest(port: number, body: string): Promise<number> {
  return new Promise((done) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/ingest', agent: false, headers: { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => done(res.statusCode!));
      res.on('error', () => done(0));
    });
    req.on('error', () => done(0));
    req.end(body);
  });
}

/** Load from `workers` loops of 10-event requests until `stop()`; every id sent and every id answered 204. */
function load(port: () => number, workers = 8) {
  const sent: string[] = [];
  const acked: string[] = [];
  const statuses = new Set<number>();
  let stopped = false;
  let serial = 0;
  const loops = Array.from({ length: workers }, async (_, w) => {
    while (!stopped) {
      const ids = Array.from({ length: 10 }, () => `life-${w}-${serial++}`);
      sent.push(...ids);
      const status = await ingest(port(), wireBody(ids));
      statuses.add(status);
      if (status == 204) acked.push(...ids);
      else if (status == 0) await new Promise((r) => setImmediate(r)); // a dead server: keep trying until told to stop
    }
  });
  return { sent, acked, statuses, stop: () => ((stopped = true), Promise.all(loops)) };
}

const until = async (check: () => boolean) => {
  while (!check()) await new Promise((r) => setTimeout(r, 10));
};

function storedIds(dataDir: string): string[] {
  const db = new Database(join(dataDir, 'spdt.sqlite'), { readonly: true });
  try {
    return (db.prepare('SELECT event_id FROM events').all() as { event_id: string }[]).map((r) => r.event_id);
  } finally {
    db.close();
  }
}

it('exits 2 on a bad setting, naming the variable and not its value', async () => {
  const bad = run({ PORT: 'eighty' });
  expect((await bad.exited).code, bad.output.join('')).toBe(2);
  expect(bad.output.join('')).toMatch(/spdt-collector: PORT: not an integer/);

  const token = run({ SPDT_ADMIN_TOKEN: 'secret with spaces' });
  expect((await token.exited).code).toBe(2);
  expect(token.output.join('')).toContain('SPDT_ADMIN_TOKEN');
  expect(token.output.join('')).not.toContain('secret');
});

it('says at start when it has no Spotify connection, so nothing it stores will be relayed', async () => {
  const lonely = await start(tempDir());
  lonely.child.kill('SIGTERM');
  await lonely.exited;
  expect(lonely.output.join('')).toMatch(/"level":"warn","msg":"no Spotify connection configured[^"]*events are stored, none will be relayed"/);

  const connected = run({ PORT: '0', SPDT_DATA_DIR: tempDir(), SPDT_SPOTIFY_CONNECTION_ID: 'conn-1', SPDT_SPOTIFY_TOKEN: 'token-1', SPDT_SPOTIFY_URL: 'http://127.0.0.1:9/' });
  await until(() => connected.output.join('').includes('"msg":"listening"'));
  connected.child.kill('SIGTERM');
  await connected.exited;
  expect(connected.output.join('')).not.toContain('no Spotify connection');
});

it('SIGTERM under load: finishes what is in flight, stores every acknowledged event, exits 0', async () => {
  const dataDir = tempDir();
  const server = await start(dataDir);
  const traffic = load(() => server.port);
  await until(() => traffic.acked.length >= 200);

  // A request in flight when the signal comes: its headers are read (100 Continue), its body not yet.
  const body = wireBody(['in-flight-1']);
  const inFlight = new Promise<number>((done, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, method: 'POST', path: '/v1/ingest', agent: false, headers: { 'content-length': Buffer.byteLength(body), expect: '100-continue' } }, (res) => {
      res.resume();
      res.on('end', () => done(res.statusCode!));
    });
    req.on('error', reject);
    req.on('continue', () => {
      server.child.kill('SIGTERM');
      setImmediate(() => req.end(body));
    });
    req.flushHeaders();
  });
  expect(await inFlight).toBe(204);
  const { code } = await server.exited;
  await traffic.stop();
  expect(code).toBe(0);
  expect([...traffic.statuses].filter((s) => s != 204 && s != 503 && s != 0)).toEqual([]);
  const stored = new Set(storedIds(dataDir));
  expect(stored.has('in-flight-1')).toBe(true);
  expect(traffic.acked.filter((id) => !stored.has(id))).toEqual([]);
  expect(server.output.join('')).toMatch(/"msg":"stopping","signal":"SIGTERM"/);
}, 60_000);

it('SIGKILL under load: after a restart every acknowledged event is stored exactly once', async () => {
  const dataDir = tempDir();
  let server = await start(dataDir);
  const traffic = load(() => server.port);
  await until(() => traffic.acked.length >= 500);
  server.child.kill('SIGKILL');
  expect((await server.exited).signal).toBe('SIGKILL');
  const ackedBeforeKill = [...traffic.acked];

  // The tag sends again what it had no answer for (and a retry may repeat what was answered).
  server = await start(dataDir);
  await until(() => traffic.acked.length >= ackedBeforeKill.length + 200);
  await traffic.stop();
  for (let i = 0; i < traffic.sent.length; i += 200) expect(await ingest(server.port, wireBody(traffic.sent.slice(i, i + 200)))).toBe(204);
  server.child.kill('SIGTERM');
  expect((await server.exited).code).toBe(0);

  const ids = storedIds(dataDir);
  const counts = new Map<string, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  expect(ackedBeforeKill.filter((id) => counts.get(id) !== 1)).toEqual([]);
  expect([...counts.values()].every((n) => n == 1)).toBe(true);
  expect(counts.size).toBe(new Set(traffic.sent).size);
}, 90_000);
