/**
 * Ingest benchmark (docs/performance.md, "Collector"): requests/s and p50/p99 latency of
 * `POST /v1/ingest` with 10-event batches of unique events into SQLite (WAL, the real collector and
 * store, each 204 sent after its commit), side by side in one run with a bare Node http server that
 * reads the body and answers 204 (the floor). Both run in child processes; autocannon drives them
 * from this process with the same connections and duration.
 *
 *   npm run bench:collector                      (at the root; builds first)
 *   node collector/bench/ingest.mjs [--seconds 10] [--connections 20] [--rounds 2] [--memory [--memory-requests 100000]]
 *
 * --memory also measures the collector's resident memory before and after storing a million events
 * (100,000 requests of 10), sampled over IPC, and checks every one of them is in the file.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { BATCH, load as loadIngest } from './ingest-load.mjs';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '2' },
    memory: { type: 'boolean', default: false },
    'memory-requests': { type: 'string', default: '100000' },
  },
});
const SECONDS = Number(args.seconds);
const CONNECTIONS = Number(args.connections);
const ROUNDS = Number(args.rounds);
const servers = new URL('./ingest-servers.mjs', import.meta.url);

function start(kind, env = {}) {
  const child = fork(servers, [kind], { env: { ...process.env, ...env }, execArgv: ['--expose-gc', ...(process.env.SPDT_BENCH_PROF && kind == 'collector' ? ['--cpu-prof', `--cpu-prof-dir=${process.env.SPDT_BENCH_PROF}`] : [])], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = () => new Promise((resolve) => child.once('message', resolve));
  return next().then(({ port }) => ({ child, port, ask: (m) => (child.send(m), next()) }));
}

/** Load for `seconds`, or for `amount` requests. */
const load = (port, { seconds = SECONDS, amount } = {}) => loadIngest(port, { connections: CONNECTIONS, seconds, amount });

const row = (name, r) => ({
  server: name,
  'requests/s': Math.round(r.requests.average),
  'events/s': name == 'floor' ? '—' : Math.round(r.requests.average * BATCH),
  'p50 ms': r.latency.p50,
  'p99 ms': r.latency.p99,
  'non-2xx': r.non2xx,
  errors: r.errors + r.timeouts,
});

function report(rows) {
  console.log(`ingest benchmark: ${CONNECTIONS} connections, ${SECONDS} s per run, ${ROUNDS} rounds, ${BATCH} events per request, node ${process.version}`);
  console.table(rows);
  const sum = (server) => rows.filter((r) => r.server == server).reduce((s, r) => s + r['requests/s'], 0);
  const p99 = Math.max(...rows.filter((r) => r.server == 'collector').map((r) => r['p99 ms']));
  console.log(`collector / floor requests/s: ${(sum('collector') / sum('floor')).toFixed(2)} (target ≥ 0.35); collector p99 worst run: ${p99} ms (target ≤ 50)`);
}

/** Resident memory of the collector before and after storing `amount` × 10 events, and a check that all of them are in the file. */
async function memory(collector, amount) {
  const db = new Database(join(dataDir, 'spdt.sqlite'), { readonly: true });
  const count = () => db.prepare('SELECT count(*) AS n FROM events').get().n;
  const storedBefore = count();
  const before = await collector.ask('memory');
  const started = Date.now();
  const r = await load(collector.port, { amount });
  const after = await collector.ask('memory');
  const stored = count() - storedBefore;
  db.close();
  const mb = (n) => (n / 1024 / 1024).toFixed(1);
  console.log(
    `memory: ${amount} requests (${amount * BATCH} events) in ${((Date.now() - started) / 1000).toFixed(0)} s (${Math.round(r.requests.average)} requests/s, p99 ${r.latency.p99} ms), ` +
      `${stored} events newly stored, non-2xx ${r.non2xx}; collector RSS ${mb(before.rss)} MB → ${mb(after.rss)} MB ` +
      `(${after.rss >= before.rss ? '+' : ''}${mb(after.rss - before.rss)} MB, target < 50), heap used ${mb(before.heapUsed)} → ${mb(after.heapUsed)} MB`,
  );
  if (stored != amount * BATCH) {
    console.log(`FAIL: ${amount * BATCH - stored} acknowledged events missing from the file`);
    process.exitCode = 1;
  }
}

const dataDir = mkdtempSync(join(tmpdir(), 'spdt-bench-'));
const floor = await start('floor');
const collector = await start('collector', { SPDT_DATA_DIR: dataDir });
try {
  // Warm-up: JIT, SQLite cache, the first pages of the file.
  await load(floor.port, { seconds: 2 });
  await load(collector.port, { seconds: 2 });
  const rows = [];
  for (let round = 1; round <= ROUNDS; round++) {
    rows.push(row('floor', await load(floor.port)));
    rows.push(row('collector', await load(collector.port)));
  }
  if (ROUNDS) report(rows);
  if (args.memory) await memory(collector, Number(args['memory-requests']));
} finally {
  await Promise.all([floor.ask('close'), collector.ask('close')]);
  rmSync(dataDir, { recursive: true, force: true });
}
