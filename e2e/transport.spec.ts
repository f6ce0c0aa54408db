/**
 * SPEC §6 (wire protocol v1): batching, request size, the image fallback, the outbox, and
 * delivery when the page is hidden or left — the real tag in each engine, checked on the
 * requests the browser really made and on what the collector stored.
 */
import type { Page, Request } from '@playwright/test';
import { test, expect, html, spotifySnippet, newKey, tagLoaded, watchPage, type Site, type StoredEvent, expectClean } from './fixtures';

declare global {
  interface Window {
    spdt: any;
    __beacons: string[];
    __refused: number;
  }
}

const MAX_BODY = 65536;

/** Opens a page with Spotify's snippet (a view unless `calls` say otherwise) and waits for the tag. */
async function open(page: Page, site: Site, key: string, calls?: string, body?: string) {
  const url = site.page(html(spotifySnippet('/ping.min.js', key, calls), body));
  await page.goto(url);
  await tagLoaded(page);
  return url;
}

/**
 * The page's requests to `path` (`/v1/ingest` or `/v1/img`): by default those that completed
 * (Chromium also reports a beacon that sendBeacon refused as a request, one that never finishes);
 * with 'request', every attempt.
 */
function requestsTo(page: Page, path: string, on: 'request' | 'requestfinished' = 'requestfinished') {
  const list: Request[] = [];
  page.on(on as 'request', (r: Request) => new URL(r.url()).pathname === path && list.push(r));
  return list;
}

interface Batch {
  v: number;
  sent_at: number;
  batch: { pid: string; uid?: string; sid: string; events: { action: string; event_id: string; time: number; body: any }[] }[];
}
const batchOf = (r: Request): Batch => JSON.parse(r.postData()!);
const eventIdsOf = (r: Request) => batchOf(r).batch.flatMap((item) => item.events.map((e) => e.event_id));
/** The requests that carried any of `events`. */
const carrying = (requests: Request[], events: StoredEvent[]) =>
  requests.filter((r) => eventIdsOf(r).some((id) => events.some((e) => e.event_id === id)));

/** The completed requests that carried `events`, once the browser has reported all of them. */
async function delivered(requests: Request[], events: StoredEvent[]) {
  const ids = () => new Set(requests.flatMap(eventIdsOf));
  await expect.poll(() => events.every((e) => ids().has(e.event_id)), { message: 'requests for all stored events' }).toBe(true);
  return carrying(requests, events);
}

/** Every stored event's id was in exactly one request the browser made. */
function expectEachSentOnce(requests: Request[], events: StoredEvent[]) {
  const sent = requests.flatMap(eventIdsOf);
  for (const e of events) expect(sent.filter((id) => id === e.event_id), `${e.action} ${e.event_id} sent once`).toHaveLength(1);
}

/** Waits until the collector holds an event matching `match`, and returns all events of the key. */
async function waitFor(site: Site, key: string, match: (e: StoredEvent) => boolean) {
  let events: StoredEvent[] = [];
  await expect.poll(async () => (events = await site.events(key)).some(match)).toBe(true);
  return events;
}


