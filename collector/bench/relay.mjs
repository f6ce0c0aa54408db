/**
 * Relay throughput: events/s delivered from a stored backlog of 100,000 (SQLite, one connection) to
 * the strict Spotify stand-in answering at once, side by side with the floor: a bare loop posting
 * the same batches of 50 (already mapped, same HTTP client) to the same stand-in with the same
 * concurrency, in the same run. The stand-in runs in its own process; rounds interleave floor and
 * relay so that machine noise hits both.
 *
 *   npm run bench:relay            (builds the collector, then: node collector/bench/relay.mjs [events] [rounds])
 *   SPDT_BENCH_THREAD=worker node collector/bench/relay.mjs    the store's transactions on a worker thread
 *
 * The stand-in process, the backlog and the floor are exported for bench/scale.mjs (PostgreSQL).
 */
import { execFileSync, fork } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const cache = join(root, 'node_modules', '.cache', 'spdt-bench-relay');
export const TOKEN = 'bench-token-0123456789';
export const CONNECTION = 'bench-connection';
export const BATCH = 50;
export const CONCURRENCY = 2;

const cpuMs = (since) => {
  const { user, system } = process.cpuUsage(since);
  return (user + system) / 1000;
};

if (process.argv[2] == '--standin') {
  const { startStandin } = await import(join(cache, 'spotify-standin.js'));
  const standin = await startStandin({ token: TOKEN, connectionId: CONNECTION, lean: true });
  process.on('message', (m) => {
    if (m == 'reset') {
      standin.received.length = 0;
      standin.accepted.length = 0;
      process.send({ reset: true });
    } else if (m == 'count') process.send({ accepted: standin.accepted.length, requests: standin.received.length, refused: standin.received.filter((r) => r.status != 200).length });
  });
  process.on('disconnect', () => process.exit(0)); // never outlive the bench
  process.send({ url: standin.url });
} else if (resolve(process.argv[1] ?? '') == fileURLToPath(import.meta.url)) {
  await main();
}

/** Compiles the stand-in and starts it in its own process: `ask('reset')`, `ask('count')`, the connection to it. */
export async function startStandinProcess() {
  // The stand-in is test code (TypeScript): compiled on its own, as the crash test compiles its child.
  rmSync(cache, { recursive: true, force: true });
  mkdirSync(cache, { recursive: true });
  execFileSync(resolve(root, '..', 'node_modules', '.bin', 'tsc'), [
    'test/support/spotify-standin.ts', '--outDir', cache, '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022', '--skipLibCheck', '--types', 'node',
  ], { cwd: root, stdio: 'inherit' });
  writeFileSync(join(cache, 'package.json'), '{"type":"module"}');
  const child = fork(fileURLToPath(import.meta.url), ['--standin'], { stdio: 'inherit' });
  const ask = (message) => new Promise((ok) => { child.once('message', ok); child.send(message); });
  const { url } = await new Promise((ok) => child.once('message', ok));
  return { child, ask, connection: { connection_id: CONNECTION, token: TOKEN, custom: {}, url } };
}

/** A backlog of `count` events as ingest hands them to the store, with their delivery on `connection`. */
export async function makeEvents(count, connection) {
  const { planDeliveries } = await import('../dist/relay/plan.js');
  const now = Date.now();
  return Array.from({ length: count }, (_, i) => {
    const event = {
      key: 'bench-key', action: i % 3 ? 'view' : 'purchase', event_id: `bench-${now}-${i}`, time: now - 1000, received_at: now,
      uid: '0123456789abcdef0123456789abcdef', sid: 's-1', alias: { hashed_email: 'a'.repeat(64) }, transport: 'beacon', action_source: 'WEB',
      ip: '203.0.113.7', user_agent: 'Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0',
      body: { url: 'https://shop.example/thanks?order=1', value: 79.99, currency: 'USD', product_name: 'Listener Tee', quantity: 1 },
      problems: [], deliveries: [],
    };
    event.deliveries = planDeliveries(event, [connection]);
    return event;
  });
}

/** The floor: a bare loop posting the events, mapped and in batches, `concurrency` requests at a time. */
export async function floor(events, { ask, connection }, concurrency = CONCURRENCY) {
  const { toSpotifyEvent } = await import('../dist/relay/mapping.js');
  const { postEvents } = await import('../dist/relay/client.js');
  await ask('reset');
  const batches = [];
  for (let i = 0; i < events.length; i += BATCH) batches.push(events.slice(i, i + BATCH).map((e) => toSpotifyEvent({ ...e, body: e.body }, connection).event));
  let next = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < batches.length) {
      const answer = await postEvents(connection, batches[next++], 10_000);
      if (answer.status != 200) throw new Error('floor: stand-in refused a batch: ' + JSON.stringify(answer));
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  const used = cpuMs(cpu);
  const counted = await ask('count');
  if (counted.accepted != events.length) throw new Error(`floor: ${counted.accepted} accepted of ${events.length}`);
  return { rate: events.length / seconds, cpuPer1000: (used / events.length) * 1000 };
}

