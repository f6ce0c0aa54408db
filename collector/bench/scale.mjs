/**
 * Scale benchmark (docs/performance.md, "Scale (PostgreSQL)"; SPEC §11): collector nodes sharing one
 * PostgreSQL (a throwaway cluster, test/support/postgres.ts), in one run beside the floors of the
 * SQLite benchmarks:
 * - ingest: requests/s of `POST /v1/ingest` (10-event bodies with unique ids, bench/ingest-load.mjs)
 *   against the bare Node 204 server, one SQLite node, one PostgreSQL node, and two PostgreSQL
 *   nodes at once with the connections split between them (bench/ingest-servers.mjs children);
 * - relay: events/s delivered from a stored backlog to the stand-in answering at once, by one
 *   `SPDT_ROLE=relay` node (the real bin) on SQLite, one and two on PostgreSQL, against the bare loop
 *   posting the same batches (bench/relay.mjs).
 * Each run also reports the CPU each process used (from /proc: PostgreSQL's postmaster and all its
 * backends, each node, the stand-in, and this process, which runs autocannon or the relay floor's
 * sender) as a share of one core, since on a small machine that, not the design, is what two nodes
 * run into.
 *
 *   npm run bench:scale                          (at the root; builds first)
 *   node collector/bench/scale.mjs [--seconds 10] [--connections 20] [--rounds 1] [--events 20000]
 */
import { execFileSync, fork, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { BATCH as INGEST_BATCH, load } from './ingest-load.mjs';
import { floor as relayFloor, makeEvents, startStandinProcess } from './relay.mjs';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '1' },
    events: { type: 'string', default: '20000' },
  },
});
const SECONDS = Number(args.seconds);
const CONNECTIONS = Number(args.connections);
const ROUNDS = Number(args.rounds);
const EVENTS = Number(args.events);

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const bin = join(root, 'bin', 'spdt-collector.mjs');
const servers = new URL('./ingest-servers.mjs', import.meta.url);
const cache = join(root, 'node_modules', '.cache', 'spdt-bench-scale');

// --- CPU accounting from /proc -------------------------------------------------------------------

const TICK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));

/** utime, stime, cutime, cstime (clock ticks) and the parent of a process, or undefined when it is gone. */
function procStat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), own: Number(f[11]) + Number(f[12]), reaped: Number(f[13]) + Number(f[14]) };
  } catch {
    return undefined;
  }
}

/** CPU seconds of a process so far. */
const cpuOf = (pid) => (procStat(pid)?.own ?? 0) / TICK;

/** CPU seconds of PostgreSQL so far: the postmaster, its live children, and those it has reaped. */
function cpuOfPostgres(postmaster) {
  const main = procStat(postmaster);
  let ticks = main ? main.own + main.reaped : 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = procStat(name);
    if (s?.ppid == postmaster) ticks += s.own + s.reaped;
  }
  return ticks / TICK;
}

/** The whole machine's busy and I/O-wait ticks so far (all cores, every process, other users' too). */
function machine() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
  return { busy: (user + nice + system + irq + softirq + steal) / TICK, iowait: iowait / TICK };
}

/** Measures the CPU used by each named process (pids, or 'postgres') while `work` runs; shares of one core. */
async function measured(processes, work) {
  const read = () => Object.fromEntries(Object.entries(processes).map(([name, pid]) => [name, pid == 'postgres' ? cpuOfPostgres(postmaster) : cpuOf(pid)]));
  const before = read();
  const box = machine();
  const self = process.cpuUsage();
  const started = performance.now();
  const result = await work();
  const wall = (performance.now() - started) / 1000;
  const after = read();
  const boxAfter = machine();
  const { user, system } = process.cpuUsage(self);
  const shares = Object.fromEntries(Object.keys(processes).map((name) => [name, (after[name] - before[name]) / wall]));
  shares['bench process'] = (user + system) / 1e6 / wall;
  shares['whole machine busy'] = (boxAfter.busy - box.busy) / wall;
  shares['I/O wait'] = (boxAfter.iowait - box.iowait) / wall;
  return { result, wall, shares };
}

const percent = (shares) => Object.entries(shares).map(([name, share]) => `${name} ${Math.round(share * 100)} %`).join(', ');

