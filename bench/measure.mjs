// The measurements, each in a fresh browser context of one Chromium:
//   load(): a blank page, then the tracker's loader inserted as an inline script; main-thread time
//           until the page view has reached the server and the page is idle again;
//   burst(): on that same page, 1,000 purchases in one task; main-thread time until every event
//           arrived (or nothing more came), requests, bytes and delivery time at the server;
//   navTrial(): a link whose click handler tracks a purchase and which navigates to another page;
//           did the purchase arrive within 2 s of the navigation?
// Main-thread time is the renderer's `TaskDuration` (Chrome DevTools Protocol Performance.getMetrics)
// minus `DevToolsCommandDuration`: the bench's own CDP commands are not the tracker's work, and
// everything the bench triggers in the page runs from a timer, i.e. in a task of the page's own.
import { chromium } from '@playwright/test';
import { BURST, TRACKERS } from './pages.mjs';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/**
 * Nothing may leave the machine. In Chromium no host name resolves (the bench uses 127.0.0.1), and
 * every context reports requests for anything but the bench server into `leaks` (run.mjs fails on
 * any). The stricter guard, page routing that aborts such requests, runs in the sanity pass only:
 * routing pauses every request of the page in the DevTools Fetch domain, which slowed the delivery
 * of a 1,000-request burst by half in trials, so it stays out of the measurements.
 */
export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
    ],
  });
}

/** A fresh context and page, watched for leaks and page errors; `guard`: also abort leaks by routing. */
export async function open(browser, origin, leaks, { guard = false } = {}) {
  const context = await browser.newContext();
  const local = (url) => url.startsWith(origin + '/') || !/^(https?|wss?):/.test(url);
  context.on('request', (r) => local(r.url()) || leaks.push(r.url()));
  if (guard)
    await context.route(new RegExp('^(?!' + origin.replace(/[.]/g, '\\.') + '/)'), (route) => {
      leaks.push(route.request().url());
      return route.abort('blockedbyclient');
    });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => m.type() == 'error' && errors.push(m.text()));
  return { context, page, errors };
}

async function cdpMetrics(cdp) {
  const { metrics } = await cdp.send('Performance.getMetrics');
  const m = Object.fromEntries(metrics.map((x) => [x.name, x.value]));
  // Seconds → ms. `ThreadTime` is the main thread's CPU time (a cross-check on a busy 2-core box).
  const ms = (x) => x * 1e3;
  return { task: ms(m.TaskDuration - m.DevToolsCommandDuration), script: ms(m.ScriptDuration), compile: ms(m.V8CompileDuration), cpu: ms(m.ThreadTime) };
}

const diff = (a, b) => Object.fromEntries(Object.keys(a).map((k) => [k, b[k] - a[k]]));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Waits until the main thread has been idle (< 0.5 ms of tasks) for 300 ms, at most `max` ms. */
async function idle(cdp, max = 5000) {
  const start = Date.now();
  let last = await cdpMetrics(cdp);
  let quietSince = Date.now();
  while (Date.now() - start < max) {
    await sleep(100);
    const now = await cdpMetrics(cdp);
    if (now.task - last.task > 0.5) quietSince = Date.now(), (last = now);
    if (Date.now() - quietSince >= 300) return;
  }
}

/** Runs `code` as an inline script, from a timer task of the page (the way a pasted snippet runs). */
export const inlineScript = (page, code) =>
  page.evaluate((code) => {
    setTimeout(() => {
      const s = document.createElement('script');
      s.textContent = code;
      document.head.appendChild(s);
    });
  }, code);

/**
 * The load measurement, then (with `burst`) the burst of `n` purchases on the same page. `guard`:
 * the sanity pass (page routing on, see launch()).
 */