async function main() {
  const EVENTS = Number(process.argv[2] ?? 100_000);
  const ROUNDS = Number(process.argv[3] ?? 3);
  const { openSqliteStore } = await import('../dist/store/sqlite.js');
  const { startRelay } = await import('../dist/relay/worker.js');
  const { Registry } = await import('prom-client');
  const standin = await startStandinProcess();
  const { child, ask, connection } = standin;

  async function relay(events) {
    const dir = mkdtempSync(join(tmpdir(), 'spdt-bench-relay-'));
    const store = openSqliteStore(dir, { thread: process.env.SPDT_BENCH_THREAD ?? 'main' });
    for (let i = 0; i < events.length; i += 1000) await store.insert(events.slice(i, i + 1000));
    await ask('reset');
    const changes = new EventEmitter();
    const registry = new Registry();
    const log = { info() {}, warn: (m, f) => console.error(m, f), error: (m, f) => console.error(m, f) };
    // Done when every delivery is recorded delivered: counted on the way into the store, no extra queries.
    let recorded = 0;
    let done;
    const finished = new Promise((ok) => (done = ok));
    const counting = Object.create(store);
    counting.claim = (options) => store.claim(options);
    counting.record = async (outcomes) => {
      await store.record(outcomes);
      recorded += outcomes.filter((o) => o.state == 'delivered').length;
      if (recorded >= events.length) done();
    };
    const ctx = { config: { connections: [connection], relay: { batch: BATCH, retryMs: 1000, maxAgeSeconds: 86_400 } }, store: counting, registry, log, changes };
    const cpu = process.cpuUsage();
    const started = performance.now();
    const worker = startRelay(ctx, { concurrency: CONCURRENCY });
    await finished;
    const seconds = (performance.now() - started) / 1000;
    const used = cpuMs(cpu);
    await worker.stop();
    const counted = await ask('count');
    const delivered = (await store.deliveryCounts()).find((c) => c.state == 'delivered')?.count;
    await store.close();
    rmSync(dir, { recursive: true, force: true });
    if (counted.accepted != events.length || delivered != events.length) throw new Error(`relay: ${counted.accepted} accepted, ${delivered} recorded, of ${events.length}`);
    return { rate: events.length / seconds, cpuPer1000: (used / events.length) * 1000 };
  }

  const results = { floor: [], relay: [] };
  for (let round = 0; round < ROUNDS; round++) {
    const events = await makeEvents(EVENTS, connection);
    const order = round % 2 ? ['relay', 'floor'] : ['floor', 'relay'];
    for (const which of order) results[which].push(which == 'floor' ? await floor(events, standin) : await relay(events));
    const [f, r] = [results.floor.at(-1), results.relay.at(-1)];
    console.error(`round ${round + 1}: floor ${f.rate.toFixed(0)} ev/s (${f.cpuPer1000.toFixed(1)} ms CPU per 1000), relay ${r.rate.toFixed(0)} ev/s (${r.cpuPer1000.toFixed(1)} ms CPU per 1000)`);
  }
  child.kill();

  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const fmt = (xs, digits = 0) => `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`;
  const rates = (which) => results[which].map((r) => r.rate);
  const cpus1000 = (which) => results[which].map((r) => r.cpuPer1000);
  const ratio = median(rates('relay')) / median(rates('floor'));
  console.log(`Relay throughput, ${EVENTS.toLocaleString('en')} stored events, batches of ${BATCH}, ${CONCURRENCY} in flight, ${ROUNDS} rounds; ${cpus().length} cores, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}\n`);
  console.log('| | events/s, median (min–max) | sender CPU ms per 1,000 events |');
  console.log('|---|---|---|');
  console.log(`| floor: bare loop posting the same batches | ${fmt(rates('floor'))} | ${fmt(cpus1000('floor'), 1)} |`);
  console.log(`| relay: claim → map → post → record, SQLite | ${fmt(rates('relay'))} | ${fmt(cpus1000('relay'), 1)} |`);
  console.log(`| relay ÷ floor | ${ratio.toFixed(2)} (target ≥ 0.50) | |`);
  process.exitCode = ratio >= 0.5 ? 0 : 1;
}