test.describe('SPEC §6: batching', () => {
  test('events called in one task go out in ONE text/plain request of batch shape', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const ingest = requestsTo(page, '/v1/ingest');
    const url = await open(page, site, key);
    await site.waitForEvents(key, 1);

    const before = Date.now();
    await page.evaluate(() => {
      window.spdt('product', { product_id: 'p-1', value: 10, currency: 'EUR' });
      window.spdt('addtocart', { product_id: 'p-1', quantity: 2, value: 20, currency: 'EUR' });
      window.spdt('purchase', { order_id: 'o-1', value: 20, currency: 'EUR' });
    });
    const stored = (await site.waitForEvents(key, 4)).slice(1);
    expect(stored.map((e) => e.action)).toEqual(['product', 'addtocart', 'purchase']);

    const requests = await delivered(ingest, stored);
    expect(requests).toHaveLength(1);
    const [request] = requests;
    expect(request.method()).toBe('POST');
    expect((await request.allHeaders())['content-type']).toBe('text/plain;charset=UTF-8');
    const body = batchOf(request);
    expect(Object.keys(body).sort()).toEqual(['batch', 'sent_at', 'v']);
    expect(body.v).toBe(1);
    expect(body.sent_at).toBeGreaterThanOrEqual(before - 1000);
    expect(body.batch).toHaveLength(1);
    const [item] = body.batch;
    expect(item).toMatchObject({ pid: key, uid: stored[0].uid, sid: stored[0].sid });
    expect(item.events.map((e) => [e.action, e.body.url])).toEqual([
      ['product', url],
      ['addtocart', url],
      ['purchase', url],
    ]);
    for (const e of item.events) {
      expect(e.event_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(e.time).toBeLessThanOrEqual(body.sent_at);
    }
    expect(item.events[2].body).toEqual({ url, order_id: 'o-1', value: 20, currency: 'EUR' });
    expectClean(seen);
  });

  test('events called in separate tasks go out in separate requests', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const ingest = requestsTo(page, '/v1/ingest');
    await open(page, site, key);
    await site.waitForEvents(key, 1);
    await page.evaluate(() => {
      window.spdt('lead', { type: 'first-task' });
      setTimeout(() => window.spdt('signup', { sign_up_method: 'second-task' }));
    });
    const all = await site.waitForEvents(key, 3);
    const stored = ['lead', 'signup'].map((action) => all.find((e) => e.action === action)!);
    expect(stored.every(Boolean)).toBe(true);
    const [first, second] = [await delivered(ingest, [stored[0]]), await delivered(ingest, [stored[1]])];
    expect(first).toHaveLength(1);
    expect(second).toHaveLength(1);
    expect(first[0]).not.toBe(second[0]);
    expectClean(seen);
  });

  test('options.key in the same task: two batch items in one request', async ({ page, site }) => {
    const key = newKey();
    const other = newKey();
    const seen = watchPage(page);
    const ingest = requestsTo(page, '/v1/ingest');
    await open(page, site, key);
    await site.waitForEvents(key, 1);
    await page.evaluate((other) => {
      window.spdt('lead', { type: 'main' });
      window.spdt('lead', { type: 'other' }, { key: other });
      window.spdt('signup', { sign_up_method: 'main' });
    }, other);
    const mine = (await site.waitForEvents(key, 3)).slice(1);
    const theirs = await site.waitForEvents(other, 1);
    expect(theirs.map((e) => [e.action, e.body.type])).toEqual([['lead', 'other']]);

    const requests = await delivered(ingest, [...mine, ...theirs]);
    expect(requests).toHaveLength(1);
    const { batch } = batchOf(requests[0]);
    expect(batch.map((item) => [item.pid, item.events.map((e) => e.action)])).toEqual([
      [key, ['lead', 'signup']],
      [other, ['lead']],
    ]);
    expect(batch[1].uid).toBe(batch[0].uid);
    expect(batch[1].sid).toBe(batch[0].sid);
    expectClean(seen);
  });
});

test.describe('SPEC §6: size', () => {
  test('a 200-event burst over 64 KiB is split; every body ≤ 65,536 bytes; each event stored once', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const ingest = requestsTo(page, '/v1/ingest');
    await open(page, site, key, '');
    await page.evaluate(() => {
      for (let i = 0; i < 200; i++)
        window.spdt('purchase', { order_id: 'burst-' + i, value: i, currency: 'USD', note_a: 'a'.repeat(250), note_b: 'b'.repeat(250) });
    });
    const stored = await site.waitForEvents(key, 200);
    expect(stored).toHaveLength(200);
    expect(new Set(stored.map((e) => e.body.order_id)).size).toBe(200);
    expect(stored.every((e) => e.body.note_a.length === 250 && e.body.note_b.length === 250)).toBe(true);

    const requests = await delivered(ingest, stored);
    expect(requests.length).toBeGreaterThanOrEqual(3); // about 140 kB in all
    for (const r of requests) expect(Buffer.byteLength(r.postData()!)).toBeLessThanOrEqual(MAX_BODY);
    expectEachSentOnce(requests, stored);
    expectClean(seen);
  });

  test('an event alone over 64 KiB loses its free props (then its line items) and carries trunc: 1', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const ingest = requestsTo(page, '/v1/ingest');
    await open(page, site, key, '');
    await page.evaluate(() => {
      const long = (c: string) => c.repeat(256);
      const free = (c: string) => Object.fromEntries(Array.from({ length: 100 }, (_, i) => ['free_' + i, long(c)]));
      const items = (fields: string[]) =>
        Array.from({ length: 100 }, (_, i) => ({ value: 1, quantity: 1, ...Object.fromEntries(fields.map((f) => [f, long(String(i % 10))])) }));
      // ~56 kB of line items + ~27 kB of free props: fits once the free props are gone.
      window.spdt('purchase', { order_id: 'big-1', value: 100, currency: 'USD', line_items: items(['product_name', 'variant_name']), ...free('x') });
      // ~110 kB of line items alone: they go too.
      window.spdt('purchase', {
        order_id: 'big-2', value: 100, currency: 'USD',
        line_items: items(['product_id', 'product_name', 'product_type', 'product_vendor', 'variant_name']),
        ...free('y'),
      });
    });
    const stored = await site.waitForEvents(key, 2);
    const big1 = stored.find((e) => e.body.order_id === 'big-1')!;
    const big2 = stored.find((e) => e.body.order_id === 'big-2')!;
    for (const e of [big1, big2]) {
      expect(e.body.trunc).toBe(1);
      expect(Object.keys(e.body).filter((k) => k.startsWith('free_'))).toEqual([]);
      expect(e.body).toMatchObject({ value: 100, currency: 'USD' });
    }
    expect(big1.body.line_items).toHaveLength(100);
    expect(big1.body.line_items[0].product_name).toBe('0'.repeat(256));
    expect(big2.body.line_items).toBeUndefined();

    const requests = await delivered(ingest, stored);
    for (const r of requests) expect(Buffer.byteLength(r.postData()!)).toBeLessThanOrEqual(MAX_BODY);
    expectEachSentOnce(requests, stored);
    expectClean(seen);
  });
});

