/**
 * Micro benchmark of the SQLite store's insert path (the ingest critical path): `callers`
 * concurrent callers each insert 10-event batches (as one request of the tag's) and wait for the
 * commit before the next, for a fixed time. Reports events and insert() calls per second, the
 * process's CPU time per event (steadier than wall time on a shared machine) and its main
 * thread's (what HTTP handling on that thread competes with; it includes making the events).
 * Cases: transactions on the store's worker thread or the caller's; synchronous NORMAL or FULL; a
 * delivery per event or none; one caller at a time (what group commit saves); a file that already
 * holds `prefill` events. Event ids are random UUIDs, as the tag's: once the (key, event_id) index
 * is large, each insert dirties about one page of it.
 *
 *   npm run build -w spdt-collector && node collector/bench/store-insert.mjs [seconds per case] [prefill]
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../dist/store/sqlite.js';

const SECONDS = Number(process.argv[2] ?? 3);
const PREFILL = Number(process.argv[3] ?? 200_000);
const BATCH = 10;

/** CPU µs of this process's main thread alone (Linux /proc; Node 20 has no per-thread cpuUsage). */
function mainThreadCpu() {
  const fields = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100; // utime + stime, in clock ticks of 10 ms
}

function batch(withDelivery) {
  const now = Date.now();
  return Array.from({ length: BATCH }, () => ({
    key: 'bench-key',
    action: 'purchase',
    event_id: randomUUID(),
    time: now,
    received_at: now,
    uid: '0123456789abcdef0123456789abcdef',
    sid: 's-1',
    alias: { hashed_email: 'a'.repeat(64) },
    transport: 'beacon',
    action_source: 'WEB',
    ip: '203.0.113.7',
    user_agent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
    body: { url: 'https://shop.example/thanks?order=1', value: 79.99, currency: 'USD', product_name: 'Listener Tee', quantity: 1 },
    problems: [],
    deliveries: withDelivery ? [{ connection_id: 'conn-a', state: 'pending' }] : [],
  }));
}

async function run({ synchronous, callers, withDelivery, prefill = 0, thread }) {
  const dir = mkdtempSync(join(tmpdir(), 'spdt-bench-store-'));
  const store = openSqliteStore(dir, { synchronous, thread });
  for (let stored = 0; stored < prefill; stored += 100 * BATCH) {
    await Promise.all(Array.from({ length: 100 }, () => store.insert(batch(withDelivery))));
  }
  let calls = 0;
  const end = performance.now() + SECONDS * 1000;
  const caller = async () => {
    while (performance.now() < end) {
      await store.insert(batch(withDelivery));
      calls++;
    }
  };
  const cpu = process.cpuUsage(); // every thread of the process
  const main = mainThreadCpu(); // what HTTP handling on the same thread would compete with
  const start = performance.now();
  await Promise.all(Array.from({ length: callers }, caller));
  const elapsed = (performance.now() - start) / 1000;
  const { user, system } = process.cpuUsage(cpu);
  const mainCpu = mainThreadCpu() - main;
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  return { calls: calls / elapsed, events: (calls * BATCH) / elapsed, cpuPerEvent: (user + system) / (calls * BATCH), mainPerEvent: mainCpu / (calls * BATCH) };
}

const cases = [
  { thread: 'worker', synchronous: 'NORMAL', callers: 64, withDelivery: false },
  { thread: 'main', synchronous: 'NORMAL', callers: 64, withDelivery: false },
  { thread: 'worker', synchronous: 'NORMAL', callers: 64, withDelivery: true },
  { thread: 'worker', synchronous: 'FULL', callers: 64, withDelivery: false },
  { thread: 'worker', synchronous: 'NORMAL', callers: 1, withDelivery: false },
  { thread: 'main', synchronous: 'NORMAL', callers: 1, withDelivery: false },
  { thread: 'worker', synchronous: 'NORMAL', callers: 64, withDelivery: false, prefill: PREFILL },
  { thread: 'main', synchronous: 'NORMAL', callers: 64, withDelivery: false, prefill: PREFILL },
];
console.log(`SQLite store insert(), ${BATCH}-event batches, ${SECONDS} s per case`);
console.log('thread  synchronous  callers  deliveries  prefilled  calls/s  events/s  CPU µs/event  main thread µs/event');
for (const c of cases) {
  const { calls, events, cpuPerEvent, mainPerEvent } = await run(c);
  console.log(
    [
      c.thread.padEnd(6),
      c.synchronous.padEnd(11),
      String(c.callers).padStart(7),
      (c.withDelivery ? '1/event' : 'none').padStart(10),
      String(c.prefill ?? 0).padStart(9),
      String(Math.round(calls)).padStart(7),
      String(Math.round(events)).padStart(8),
      cpuPerEvent.toFixed(1).padStart(12),
      mainPerEvent.toFixed(1).padStart(19),
    ].join('  '),
  );
}
