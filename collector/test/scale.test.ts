/**
 * Past one machine (SPEC §11): collector processes (the bin's CLI, `src/cli.ts`, compiled here)
 * sharing one real PostgreSQL, a throwaway cluster for the run and a fresh database per test,
 * relaying to the strict Spotify stand-in. Nodes started together migrate once; events posted to
 * any node are stored once and relayed once; a node SIGKILLed mid-request loses its lease to the
 * other; `ingest` and `relay` roles split the work; the live stream of one node shows another's.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { post, wireBody } from './support/edge.js';
import { freshDatabase, startCluster, type Cluster } from './support/postgres.js';
import { startStandin, type Standin } from './support/spotify-standin.js';

const root = resolve(import.meta.dirname, '..');
/**
 * The bin's CLI compiled into a private directory (as `dist/` is, one level below the package, so the
 * admin routes find `../public`): other tests build `dist/` at the same time, and a child importing a
 * half-written file would exit before listening.
 */
const out = join(root, '.dist-scale');
const bin = join(out, 'cli.js');
/** The shortest lease SPDT_RELAY_LEASE_MS allows: the take-over test waits it out once. */
const SHORT_LEASE_MS = 12_000;

let cluster: Cluster;
const children: ChildProcess[] = [];
const standins: Standin[] = [];
const clients: pg.Client[] = [];

beforeAll(async () => {
  try {
    rmSync(out, { recursive: true, force: true });
    execFileSync(resolve(root, '..', 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json', '--outDir', out, '--declaration', 'false', '--sourceMap', 'false'], { cwd: root, stdio: 'pipe' });
  } catch (error) {
    // tsc emits even when another module of the package does not type-check yet; only missing output is fatal.
    if (!existsSync(bin)) throw error;
  }
  cluster = await startCluster();
}, 120_000);

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const client of clients.splice(0)) await client.end().catch(() => undefined);
  for (const standin of standins.splice(0)) await standin.close();
});

afterAll(() => {
  cluster?.stop();
  rmSync(out, { recursive: true, force: true });
});