test.describe('SPEC §6: image fallback', () => {
  const ACTION_ORDER = ['view', 'purchase', 'lead', 'custom'];

  test.beforeEach(async ({ page }) => {
    // A browser without sendBeacon (the only stub here: the browser edge that is missing).
    await page.addInitScript(() => delete (Navigator.prototype as any).sendBeacon);
  });

  test('without sendBeacon each event is one GET /v1/img, stored with the same props', async ({ page, context, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const img = requestsTo(page, '/v1/img', 'request');
    const ingest = requestsTo(page, '/v1/ingest', 'request');
    const url = await open(page, site, key);
    await site.waitForEvents(key, 1);
    await page.evaluate(() => {
      window.spdt('purchase', { order_id: 'img-1', value: 79.99, currency: 'usd', product_name: 'Mug', color: 'red' });
      window.spdt('lead', { type: 'newsletter', category: 'mail' });
      window.spdt('custom', { event_name: 'quiz_done', score_band: 'high' });
    });
    // Image requests run in parallel: they may reach the collector in any order.
    const stored = (await site.waitForEvents(key, 4)).sort((a, b) => ACTION_ORDER.indexOf(a.action) - ACTION_ORDER.indexOf(b.action));
    expect(stored.every((e) => e.transport === 'image')).toBe(true);
    expect(stored.map((e) => [e.action, e.body])).toEqual([
      ['view', { url }],
      ['purchase', { url, order_id: 'img-1', value: 79.99, currency: 'USD', product_name: 'Mug', color: 'red' }],
      ['lead', { url, type: 'newsletter', category: 'mail' }],
      ['custom', { url, event_name: 'quiz_done', score_band: 'high' }],
    ]);
    const device = (await context.cookies()).find((c) => c.name === '__spdt')!;
    expect(stored.every((e) => e.uid === device.value && e.sid === stored[0].sid)).toBe(true);

    // One image request per event, and nothing else.
    expect(img.map((r) => new URL(r.url()).searchParams.get('eid')).sort()).toEqual(stored.map((e) => e.event_id).sort());
    expect(img.every((r) => r.method() === 'GET')).toBe(true);
    expect(ingest).toEqual([]);
    expectClean(seen);
  });
});

test.describe('SPEC §6: the outbox', () => {
  test('a refused beacon keeps its events: they go later, once each, and never as image requests', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    // The browser's keepalive quota is full for the first 3 calls (sendBeacon returns false).
    await page.addInitScript(() => {
      const send = Navigator.prototype.sendBeacon;
      window.__refused = 0;
      Navigator.prototype.sendBeacon = function (this: Navigator, ...args: Parameters<Navigator['sendBeacon']>) {
        if (window.__refused < 3) return !++window.__refused;
        return send.apply(this, args);
      };
    });
    const img = requestsTo(page, '/v1/img', 'request');
    const ingest = requestsTo(page, '/v1/ingest');
    await open(page, site, key);
    await page.evaluate(() => window.spdt('purchase', { order_id: 'retry-1', value: 5, currency: 'EUR' }));

    const stored = await site.waitForEvents(key, 2);
    expect(stored.map((e) => e.action).sort()).toEqual(['purchase', 'view']);
    expect(await page.evaluate(() => window.__refused)).toBe(3);
    // Both stayed queued and were sent once each: no duplicates reached the network.
    await page.evaluate(() => window.spdt('custom_event_1', { marker: 'end' }));
    const all = await waitFor(site, key, (e) => e.body.marker === 'end');
    expect(all).toHaveLength(3);
    expectEachSentOnce(await delivered(ingest, all), all);
    expect(img).toEqual([]);
    expectClean(seen);
  });
});

