/**
 * What the ingest benchmarks send, and how: request bodies as the tag sends them (one batch item,
 * 10 purchase events, each with a unique `event_id`, so every event is really validated and
 * stored), driven by autocannon. Used by ingest.mjs (SQLite) and scale.mjs (PostgreSQL).
 */
import autocannon from 'autocannon';

export const BATCH = 10;

let serial = 0;
const run = `${Date.now().toString(36)}`;
/** A request body as the tag sends it: one batch item, 10 purchase events with unique ids. */
export function body() {
  const now = Date.now();
  const events = [];
  for (let i = 0; i < BATCH; i++) {
    events.push({
      action: 'purchase',
      event_id: `${run}-${serial++}`,
      time: now,
      body: { url: 'https://shop.example/thanks?order=SP-1', referrer: 'https://shop.example/cart', value: 79.99, currency: 'USD', order_id: 'SP-ORD-12345', quantity: 1 },
    });
  }
  return JSON.stringify({
    v: 1,
    sent_at: now,
    batch: [{ pid: '5a1c965e567a45f7832cc5ba7a37faf7', uid: 'e80cb68aa08941c5937911daee4144ea', sid: '0f6c9a3d2b1e4c5f8a7b6c5d4e3f2a1b', events }],
  });
}

/** `POST /v1/ingest` on `port` from `connections` connections for `seconds`, or for `amount` requests. */
export function load(port, { connections, seconds, amount }) {
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: `http://127.0.0.1:${port}`,
        connections,
        ...(amount ? { amount } : { duration: seconds }),
        requests: [
          {
            method: 'POST',
            path: '/v1/ingest',
            headers: { 'content-type': 'text/plain;charset=UTF-8' },
            setupRequest: (request) => ({ ...request, body: body() }),
          },
        ],
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
    autocannon.track(instance, { renderProgressBar: false, renderResultsTable: false, renderLatencyTable: false });
  });
}
