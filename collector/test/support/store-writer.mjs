/**
 * The durability test's victim: opens the SQLite store and inserts 10-event batches from several
 * concurrent writers until it is killed, printing each event_id on its own line once the insert()
 * that carried it has resolved, i.e. once the store acknowledged it.
 *
 * node store-writer.mjs <URL of the compiled sqlite.js> <data dir> <run name> <main|worker>
 */
const [moduleUrl, dataDir, run, thread] = process.argv.slice(2);
const { openSqliteStore } = await import(moduleUrl);
const store = openSqliteStore(dataDir, { thread });

const WRITERS = 8;
let serial = 0;

function event(writer) {
  const now = Date.now();
  return {
    key: `key-${writer % 2}`,
    action: 'purchase',
    event_id: `${run}-${writer}-${serial++}`,
    time: now,
    received_at: now,
    transport: 'beacon',
    action_source: 'WEB',
    ip: '203.0.113.7',
    user_agent: 'store-writer',
    body: { url: 'https://shop.example/thanks', value: 79.99, currency: 'USD' },
    problems: [],
    deliveries: writer % 2 ? [{ connection_id: 'conn-a', state: 'pending' }] : [],
  };
}

async function writer(index) {
  let previous;
  for (;;) {
    const batch = Array.from({ length: 10 }, () => event(index));
    // The last batch's first event again, as an image hit would repeat it: stored once.
    const repeat = previous ? [{ ...previous, transport: 'image' }] : [];
    const { inserted } = await store.insert([...batch, ...repeat]);
    if (inserted.slice(0, 10).some((flag) => !flag) || inserted[10] === true) throw new Error('unexpected inserted flags');
    // Synchronous on a pipe: once a line is out, it was printed after its commit.
    process.stdout.write(batch.map((e) => e.event_id).join('\n') + '\n');
    previous = batch[0];
  }
}

await Promise.all(Array.from({ length: WRITERS }, (_, i) => writer(i)));