interface Node {
  child: ChildProcess;
  url: string;
  output: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts the bin on a free port with this environment and waits for its `listening` line. */
async function startNode(env: Record<string, string>): Promise<Node> {
  const child = spawn(process.execPath, [bin], { env: { PATH: process.env.PATH, PORT: '0', HOST: '127.0.0.1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const output: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.once('exit', (code, signal) => done({ code, signal })));
  const port = await new Promise<number>((resolvePort, reject) => {
    const look = (chunk: Buffer) => {
      output.push(String(chunk));
      const match = /"msg":"listening".*?"port":(\d+)/.exec(output.join(''));
      if (match) resolvePort(Number(match[1]));
    };
    child.stdout!.on('data', (chunk) => output.push(String(chunk)));
    child.stderr!.on('data', look);
    exited.then(() => reject(new Error(`node exited before listening: ${output.join('')}`)));
  });
  return { child, url: `http://127.0.0.1:${port}`, output, exited };
}

/** The environment of a node on this database relaying to this stand-in. */
function nodeEnv(databaseUrl: string, standin: Standin, role: 'all' | 'ingest' | 'relay' = 'all', extra: Record<string, string> = {}) {
  return {
    DATABASE_URL: databaseUrl,
    SPDT_ROLE: role,
    SPDT_SPOTIFY_CONNECTION_ID: standin.connectionId,
    SPDT_SPOTIFY_TOKEN: standin.token,
    SPDT_SPOTIFY_URL: standin.url,
    // Due retries and other nodes' events are looked for every 100 ms.
    SPDT_RELAY_RETRY_MS: '100',
    ...extra,
  };
}

async function setup(options: { connectionId?: string } = {}) {
  const databaseUrl = await freshDatabase(cluster.url);
  const standin = await startStandin({ connectionId: options.connectionId ?? 'conn-scale' });
  standins.push(standin);
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  clients.push(db);
  return { databaseUrl, standin, db };
}

/** Waits until `check` resolves true, reading again every 50 ms (the state is in another process). */
async function until(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 60_000, state?: () => Promise<string>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}${state ? ` (${await state()})` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const countWhere = async (db: pg.Client, sql: string, params: unknown[] = []) => Number((await db.query(sql, params)).rows[0].n);
const deliveredCount = (db: pg.Client) => countWhere(db, "SELECT count(*) AS n FROM deliveries WHERE state = 'delivered'");

/** Posts 10-event bodies of these ids, alternating between the nodes, `parallel` requests at a time; every answer must be 204. */
async function postAlternately(nodes: Node[], ids: string[], parallel = 8): Promise<void> {
  const bodies: string[] = [];
  for (let i = 0; i < ids.length; i += 10) bodies.push(wireBody(ids.slice(i, i + 10)));
  let next = 0;
  const statuses: number[] = [];
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < bodies.length) {
        const i = next++;
        const res = await post(nodes[i % nodes.length].url, bodies[i]);
        statuses.push(res.status);
      }
    }),
  );
  expect(statuses.filter((s) => s != 204)).toEqual([]);
}

function counts(ids: string[]): Map<string, number> {
  const map = new Map<string, number>();
  for (const id of ids) map.set(id, (map.get(id) ?? 0) + 1);
  return map;
}

const idsOf = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

it('SPDT_RELAY_LEASE_MS is bounded: longer than the 10 s request timeout, at most 60 s', () => {
  expect(loadConfig({ SPDT_RELAY_LEASE_MS: '12000' }).relay.leaseMs).toBe(12_000);
  expect(loadConfig({}).relay.leaseMs).toBeUndefined(); // the worker's 60 s
  for (const bad of ['10000', '60001', '1.5', 'soon']) expect(() => loadConfig({ SPDT_RELAY_LEASE_MS: bad })).toThrow(/^SPDT_RELAY_LEASE_MS: /);
});

it('two nodes started at the same moment on an empty database: both healthy, the schema migrated once', async () => {
  const { databaseUrl, standin, db } = await setup();
  // Starting together is made certain: no table can be created until both nodes are waiting on a lock
  // (the first on the catalog held here, the second on the first, or both on the catalog if nothing serialised them).
  // (The lock is held on a connection of its own: pg_stat_activity reads as a snapshot within a transaction.)
  const locker = new pg.Client({ connectionString: databaseUrl });
  await locker.connect();
  clients.push(locker);
  await locker.query('BEGIN');
  await locker.query('LOCK TABLE pg_catalog.pg_class IN SHARE MODE');
  const starting = Promise.all([startNode(nodeEnv(databaseUrl, standin)), startNode(nodeEnv(databaseUrl, standin))]);
  starting.catch(() => undefined); // awaited below; a node that exits early fails the test there
  const waiting = () => countWhere(db, "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'");
  await until(async () => (await waiting()) == 2, 'both nodes waiting to migrate');
  await locker.query('COMMIT');
  const nodes = await starting;
  for (const node of nodes) {
    const res = await fetch(`${node.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
  }
  expect((await db.query('SELECT version FROM spdt_schema')).rows).toEqual([{ version: 1 }]);
  expect(await countWhere(db, 'SELECT count(*) AS n FROM spdt_counter')).toBe(1);
  expect(nodes.flatMap((n) => n.output).join('')).not.toMatch(/"level":"error"/);
}, 60_000);

it('2,000 events posted alternately to two nodes: each reaches Spotify exactly once, with its event_id', async () => {
  const { databaseUrl, standin, db } = await setup();
  const nodes = await Promise.all([startNode(nodeEnv(databaseUrl, standin)), startNode(nodeEnv(databaseUrl, standin))]);
  const ids = idsOf('alt', 2000);
  await postAlternately(nodes, ids);

  await standin.waitFor((s) => s.accepted.length >= ids.length, 90_000);
  // Every delivery recorded: nothing more is in flight that could still arrive twice.
  await until(async () => (await deliveredCount(db)) == ids.length, 'every delivery recorded delivered');
  expect(standin.received.filter((r) => r.status != 200)).toEqual([]);
  expect(standin.acceptedIds().sort()).toEqual([...ids].sort());
  expect(standin.accepted.every((e) => (e as { event_name: string }).event_name == 'PURCHASE')).toBe(true);
}, 120_000);

it('the same batch posted to both nodes: stored once, shown once by either node, relayed once', async () => {
  const { databaseUrl, standin, db } = await setup();
  const [a, b] = await Promise.all([startNode(nodeEnv(databaseUrl, standin)), startNode(nodeEnv(databaseUrl, standin))]);
  const ids = idsOf('twice', 10);
  const body = wireBody(ids);
  const answers = await Promise.all([post(a.url, body), post(b.url, body), post(a.url, body), post(b.url, body)]);
  expect(answers.map((r) => r.status)).toEqual([204, 204, 204, 204]);

  await until(async () => (await deliveredCount(db)) == ids.length, 'the batch delivered', 45_000, async () =>
    JSON.stringify({
      deliveries: (await db.query('SELECT state, attempts, last_status, last_error FROM deliveries')).rows,
      standin: standin.received.map((r) => ({ status: r.status, events: r.eventIds.length })),
    }),
  );
  await standin.waitFor((s) => s.accepted.length >= ids.length);
  for (const node of [a, b]) {
    const events = (await (await fetch(`${node.url}/api/events`)).json()) as { event_id: string; deliveries: { state: string }[] }[];
    expect(events.map((e) => e.event_id).sort()).toEqual([...ids].sort());
    expect(events.every((e) => e.deliveries.length == 1 && e.deliveries[0].state == 'delivered')).toBe(true);
  }
  expect(standin.acceptedIds().sort()).toEqual([...ids].sort());
  expect(await countWhere(db, 'SELECT count(*) AS n FROM deliveries')).toBe(ids.length);
}, 120_000);

it('a node SIGKILLed while Spotify holds its request: the other takes its deliveries over once the lease ends', async () => {
  const { databaseUrl, standin, db } = await setup();
  const env = nodeEnv(databaseUrl, standin, 'all', { SPDT_RELAY_LEASE_MS: String(SHORT_LEASE_MS) });
  const nodes = await Promise.all([startNode(env), startNode(env)]);
  const held = standin.holdNext(1);
  const ids = idsOf('kill', 400);
  await postAlternately(nodes, ids);
  await held;
  const heldRequest = standin.received.find((r) => r.status == -1)!;
  const heldIds = heldRequest.eventIds;
  expect(heldIds.length).toBeGreaterThan(0);

  // Who holds the lease of the held batch: the worker name carries the node's pid.
  const { rows: leases } = await db.query(
    'SELECT DISTINCT d.worker, d.lease_until FROM deliveries d JOIN events e ON e.id = d.event_row WHERE e.event_id = ANY($1)',
    [heldIds],
  );
  expect(leases).toHaveLength(1);
  const holder = nodes.find((n) => leases[0].worker.split(':').at(-2) == String(n.child.pid))!;
  const survivor = nodes.find((n) => n != holder)!;
  expect(holder).toBeDefined();
  const leaseUntil = Number(leases[0].lease_until);

  // Killed at once, inside the held request's 10 s timeout (the holder never gives up on it). Its
  // other lane may have a batch out or claimed too: those are taken over the same way.
  holder.child.kill('SIGKILL');
  expect((await holder.exited).signal).toBe('SIGKILL');
  const killedAt = Date.now();
  expect(killedAt - heldRequest.at, 'killed while the held request was still in flight').toBeLessThan(10_000);
  const { rows: recorded } = await db.query(
    "SELECT e.event_id FROM deliveries d JOIN events e ON e.id = d.event_row WHERE d.state = 'delivered'",
  );
  const recordedAtKill = new Set(recorded.map((r) => r.event_id as string));
  // What Spotify had by the kill without its delivery being recorded: the only events that may go twice.
  const unrecorded = new Set(standin.received.filter((r) => r.at <= killedAt).flatMap((r) => r.eventIds).filter((id) => !recordedAtKill.has(id)));

  await until(async () => (await deliveredCount(db)) == ids.length, 'every delivery recorded, the dead node\'s by the survivor', 60_000);
  // The held events went again, after the dead worker's lease ended and soon after it (the survivor
  // polls every 100 ms), once each.
  const resent = standin.received.filter((r) => r.status == 200 && r.at > killedAt && r.eventIds.some((id) => heldIds.includes(id)));
  expect(resent.flatMap((r) => r.eventIds.filter((id) => heldIds.includes(id))).sort()).toEqual([...heldIds].sort());
  for (const request of resent) {
    expect(request.at).toBeGreaterThanOrEqual(leaseUntil);
    expect(request.at - Math.max(leaseUntil, killedAt)).toBeLessThan(10_000);
  }

  const seen = counts(standin.acceptedIds());
  expect(ids.filter((id) => !seen.has(id))).toEqual([]);
  const twice = [...seen].filter(([, n]) => n > 1).map(([id]) => id);
  expect(twice.filter((id) => !unrecorded.has(id))).toEqual([]); // only what was in flight at the kill
  expect(heldIds.every((id) => seen.get(id) == 2)).toBe(true); // the held one twice, with its event_id
  expect([...seen.values()].every((n) => n <= 2)).toBe(true);
  expect((await fetch(`${survivor.url}/healthz`)).status).toBe(200);
}, 120_000);

it('an ingest node and a relay node: only the relay node calls Spotify, and it answers only /healthz and /metrics', async () => {
  const { databaseUrl, standin, db } = await setup();
  // The ingest node is configured with a connection of its own stand-in: it must plan deliveries, never send them.
  const ingestSide = await startStandin({ connectionId: standin.connectionId, token: standin.token });
  standins.push(ingestSide);
  const [ingestNode, relayNode] = await Promise.all([
    startNode(nodeEnv(databaseUrl, ingestSide, 'ingest')),
    startNode(nodeEnv(databaseUrl, standin, 'relay')),
  ]);
  const ids = idsOf('split', 300);
  await postAlternately([ingestNode], ids);

  await until(async () => (await deliveredCount(db)) == ids.length, 'every delivery recorded delivered');
  expect(standin.acceptedIds().sort()).toEqual([...ids].sort());
  expect(ingestSide.received).toEqual([]);

  const answer = (path: string, method = 'GET', body?: string) => fetch(relayNode.url + path, { method, body }).then((r) => r.status);
  expect(await answer('/healthz')).toBe(200);
  const metrics = await fetch(`${relayNode.url}/metrics`);
  expect(metrics.status).toBe(200);
  expect(await metrics.text()).toMatch(/spdt_relay_requests_total\{[^}]*status_class="2xx"[^}]*\} [1-9]/);
  for (const [path, method, body] of [
    ['/v1/ingest', 'POST', wireBody(['refused-by-relay'])],
    ['/v1/img?key=key-1&a=view', 'GET'],
    ['/ping.min.js', 'GET'],
    ['/', 'GET'],
    ['/api/events', 'GET'],
    ['/api/stream', 'GET'],
    ['/api/deliveries?state=dead', 'GET'],
    ['/api/deliveries/replay', 'POST', '{}'],
    ['/api/v1/conversion', 'POST', '{}'],
  ] as const)
    expect([path, await answer(path, method, body)]).toEqual([path, 404]);
  expect(await countWhere(db, "SELECT count(*) AS n FROM events WHERE event_id = 'refused-by-relay'")).toBe(0);
  expect((await fetch(`${ingestNode.url}/api/events?limit=1`)).status).toBe(200);
}, 90_000);

it('/api/stream on one node shows an event stored through another', async () => {
  const { databaseUrl, standin } = await setup();
  const [a, b] = await Promise.all([startNode(nodeEnv(databaseUrl, standin, 'ingest')), startNode(nodeEnv(databaseUrl, standin, 'ingest'))]);
  const stop = new AbortController();
  const stream = await fetch(`${b.url}/api/stream`, { signal: stop.signal });
  expect(stream.status).toBe(200);
  const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
  expect((await post(a.url, wireBody(['seen-elsewhere']))).status).toBe(204);
  let text = '';
  while (!text.includes('"event_id":"seen-elsewhere"')) {
    const { value, done } = await reader.read();
    if (done) throw new Error('stream ended');
    text += value;
  }
  const line = text.split('\n').find((l) => l.startsWith('data:') && l.includes('"event_id":"seen-elsewhere"'))!;
  expect(JSON.parse(line.slice(5))).toMatchObject({ event_id: 'seen-elsewhere', key: 'key-1', transport: 'beacon' });
  stop.abort();
}, 60_000);
