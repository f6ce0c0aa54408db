// The backlog (issue 9): 3,000 purchases with a few long props (about 3.9 MB on the wire) called in
// one task on a visible page, against the real collector. Measured side by side with the browser's
// own floor in the same run: a bare loop handing the same events, packed into bodies of at most
// 64 KiB, to `sendBeacon`, retrying every few milliseconds while it refuses. What it measures:
//   - ms from the calls until the collector stored the last event (the floor: from its first beacon);
//   - the longest task of the page's main thread after the calling task, while the backlog drains,
//     from a Chrome trace: its wall time, and its main-thread CPU time (the trace's thread clock),
//     which a busy machine does not stretch the way it stretches wall time;
//   - main-thread time (CDP TaskDuration, as in measure.mjs) from the calls until the last arrived.
import { TRACKERS } from './pages.mjs';
import { inlineScript, open } from './measure.mjs';

export const BACKLOG = 3000;

/** The purchase props of order `I` (an expression): three known props and five long free ones. */
const PROPS = (I) =>
  `{ value: 79.99, currency: 'USD', order_id: ${I}, ` +
  [1, 2, 3, 4, 5].map((k) => `note_${k}: ${I} + ' ${'lorem ipsum '.repeat(19)}'.slice(0, 200)`).join(', ') +
  ' }';

const TRACE = { categories: ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'blink.user_timing'] };

/**
 * The main thread's tasks that began after the page's `performance.mark(name)`, from a trace:
 * the longest by wall time and by CPU time, in ms.
 */
function longestAfter(trace, name) {
  const events = JSON.parse(trace).traceEvents;
  const mark = events.find((e) => e.name == name);
  if (!mark) throw new Error(`backlog: no mark ${name} in the trace`);
  const tasks = events.filter((e) => e.name == 'RunTask' && e.ph == 'X' && e.pid == mark.pid && e.tid == mark.tid && e.ts >= mark.ts);
  return {
    longestTask: Math.max(0, ...tasks.map((e) => e.dur / 1e3)),
    longestTaskCpu: Math.max(0, ...tasks.map((e) => (e.tdur ?? e.dur) / 1e3)),
  };
}

async function metrics(cdp) {
  const { metrics } = await cdp.send('Performance.getMetrics');
  const m = Object.fromEntries(metrics.map((x) => [x.name, x.value]));
  return (m.TaskDuration - m.DevToolsCommandDuration) * 1e3;
}

/** Waits until `n` purchases of the run arrived, or nothing new arrived for 3 s (at most 30 s). */
async function arrival(run, n, t0) {
  const deadline = t0 + 30000;
  while (run.count('purchase') < n && Date.now() < deadline) {
    const seen = run.count('purchase');
    if (!(await run.until(() => run.count('purchase') > seen, Math.min(3000, deadline - Date.now())))) break;
  }
  const purchases = run.events.filter((e) => e.kind == 'purchase');
  return { delivered: purchases.length, lastMs: purchases.length ? Math.max(...purchases.map((e) => e.at)) - t0 : NaN };
}

/** Our tag: loaded with Spotify's snippet, its page view arrived; then the 3,000 calls in one task. */
export async function backlogTag(browser, receiver, leaks) {
  const run = receiver.newRun('spdt');
  const { context, page, errors } = await open(browser, receiver.origin, leaks);
  try {
    const cdp = await context.newCDPSession(page);
    await cdp.send('Performance.enable');
    await page.goto(`${run.url}/page.html`);
    await inlineScript(page, TRACKERS.spdt.load(run));
    if (!(await run.until(() => run.count('view') > 0, 10000))) throw new Error('backlog: no page view arrived within 10 s');
    await browser.startTracing(page, TRACE);
    const before = await metrics(cdp);
    const calls = await page.evaluate(
      ({ code, n }) =>
        new Promise((resolve) => {
          const purchase = new Function('i', code);
          setTimeout(() => {
            const t0 = Date.now();
            const p0 = performance.now();
            for (let i = 0; i < n; i++) purchase(i);
            performance.mark('backlog-called');
            resolve({ t0, ms: performance.now() - p0 });
          });
        }),
      { code: `spdt('purchase', ${PROPS("'B-' + i")})`, n: BACKLOG },
    );
    const result = await arrival(run, BACKLOG, calls.t0);
    const mainMs = (await metrics(cdp)) - before;
    const tasks = longestAfter((await browser.stopTracing()).toString(), 'backlog-called');
    const orders = new Set((await receiver.stored(run.key)).filter((e) => e.action == 'purchase').map((e) => e.body.order_id));
    const requests = run.requests.filter((r) => r.events > 0 && r.at >= calls.t0);
    return {
      run,
      errors,
      ...result,
      stored: orders.size,
      bytes: requests.reduce((n, r) => n + r.bytes, 0),
      requests: requests.length,
      callMs: calls.ms,
      mainMs,
      // Tasks that began after the calling task: the tag's own work while it drains.
      ...tasks,
    };
  } finally {
    await context.close();
  }
}