// --- PostgreSQL -------------------------------------------------------------------------------------

// The throwaway cluster is test support (TypeScript): compiled on its own, as relay.mjs compiles the stand-in.
rmSync(cache, { recursive: true, force: true });
mkdirSync(cache, { recursive: true });
execFileSync(resolve(root, '..', 'node_modules', '.bin', 'tsc'), [
  'test/support/postgres.ts', '--outDir', cache, '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022', '--skipLibCheck', '--types', 'node',
], { cwd: root, stdio: 'inherit' });
writeFileSync(join(cache, 'package.json'), '{"type":"module"}');
const { startCluster, freshDatabase } = await import(join(cache, 'postgres.js'));

const cluster = await startCluster();
const admin = new pg.Client({ connectionString: cluster.url });
await admin.connect();
const dataDirectory = (await admin.query('SHOW data_directory')).rows[0].data_directory;
const postmaster = Number(readFileSync(join(dataDirectory, 'postmaster.pid'), 'utf8').split('\n')[0]);
const count = async (url, sql) => {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return Number((await client.query(sql)).rows[0].n);
  } finally {
    await client.end();
  }
};

const children = [];
function startServer(kind, env = {}) {
  const child = fork(servers, [kind], { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.push(child);
  const next = () => new Promise((ok) => child.once('message', ok));
  return next().then(({ port }) => ({ child, port, ask: (m) => (child.send(m), next()) }));
}

/** A relay node (the real bin, `SPDT_ROLE=relay`) on this store; `listening` resolves when its relay starts. */
function startRelayNode(storeEnv, connection) {
  const env = {
    PATH: process.env.PATH, PORT: '0', HOST: '127.0.0.1', ...storeEnv, SPDT_ROLE: 'relay',
    SPDT_SPOTIFY_CONNECTION_ID: connection.connection_id, SPDT_SPOTIFY_TOKEN: connection.token, SPDT_SPOTIFY_URL: connection.url,
  };
  const child = spawn(process.execPath, [bin], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let output = '';
  const listening = new Promise((ok, fail) => {
    child.stderr.on('data', (chunk) => {
      output += chunk;
      if (/"msg":"listening"/.test(output)) ok();
      if (/"level":"error"/.test(output)) console.error(output);
    });
    child.once('exit', () => fail(new Error(`relay node exited: ${output}`)));
  });
  return { child, listening };
}

/**
 * What PostgreSQL's backends of this database are doing while `work` runs, sampled every 20 ms:
 * the share of busy backend samples running, waiting on a lock (the change-counter row every
 * writing transaction updates, or a row another transaction is inserting) or on the WAL flush.
 */
async function sampled(databaseUrl, work) {
  const name = new URL(databaseUrl).pathname.slice(1);
  const seen = new Map();
  let running = true;
  const sampler = (async () => {
    while (running) {
      const { rows } = await admin.query(
        `SELECT coalesce(wait_event_type || ':' || wait_event, 'running') AS what, count(*)::int AS n FROM pg_stat_activity
         WHERE datname = $1 AND state = 'active' GROUP BY 1`,
        [name],
      );
      for (const { what, n } of rows) seen.set(what, (seen.get(what) ?? 0) + n);
      await new Promise((ok) => setTimeout(ok, 20));
    }
  })();
  try {
    return await work();
  } finally {
    running = false;
    await sampler;
    const total = [...seen.values()].reduce((a, b) => a + b, 0) || 1;
    lastWaits = [...seen].sort((a, b) => b[1] - a[1]).slice(0, 4).map(([what, n]) => `${what} ${Math.round((n / total) * 100)} %`).join(', ');
  }
}
let lastWaits = '';

const summary = (r) => ({ rps: Math.round(r.requests.average), p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx, errors: r.errors + r.timeouts, ok: r['2xx'] });

async function ingestBenchmark() {
  const databaseUrl = await freshDatabase(cluster.url);
  const sqliteDir = mkdtempSync(join(tmpdir(), 'spdt-bench-scale-'));
  const floor = await startServer('floor');
  const sqlite = await startServer('collector', { SPDT_DATA_DIR: sqliteDir });
  const nodes = await Promise.all([0, 1].map(() => startServer('collector', { SPDT_BENCH_DATABASE_URL: databaseUrl })));
  const [a, b] = nodes;
  let acknowledged = 0;
  const onNodes = (r) => ((acknowledged += r['2xx']), r);
  const rows = [];
  try {
    await load(floor.port, { connections: CONNECTIONS, seconds: 2 });
    await load(sqlite.port, { connections: CONNECTIONS, seconds: 2 });
    for (const node of nodes) onNodes(await load(node.port, { connections: CONNECTIONS, seconds: 2 }));
    for (let round = 1; round <= ROUNDS; round++) {
      const f = await measured({ floor: floor.child.pid }, () => load(floor.port, { connections: CONNECTIONS, seconds: SECONDS }));
      rows.push({ run: 'floor: bare Node 204', ...summary(f.result), cpu: percent(f.shares) });
      const lite = await measured({ node: sqlite.child.pid }, () => load(sqlite.port, { connections: CONNECTIONS, seconds: SECONDS }));
      rows.push({ run: 'one node, SQLite', ...summary(lite.result), cpu: percent(lite.shares) });
      const one = await measured({ postgres: 'postgres', 'node A': a.child.pid }, () =>
        sampled(databaseUrl, () => load(a.port, { connections: CONNECTIONS, seconds: SECONDS }).then(onNodes)),
      );
      rows.push({ run: 'one node, PostgreSQL', ...summary(one.result), cpu: percent(one.shares), waits: lastWaits });
      const half = Math.max(1, Math.round(CONNECTIONS / 2));
      const two = await measured({ postgres: 'postgres', 'node A': a.child.pid, 'node B': b.child.pid }, () =>
        sampled(databaseUrl, () => Promise.all([a, b].map((node) => load(node.port, { connections: half, seconds: SECONDS }).then(onNodes)))),
      );
      const [ra, rb] = two.result;
      rows.push({
        run: 'two nodes at once, PostgreSQL',
        rps: Math.round(ra.requests.average + rb.requests.average),
        p50: Math.max(ra.latency.p50, rb.latency.p50),
        p99: Math.max(ra.latency.p99, rb.latency.p99),
        non2xx: ra.non2xx + rb.non2xx,
        errors: ra.errors + ra.timeouts + rb.errors + rb.timeouts,
        ok: ra['2xx'] + rb['2xx'],
        cpu: percent(two.shares),
        waits: lastWaits,
      });
    }
  } finally {
    await Promise.all([floor, sqlite, ...nodes].map((s) => s.ask('close')));
    rmSync(sqliteDir, { recursive: true, force: true });
  }
  const stored = await count(databaseUrl, 'SELECT count(*) AS n FROM events');
  return { rows, acknowledgedEvents: acknowledged * INGEST_BATCH, stored };
}

async function relayBenchmark() {
  const standin = await startStandinProcess();
  const { ask, connection } = standin;
  const { openPostgresStore } = await import('../dist/store/postgres.js');
  const { openSqliteStore } = await import('../dist/store/sqlite.js');
  const rows = [];
  const row = (run, events, wall, shares) => ({ run, 'events/s': Math.round(events / wall), cpu: percent(shares) });
  try {
    for (const inFlight of [2, 4]) {
      const events = await makeEvents(EVENTS, connection);
      const f = await measured({ 'stand-in': standin.child.pid }, () => relayFloor(events, standin, inFlight));
      rows.push(row(`floor: bare loop, ${inFlight} requests in flight`, EVENTS, f.wall, f.shares));
    }
    for (const { kind, workers } of [{ kind: 'SQLite', workers: 1 }, { kind: 'PostgreSQL', workers: 1 }, { kind: 'PostgreSQL', workers: 2 }]) {
      // The same backlog, stored through the store API; then relay nodes (the real bin) on that store.
      const dir = kind == 'SQLite' ? mkdtempSync(join(tmpdir(), 'spdt-bench-scale-')) : undefined;
      const databaseUrl = dir ? undefined : await freshDatabase(cluster.url);
      const open = () => (dir ? openSqliteStore(dir) : openPostgresStore(databaseUrl));
      const store = await open();
      const events = await makeEvents(EVENTS, connection);
      for (let i = 0; i < events.length; i += 1000) await store.insert(events.slice(i, i + 1000));
      await store.close();
      await ask('reset');
      const nodes = Array.from({ length: workers }, () => startRelayNode(dir ? { SPDT_DATA_DIR: dir } : { DATABASE_URL: databaseUrl }, connection));
      // Timed from the first relay starting: the second one's start-up counts against two workers.
      await Promise.race(nodes.map((n) => n.listening));
      const names = Object.fromEntries(nodes.map(({ child }, i) => [`worker ${'AB'[i]}`, child.pid]));
      const drained = async () => {
        for (;;) {
          const { accepted } = await ask('count');
          if (accepted >= EVENTS) return accepted;
          await new Promise((ok) => setTimeout(ok, 25));
        }
      };
      lastWaits = '';
      const run = await measured({ ...(dir ? {} : { postgres: 'postgres' }), ...names, 'stand-in': standin.child.pid }, () => (dir ? drained() : sampled(databaseUrl, drained)));
      await Promise.all(nodes.map(({ child, listening }) => listening.then(() => new Promise((ok) => (child.once('exit', ok), child.kill('SIGTERM'))))));
      const after = await open();
      const delivered = (await after.deliveryCounts()).find((c) => c.state == 'delivered')?.count;
      await after.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
      const { accepted } = await ask('count');
      if (delivered != EVENTS || accepted != EVENTS) throw new Error(`relay, ${kind}, ${workers} workers: ${accepted} accepted, ${delivered} recorded delivered, of ${EVENTS}`);
      rows.push({ ...row(`${workers} relay node${workers > 1 ? 's' : ''} (SPDT_ROLE=relay), ${kind}`, EVENTS, run.wall, run.shares), waits: lastWaits });
    }
  } finally {
    standin.child.kill();
  }
  return rows;
}

try {
  const ingest = await ingestBenchmark();
  const relay = await relayBenchmark();
  const version = (await admin.query('SHOW server_version')).rows[0].server_version;
  console.log(`\nCPU: seconds of CPU per second of the run (1 = one core of ${cpus().length}); "whole machine busy" counts every process on it, other users' too.`);
  console.log(`\nScale benchmark: PostgreSQL ${version}, node ${process.version}, ${cpus().length} cores, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log(`\nIngest: ${CONNECTIONS} connections (split between the nodes when two), ${SECONDS} s per run, ${ROUNDS} round(s), ${INGEST_BATCH} events per request\n`);
  console.log('| run | requests/s | p50 / p99 ms | non-2xx, errors | CPU (share of one core) |');
  console.log('|---|---|---|---|---|');
  for (const r of ingest.rows) console.log(`| ${r.run} | ${r.rps.toLocaleString('en')} | ${r.p50} / ${r.p99} | ${r.non2xx}, ${r.errors} | ${r.cpu} |`);
  console.log('\nPostgreSQL backends while the nodes ran (share of active-backend samples):');
  for (const r of ingest.rows) if (r.waits) console.log(`- ${r.run}: ${r.waits}`);
  // A request still in flight when a run's time is up is stored, but autocannon does not count its answer.
  const missing = ingest.stored < ingest.acknowledgedEvents;
  console.log(`\nPostgreSQL holds ${ingest.stored.toLocaleString('en')} events; autocannon counted ${ingest.acknowledgedEvents.toLocaleString('en')} answered 204 (warm-ups included)${missing ? ' — FAIL: acknowledged events missing' : ''}`);
  console.log(`\nRelay: a stored backlog of ${EVENTS.toLocaleString('en')} events, batches of 50, 2 requests in flight per worker, stand-in answering at once\n`);
  console.log('| run | events/s | CPU (share of one core) |');
  console.log('|---|---|---|');
  for (const r of relay) console.log(`| ${r.run} | ${r['events/s'].toLocaleString('en')} | ${r.cpu} |`);
  console.log('\nPostgreSQL backends while the relay nodes ran (share of active-backend samples):');
  for (const r of relay) if (r.waits) console.log(`- ${r.run}: ${r.waits}`);
  if (missing) process.exitCode = 1;
} finally {
  await admin.end();
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  cluster.stop();
  rmSync(cache, { recursive: true, force: true });
}