export async function loadAndBurst(browser, receiver, trackerName, leaks, { burst = true, n = BURST, guard = false } = {}) {
  const run = receiver.newRun(trackerName);
  const { context, page, errors } = await open(browser, receiver.origin, leaks, { guard });
  try {
    const cdp = await context.newCDPSession(page);
    await cdp.send('Performance.enable');
    await page.goto(`${run.url}/page.html`);
    // Warm-up: the first inline script and the bench's first evaluation have one-off costs.
    await inlineScript(page, 'bench.warm = 1');
    await idle(cdp);

    // 1. Load and initialise.
    const before = await cdpMetrics(cdp);
    await inlineScript(page, TRACKERS[trackerName].load(run));
    // Waited for at the server, so that the bench runs nothing in the page meanwhile. The control
    // has no page view: it is done once its empty script was served (and the page is idle).
    const viewed = await run.until(() => (trackerName == 'blank' ? run.served.has('blank.js') : run.count('view') > 0), 10000);
    if (!viewed) throw new Error(`${trackerName}: no page view arrived within 10 s`);
    await idle(cdp);
    const loaded = await cdpMetrics(cdp);
    const result = { run, load: diff(before, loaded), errors };
    if (!burst || !TRACKERS[trackerName].purchase) return result;

    // 2. A burst of purchases, and whatever the tracker does asynchronously until they are out.
    const requestsBefore = run.requests.length;
    const code = TRACKERS[trackerName].purchase("'O-' + i");
    const sync = await page.evaluate(
      ({ code, n }) =>
        new Promise((resolve) => {
          const burst = new Function('i', code);
          setTimeout(() => {
            const t0 = Date.now();
            const p0 = performance.now();
            for (let i = 0; i < n; i++) burst(i);
            resolve({ t0, ms: performance.now() - p0 });
          });
        }),
      { code, n },
    );
    // Until all arrived, or nothing new arrived for 3 s (at most 20 s).
    const deadline = sync.t0 + 20000;
    while (run.count('purchase') < n && Date.now() < deadline) {
      const seen = run.count('purchase');
      const more = await run.until(() => run.count('purchase') > seen, Math.min(3000, deadline - Date.now()));
      if (!more) break;
    }
    await idle(cdp);
    const flushed = await cdpMetrics(cdp);
    const purchases = run.events.filter((e) => e.kind == 'purchase');
    const requests = run.requests.slice(requestsBefore);
    result.burst = {
      main: diff(loaded, flushed),
      syncMs: sync.ms,
      delivered: purchases.length,
      lastMs: purchases.length ? Math.max(...purchases.map((e) => e.at)) - sync.t0 : NaN,
      requests: requests.length,
      bytes: requests.reduce((n, r) => n + r.bytes, 0),
    };
    if (trackerName == 'spdt') {
      // Ours is counted at the real collector: what it stored for this run's key.
      const orders = new Set((await receiver.stored(run.key)).filter((e) => e.action == 'purchase').map((e) => e.body.order_id));
      result.burst.stored = orders.size;
      result.burst.lost = [...Array(n).keys()].filter((i) => !orders.has('O-' + i));
    }
    return result;
  } finally {
    await context.close();
  }
}

/**
 * One navigation trial: the tracker loaded (its page view arrived), a click on a link whose click
 * handler tracks a purchase, the navigation to next.html; then up to 2 s for the purchase to arrive.
 */
export async function navTrial(browser, receiver, trackerName, leaks) {
  const run = receiver.newRun(trackerName);
  const { context, page, errors } = await open(browser, receiver.origin, leaks);
  try {
    await page.goto(`${run.url}/page.html`);
    await inlineScript(page, TRACKERS[trackerName].load(run));
    if (!(await run.until(() => run.count('view') > 0, 10000))) throw new Error(`${trackerName}: no page view within 10 s`);
    const code = TRACKERS[trackerName].purchase("'NAV-1'");
    await page.evaluate((code) => {
      const track = new Function(code);
      document.getElementById('go').addEventListener('click', () => track());
    }, code);
    const box = await page.locator('#go').boundingBox();
    const clicked = Date.now();
    // A real mouse click (trusted input), then the navigation it starts.
    await Promise.all([page.waitForURL('**/next.html'), page.mouse.click(box.x + box.width / 2, box.y + box.height / 2)]);
    const arrived = await run.until(() => run.count('purchase') > 0, 2000);
    const stored = trackerName == 'spdt' ? (await receiver.stored(run.key)).some((e) => e.action == 'purchase') : undefined;
    return { run, arrived, ms: arrived ? run.events.find((e) => e.kind == 'purchase').at - clicked : NaN, stored, errors };
  } finally {
    await context.close();
  }
}