test.describe('SPEC §6: leaving the page', () => {
  test('an event fired in a click handler on a link that navigates away is delivered, 10 times out of 10', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const away = site.page(html('', '<p>elsewhere</p>'));
    const url = site.page(
      html(
        spotifySnippet('/ping.min.js', key),
        `<a id="go" href="${away}">go</a>
         <script>document.getElementById('go').addEventListener('click', function () {
           spdt('custom_event_2', { run: new URLSearchParams(location.search).get('run') });
         });</script>`,
      ),
    );
    for (let run = 0; run < 10; run++) {
      await page.goto(url + '?run=' + run);
      await tagLoaded(page);
      await page.click('#go');
      await page.waitForURL(away);
    }
    await expect.poll(async () => (await site.events(key)).filter((e) => e.action === 'custom_event_2').length).toBe(10);
    const clicks = (await site.events(key)).filter((e) => e.action === 'custom_event_2');
    expect(clicks.map((e) => Number(e.body.run)).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expectClean(seen);
  });

  test('an event called right before location.href = … in the same task is delivered', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const away = site.page(html('', '<p>elsewhere</p>'));
    await open(page, site, key, '');
    await page.evaluate((away) => {
      window.spdt('purchase', { order_id: 'leaving-1', value: 12, currency: 'GBP' });
      location.href = away;
    }, away);
    await page.waitForURL(away);
    const [purchase] = await site.waitForEvents(key, 1);
    expect(purchase.body).toMatchObject({ order_id: 'leaving-1', value: 12, currency: 'GBP' });
    expectClean(seen);
  });

  test('visibilitychange to hidden flushes at once, before the send timer could fire', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    // Records what the browser is handed (and still hands it over).
    await page.addInitScript(() => {
      const send = Navigator.prototype.sendBeacon;
      window.__beacons = [];
      Navigator.prototype.sendBeacon = function (this: Navigator, url: string | URL, data?: BodyInit | null) {
        window.__beacons.push(String(data));
        return send.call(this, url, data);
      };
    });
    await open(page, site, key, '');
    // Headless Chromium keeps a page 'visible' behind another tab (bringToFront does not hide it),
    // so the hiding is emulated: the state the browser would report, and its event.
    const handedOver = await page.evaluate(() => {
      window.spdt('lead', { type: 'hidden-flush' });
      const before = window.__beacons.length;
      Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
      Object.defineProperty(document, 'hidden', { value: true, configurable: true });
      document.dispatchEvent(new Event('visibilitychange', { bubbles: true }));
      return { before, after: window.__beacons.slice(before) }; // still the same task: no timer ran
    });
    expect(handedOver.before).toBe(0);
    expect(handedOver.after).toHaveLength(1);
    expect(handedOver.after[0]).toContain('hidden-flush');
    const [lead] = await site.waitForEvents(key, 1);
    expect(lead).toMatchObject({ action: 'lead', body: { type: 'hidden-flush' } });
    expectClean(seen);
  });

  test('closing the page right after a call delivers the event (pagehide)', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    await open(page, site, key, '');
    await page.evaluate(() => window.spdt('purchase', { order_id: 'closing-1', value: 3, currency: 'EUR' }));
    await page.close({ runBeforeUnload: true });
    const [purchase] = await site.waitForEvents(key, 1);
    expect(purchase.body.order_id).toBe('closing-1');
    expectClean(seen);
  });

  test("an event the page calls in its own pagehide handler is flushed by the pixel's pagehide", async ({ page, site, browserName }) => {
    const key = newKey();
    const seen = watchPage(page);
    // The site's listener is registered before the tag's, so it runs first; no timer runs after pagehide.
    const leaveScript = `<script>addEventListener('pagehide', function () { spdt('custom_event_3', { when: 'pagehide' }); });</script>`;
    const url = site.page(html(leaveScript + spotifySnippet('/ping.min.js', key, '')));
    await page.goto(url);
    await tagLoaded(page);
    // Firefox tears a closing tab's document down while its pagehide runs (see playwright.config.ts):
    // a beacon made a millisecond in is lost, by whatever script. There the page is left by navigation.
    if (browserName === 'firefox') await page.goto(site.page(html('', '<p>next page</p>')));
    else await page.close({ runBeforeUnload: true });
    const [event] = await site.waitForEvents(key, 1);
    expect(event).toMatchObject({ action: 'custom_event_3', body: { when: 'pagehide' } });
    expectClean(seen);
  });
});
