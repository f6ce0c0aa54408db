/**
 * Delivery is durable and once (SPEC §9): a relay process SIGKILLed with a request in flight and
 * deliveries pending, then restarted, delivers every event; only what was in flight when it died may
 * reach Spotify twice, with the same event_id.
 *
 * Twice: the real CLI (`src/cli.ts`, what the bin runs, ingesting over HTTP, with the
 * shortest lease SPDT_RELAY_LEASE_MS allows, 12 s), and a collector reduced to store + relay worker
 * (test/support/relay-child.ts, a 1.5 s lease, so it can be killed twice in a few seconds), both
 * compiled here by tsc and configured from the environment by the collector's own loadConfig.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { planDeliveries } from '../src/relay/plan.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import type { NewEvent } from '../src/store/types.js';
import { startStandin, type Standin } from './support/spotify-standin.js';

const root = resolve(import.meta.dirname, '..');
const build = join(root, 'node_modules', '.cache', 'spdt-relay-child');
const childJs = join(build, 'test', 'support', 'relay-child.js');

/** The CLI compiled on its own (one level below the package, as dist/ is), so no other test's build is half-read. */
const binBuild = join(root, '.dist-relay-crash');
const bin = join(binBuild, 'cli.js');

beforeAll(() => {
  try {
    rmSync(binBuild, { recursive: true, force: true });
    execFileSync(resolve(root, '..', 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json', '--outDir', binBuild, '--declaration', 'false', '--sourceMap', 'false'], { cwd: root, stdio: 'pipe' });
  } catch (error) {
    if (!existsSync(bin)) throw error;
  }
  rmSync(build, { recursive: true, force: true });
  const tsc = resolve(root, '..', 'node_modules', '.bin', 'tsc');
  const args = ['test/support/relay-child.ts', '--outDir', build, '--rootDir', '.', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022', '--skipLibCheck', '--types', 'node'];
  try {
    execFileSync(tsc, args, { cwd: root, stdio: 'pipe' });
  } catch (error) {
    // tsc emits even when another module of the package does not type-check yet; only a missing output is fatal.
    if (!readdirSync(join(build, 'test', 'support')).includes('relay-child.js')) throw error;
  }
  mkdirSync(build, { recursive: true });
  writeFileSync(join(build, 'package.json'), '{"type":"module"}');
}, 120_000);

const dirs: string[] = [];
const standins: Standin[] = [];
const children: ChildProcess[] = [];
afterAll(async () => {
  rmSync(binBuild, { recursive: true, force: true });
  rmSync(build, { recursive: true, force: true });
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const standin of standins) await standin.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function setUp(connectionId: string) {
  const dir = mkdtempSync(join(tmpdir(), 'spdt-relay-crash-'));
  dirs.push(dir);
  const standin = await startStandin({ connectionId });
  standins.push(standin);
  return { dir, standin };
}

function spawnRelay(env: NodeJS.ProcessEnv, output: string[], script = childJs) {
  const child = spawn(process.execPath, [script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  child.stdout!.on('data', (chunk) => output.push(String(chunk)));
  child.stderr!.on('data', (chunk) => output.push(String(chunk)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { child, exited };
}

it('SIGKILL mid-request and mid-backlog, restart: every event delivered, only in-flight ones twice', async () => {
  const { dir, standin } = await setUp('conn-crash');
  const connection = { connection_id: standin.connectionId, token: standin.token, custom: {}, url: standin.url };
  const N = 400;
  const ids = Array.from({ length: N }, (_, i) => `crash-${i}`);
  const now = Date.now();
  const store = openSqliteStore(dir);
  const events: NewEvent[] = ids.map((event_id, i) => ({
    key: 'k1', action: i % 2 ? 'purchase' : 'view', event_id, time: now - 1000, received_at: now, uid: 'e80cb68aa08941c5937911daee4144ea',
    transport: 'beacon', action_source: 'WEB', ip: '203.0.113.7', body: { url: 'https://shop.example/', value: 5, currency: 'EUR' }, problems: [], deliveries: [],
  }));
  for (const e of events) e.deliveries = planDeliveries(e, [connection]);
  await store.insert(events);

  const env = {
    ...process.env,
    SPDT_DATA_DIR: dir,
    SPDT_SPOTIFY_CONNECTION_ID: connection.connection_id,
    SPDT_SPOTIFY_TOKEN: connection.token,
    SPDT_SPOTIFY_URL: standin.url,
    SPDT_RELAY_RETRY_MS: '50',
    RELAY_TEST_LEASE_MS: '1500',
    RELAY_TEST_TIMEOUT_MS: '5000',
    // One batch in flight at a time, so "what was in flight" is exactly one request.
    RELAY_TEST_CONCURRENCY: '1',
  };
  const output: string[] = [];

  // 1. Killed while Spotify holds its first request (the answer never comes back).
  const held = standin.holdNext();
  const first = spawnRelay(env, output);
  await held;
  const inFlight = standin.heldRequests[0].eventIds;
  expect(inFlight).toHaveLength(50);
  first.child.kill('SIGKILL');
  await first.exited;

  // 2. Restarted, then killed again somewhere in the backlog.
  const second = spawnRelay(env, output);
  await standin.waitFor((s) => s.accepted.length >= 200);
  second.child.kill('SIGKILL');
  await second.exited;
  // Answered but perhaps not recorded: the request in flight, and the one before it, whose record
  // overlaps the next request.
  const lastBeforeKill = standin.received.slice(-2).flatMap((r) => r.eventIds);

  // 3. Restarted: the rest, and the expired leases of what the dead processes had claimed.
  const third = spawnRelay(env, output);
  await standin.waitFor((s) => new Set(s.acceptedIds()).size == N, 30_000);
  await vi.waitFor(async () => expect((await store.deliveries({ state: 'delivered', limit: N + 1 })).length).toBe(N), { timeout: 10_000, interval: 50 });
  third.child.kill('SIGTERM');
  await third.exited;
  expect(third.child.exitCode).toBe(0);

  const copies = new Map<string, number>();
  for (const id of standin.acceptedIds()) copies.set(id, (copies.get(id) ?? 0) + 1);
  expect([...copies.keys()].sort()).toEqual([...ids].sort());
  const twice = [...copies].filter(([, n]) => n > 1).map(([id]) => id);
  const mayRepeat = new Set([...inFlight, ...lastBeforeKill]);
  expect(twice.filter((id) => !mayRepeat.has(id))).toEqual([]);
  expect(Math.max(...copies.values())).toBeLessThanOrEqual(2);
  // The held request did arrive twice: once taken by Spotify as its sender died, once from the restart.
  expect(inFlight.every((id) => copies.get(id) == 2)).toBe(true);

  const logs = output.join('');
  expect(logs).toContain('relay child ready');
  expect(logs).not.toContain(connection.token);
  await store.close();
  for (const file of readdirSync(dir)) expect(readFileSync(join(dir, file)).includes(connection.token)).toBe(false);
}, 90_000);

/** The port from the bin's `listening` log line. */
function listeningPort(output: string[]): Promise<number> {
  return vi.waitFor(
    () => {
      const match = /"msg":"listening".*?"port":(\d+)/.exec(output.join(''));
      if (!match) throw new Error('not listening yet');
      return Number(match[1]);
    },
    { timeout: 20_000, interval: 20 },
  );
}

it('the real bin: SIGKILL with a request in flight and deliveries pending, restart: every event delivered', async () => {
  const { dir, standin } = await setUp('conn-bin');
  const env = {
    PATH: process.env.PATH,
    PORT: '0',
    SPDT_DATA_DIR: dir,
    SPDT_SPOTIFY_CONNECTION_ID: standin.connectionId,
    SPDT_SPOTIFY_TOKEN: standin.token,
    SPDT_SPOTIFY_URL: standin.url,
    SPDT_RELAY_RETRY_MS: '50',
    SPDT_RELAY_LEASE_MS: '12000',
  };
  const output: string[] = [];
  const held = standin.holdNext();
  const first = spawnRelay(env, output, bin);
  const port = await listeningPort(output);
  const ids: string[] = [];
  for (let r = 0; r < 6; r++) {
    const batch = Array.from({ length: 50 }, (_, i) => `bin-${r}-${i}`);
    ids.push(...batch);
    const body = JSON.stringify({
      v: 1,
      sent_at: Date.now(),
      batch: [{ pid: 'key-1', uid: 'e80cb68aa08941c5937911daee4144ea', events: batch.map((event_id) => ({ action: 'purchase', event_id, time: Date.now(), body: { url: 'https://shop.example/', value: 1, currency: 'USD' } })) }],
    });
    const answer = await fetch(`http://127.0.0.1:${port}/v1/ingest`, { method: 'POST', body });
    expect(answer.status).toBe(204);
  }
  await held;
  const inFlight = standin.heldRequests[0].eventIds;
  first.child.kill('SIGKILL');
  await first.exited;
  // Besides the held request, each lane's last answered request may not have been recorded yet.
  const lastAnswered = standin.received.slice(-4).flatMap((r) => r.eventIds);

  output.length = 0;
  const second = spawnRelay(env, output, bin);
  await listeningPort(output);
  const store = openSqliteStore(dir);
  // The held batch waits out its dead owner's lease (12 s) before the new process may claim it.
  await vi.waitFor(async () => expect((await store.deliveries({ state: 'delivered', limit: 1000 })).length).toBe(ids.length), { timeout: 40_000, interval: 100 });
  second.child.kill('SIGTERM');
  await second.exited;
  expect(second.child.exitCode).toBe(0);

  const copies = new Map<string, number>();
  for (const id of standin.acceptedIds()) copies.set(id, (copies.get(id) ?? 0) + 1);
  expect([...copies.keys()].sort()).toEqual([...ids].sort());
  const mayRepeat = new Set([...inFlight, ...lastAnswered]);
  expect([...copies].filter(([id, n]) => n > 1 && !mayRepeat.has(id))).toEqual([]);
  expect(inFlight.length).toBeGreaterThan(0);
  expect(inFlight.every((id) => copies.get(id) == 2)).toBe(true);
  await store.close();
  for (const file of readdirSync(dir)) expect(readFileSync(join(dir, file)).includes(standin.token)).toBe(false);
}, 90_000);