/**
 * The floor: the same 3,000 events as v1 bodies of at most 64 KiB (built before the clock starts),
 * handed to `sendBeacon` in a loop that retries every 2 ms while the browser refuses.
 */
export async function backlogFloor(browser, receiver, leaks, { viaFetch = false } = {}) {
  const run = receiver.newRun('floor');
  const { context, page, errors } = await open(browser, receiver.origin, leaks);
  try {
    const cdp = await context.newCDPSession(page);
    await cdp.send('Performance.enable');
    await page.goto(`${run.url}/page.html`);
    await page.evaluate(
      ({ props, n, key }) => {
        const sid = crypto.randomUUID().replace(/-/g, '');
        const make = new Function('i', `return ${props}`);
        const bodies = (window.bench.bodies = []);
        let events = [];
        let size = 0;
        const close = () => bodies.push(JSON.stringify({ v: 1, sent_at: Date.now(), batch: [{ pid: key, sid, events }] }));
        for (let i = 0; i < n; i++) {
          const e = { action: 'purchase', event_id: crypto.randomUUID(), time: Date.now(), body: { url: location.href, ...make(i) } };
          const bytes = new TextEncoder().encode(JSON.stringify(e)).length + 1;
          if (size + bytes > 65536 - 200) close(), (events = []), (size = 0);
          events.push(e);
          size += bytes;
        }
        close();
      },
      { props: PROPS("'B-' + i"), n: BACKLOG, key: run.key },
    );
    await browser.startTracing(page, TRACE);
    const before = await metrics(cdp);
    const t0 = await page.evaluate(
      ({ url, viaFetch }) => {
        performance.mark('backlog-started');
        const bodies = window.bench.bodies;
        // For comparison only (`node bench/backlog.mjs`): plain fetch has no keepalive quota.
        if (viaFetch) for (const body of bodies) fetch(url, { method: 'POST', body, mode: 'no-cors' });
        let next = 0;
        (function send() {
          while (next < bodies.length && navigator.sendBeacon(url, bodies[next])) next++;
          if (next < bodies.length) setTimeout(send, 2);
        })(viaFetch && (next = bodies.length));
        return Date.now();
      },
      { url: `${run.url}/v1/ingest`, viaFetch },
    );
    const result = await arrival(run, BACKLOG, t0);
    const mainMs = (await metrics(cdp)) - before;
    const tasks = longestAfter((await browser.stopTracing()).toString(), 'backlog-started');
    const requests = run.requests.filter((r) => r.events > 0);
    return {
      run,
      errors,
      ...result,
      bytes: requests.reduce((n, r) => n + r.bytes, 0),
      requests: requests.length,
      mainMs,
      ...tasks,
    };
  } finally {
    await context.close();
  }
}

// `node bench/backlog.mjs [rounds]`: this measurement alone (after `npm run build`), interleaved,
// one line per measurement; it also times the same bodies sent with plain `fetch` at once (no
// keepalive quota), the upper bound a visible page could reach.
if (import.meta.url == `file://${process.argv[1]}`) {
  const { fileURLToPath } = await import('node:url');
  const { staticFiles } = await import('./pages.mjs');
  const { startReceiver } = await import('./receiver.mjs');
  const { launch } = await import('./measure.mjs');
  const root = fileURLToPath(new URL('..', import.meta.url));
  const receiver = await startReceiver({ root, files: await staticFiles(root) });
  const browser = await launch();
  const leaks = [];
  try {
    for (let round = 0; round < Number(process.argv[2] || 3); round++)
      for (const [name, options] of round % 2 ? [['floor'], ['fetch', { viaFetch: true }], ['spdt']] : [['spdt'], ['floor'], ['fetch', { viaFetch: true }]]) {
        const measure = name == 'spdt' ? backlogTag : backlogFloor;
        const { run, errors, ...r } = await measure(browser, receiver, leaks, options);
        console.log(name, JSON.stringify(r), errors.length ? errors : '');
      }
  } finally {
    await browser.close();
    await receiver.close();
  }
}
