/**
 * SPEC §6 (the outbox) and BROWSER-NOTES: offline, leaving the page offline, two tabs, the outbox
 * bound, a collector that fails, storage that throws — the real tag in each engine against the real
 * collector, with the browser's own network controls (context.setOffline, page.route).
 */
import type { Page } from '@playwright/test';
import { test, expect, html, spotifySnippet, newKey, tagLoaded, watchPage, recordRequests, type Site, expectClean } from './fixtures';

type Requests = ReturnType<typeof recordRequests>;
interface Persisted {
  key: string;
  action: string;
  event_id: string;
  body: Record<string, any>;
}

/** A page with Spotify's snippet for `key`; `calls` after `conf` (none by default: no view). */
const tagPage = (key: string, calls = '') => html(spotifySnippet('/ping.min.js', key, calls));

const call = (page: Page, ...args: unknown[]) => page.evaluate((a) => (window as any).spdt(...a), args);

/** `localStorage['__spdt_outbox']`, parsed ([] when absent). */
const outbox = (page: Page): Promise<Persisted[]> =>
  page.evaluate(() => JSON.parse(localStorage.getItem('__spdt_outbox') || '[]'));

/** Waits until the persisted outbox holds `count` events, and returns them. */
async function waitForOutbox(page: Page, count: number): Promise<Persisted[]> {
  await expect.poll(async () => (await outbox(page)).length, { message: `${count} events in __spdt_outbox` }).toBe(count);
  return outbox(page);
}

/**
 * The event_ids of `key` in every POST /v1/ingest the page really sent (one entry per time it was
 * sent). Counted when the collector's answer arrives: Chromium also reports a request for a beacon
 * that `sendBeacon` refused (keepalive quota full, SPEC §6), which never goes out.
 */
function recordSent(page: Page) {
  const bodies: string[] = [];
  page.on('requestfinished', (r) => {
    if (r.method() == 'POST' && r.url().includes('/v1/ingest')) bodies.push(r.postData() ?? '');
  });
  return (key: string): string[] =>
    bodies
      .flatMap((body) => JSON.parse(body).batch.filter((item: any) => item.pid == key))
      .flatMap((item: any) => item.events.map((e: any) => e.event_id as string));
}

/** A page with the tag and a fresh key, watched: its errors, its requests and what the tag sent. */
async function openTagPage(page: Page, site: Site) {
  const key = newKey();
  const seen = watchPage(page);
  const requests = recordRequests(page);
  const sent = recordSent(page);
  await page.goto(site.page(tagPage(key)));
  await tagLoaded(page);
  return { key, seen, requests, sent };
}

/** Waits until every event the collector stored for `key` has been seen sent; returns what was sent. */
async function sentIds(sent: ((key: string) => string[])[], site: Site, key: string): Promise<string[]> {
  const stored = (await site.events(key)).map((e) => e.event_id);
  const all = () => sent.flatMap((ids) => ids(key));
  await expect.poll(() => stored.filter((id) => !all().includes(id))).toEqual([]);
  return all();
}

/** Sends one more event and waits for it: anything sent twice before it has been recorded by then. */
async function sendMarker(page: Page, site: Site, key: string, total: number) {
  await call(page, 'custom_event_5', { marker: total });
  await site.waitForEvents(key, total);
}

/** Records errors and unhandled rejections from inside the page too. */
const trapErrors = (page: Page) =>
  page.addInitScript(() => {
    const errors: string[] = ((window as any).__errors = []);
    addEventListener('error', (e) => errors.push('error: ' + e.message));
    addEventListener('unhandledrejection', (e) => errors.push('unhandledrejection: ' + String(e.reason)));
  });

const pageErrors = (page: Page) => page.evaluate(() => (window as any).__errors as string[]);

test.describe('SPEC §6 the outbox: offline', () => {
  test('events called offline wait in localStorage and are stored exactly once when back online', { tag: ['@needs-offline'] }, async ({ page, context, site }) => {
    const { key, seen, requests, sent } = await openTagPage(page, site);

    await context.setOffline(true);
    expect(await page.evaluate(() => navigator.onLine)).toBe(false);
    await page.evaluate(() => {
      const spdt = (window as any).spdt;
      spdt('lead', { type: 'offline' });
      spdt('signup', { sign_up_method: 'email' });
      spdt('purchase', { value: 5, currency: 'USD', order_id: 'o-1' });
    });
    const persisted = await waitForOutbox(page, 3);
    expect(persisted.map((e) => [e.key, e.action])).toEqual([[key, 'lead'], [key, 'signup'], [key, 'purchase']]);
    expect(requests.filter((r) => r.url.includes('/v1/'))).toEqual([]);

    await context.setOffline(false);
    const events = await site.waitForEvents(key, 3);
    expect(events.map((e) => e.event_id)).toEqual(persisted.map((e) => e.event_id));
    expect(events.map((e) => e.body.order_id ?? e.body.type ?? e.body.sign_up_method)).toEqual(['offline', 'email', 'o-1']);
    await sendMarker(page, site, key, 4);
    const ids = await sentIds([sent], site, key);
    expect(ids.sort()).toEqual((await site.events(key)).map((e) => e.event_id).sort());
    expect(await page.evaluate(() => localStorage.getItem('__spdt_outbox'))).toBeNull();
    expectClean(seen);
  });

  test('events of a page left while offline are delivered, exactly once, by the next page load', { tag: ['@needs-offline', '@needs-offline-answer'] }, async ({ page, context, site }) => {
    const { key, seen, requests, sent } = await openTagPage(page, site);

    await context.setOffline(true);
    await call(page, 'addtocart', { product_id: 'p-1', quantity: 2 });
    await call(page, 'checkout', { value: 20, currency: 'EUR' });
    const persisted = await waitForOutbox(page, 2);
    // Leaving while offline, for another page of the site, which an offline browser can only show
    // from a cache: the test answers it as a service worker would. (A navigation that fails with
    // ERR_INTERNET_DISCONNECTED is no use here: Chromium then ends the offline emulation of the page
    // being left, whose pagehide sees navigator.onLine === true and whose beacon escapes both the
    // emulation and Playwright's request events.)
    const other = site.page(html('', '<p>other page</p>'));
    await page.route(other, (route) => route.fulfill({ contentType: 'text/html', body: html('', '<p>offline copy</p>') }));
    await page.goto(other);
    expect(await page.evaluate(() => [document.body.textContent, navigator.onLine])).toEqual(['offline copy', false]);
    expect(await outbox(page)).toEqual(persisted);
    expect(requests.filter((r) => r.url.includes('/v1/'))).toEqual([]);

    await context.setOffline(false);
    await page.goto(site.page(tagPage(key)));
    await tagLoaded(page);
    const events = await site.waitForEvents(key, 2);
    expect(events.map((e) => e.action)).toEqual(['addtocart', 'checkout']);
    expect(events.map((e) => e.event_id)).toEqual(persisted.map((e) => e.event_id));
    await sendMarker(page, site, key, 3);
    const ids = await sentIds([sent], site, key);
    expect(ids).toHaveLength(3);
    expect(new Set(ids).size).toBe(3);
    expectClean(seen);
  });

  test('two tabs offline with events, back online: every event is sent by one tab only, and stored once', { tag: ['@needs-offline', '@needs-tab-requests'] }, async ({ page, context, site }) => {
    const key = newKey();
    const tabs = [page, await context.newPage()];
    const seen = tabs.map(watchPage);
    const sent = tabs.map(recordSent);
    for (const tab of tabs) {
      await tab.goto(site.page(tagPage(key)));
      await tagLoaded(tab);
    }

    await context.setOffline(true);
    for (const [i, tab] of tabs.entries()) {
      await tab.evaluate((tabNo) => {
        for (let n = 0; n < 3; n++) (window as any).spdt('custom_event_1', { tab: tabNo, n });
      }, i);
      await waitForOutbox(tab, 3 * (i + 1));
    }
    // localStorage reaches other tabs asynchronously in Chromium: both must see all six first.
    const persisted = await waitForOutbox(tabs[0], 6);

    await context.setOffline(false);
    const events = await site.waitForEvents(key, 6);
    expect(events.map((e) => e.event_id).sort()).toEqual(persisted.map((e) => e.event_id).sort());
    await sendMarker(tabs[0], site, key, 7);
    await sendMarker(tabs[1], site, key, 8);

    const ids = await sentIds(sent, site, key);
    for (const e of persisted) expect(ids.filter((id) => id == e.event_id), `${e.event_id} sent once`).toHaveLength(1);
    expect(await site.events(key)).toHaveLength(8);
    for (const s of seen) {
      expectClean(s);
    }
  });

  test('with cookies: false the outbox stays in page memory, and is sent once back online', { tag: ['@needs-offline'] }, async ({ page, context, site }) => {
    const key = newKey();
    const markerKey = newKey();
    const seen = watchPage(page);
    const sent = recordSent(page);
    // A second, independent pixel (the npm build, cookies on) whose outbox does use localStorage:
    // once its event is persisted, the tag under test has had its own chance to persist.
    const marker = `<script type="module">import { createPixel } from '/dist/index.mjs';
window.marker = createPixel({ key: '${markerKey}' });</script>`;
    await page.goto(site.page(html(spotifySnippet('/ping.min.js', key, "w.spdt('conf', { cookies: false });") + marker)));
    await tagLoaded(page);
    await page.waitForFunction(() => (window as any).marker);

    await context.setOffline(true);
    await page.evaluate(() => {
      (window as any).spdt('lead', { type: 'memory' });
      (window as any).spdt('signup');
      (window as any).marker('custom_event_5', { marker: 1 });
    });
    const persisted = await waitForOutbox(page, 1);
    expect(persisted.map((e) => e.key)).toEqual([markerKey]);

    await context.setOffline(false);
    const events = await site.waitForEvents(key, 2);
    expect(events.map((e) => e.action)).toEqual(['lead', 'signup']);
    for (const e of events) expect(e).not.toHaveProperty('uid');
    await site.waitForEvents(markerKey, 1);
    await sendMarker(page, site, key, 3);
    const ids = await sentIds([sent], site, key);
    expect(ids).toHaveLength(3);
    expect(new Set(ids).size).toBe(3);
    expectClean(seen);
  });

  test('the outbox keeps at most 500 events, the oldest dropped', { tag: ['@needs-offline'] }, async ({ page, context, site }) => {
    const { key, seen, requests, sent } = await openTagPage(page, site);

    await context.setOffline(true);
    await page.evaluate(() => {
      for (let n = 0; n < 510; n++) (window as any).spdt('custom_event_1', { n });
    });
    const persisted = await waitForOutbox(page, 500);
    const expected = Array.from({ length: 500 }, (_, i) => i + 10);
    expect(persisted.map((e) => e.body.n)).toEqual(expected);

    await context.setOffline(false);
    await site.waitForEvents(key, 500);
    await sendMarker(page, site, key, 501);
    const events = await site.events(key);
    expect(events).toHaveLength(501);
    expect(events.filter((e) => e.action == 'custom_event_1').map((e) => e.body.n).sort((a, b) => a - b)).toEqual(expected);
    const ids = await sentIds([sent], site, key);
    expect(ids).toHaveLength(501);
    expect(new Set(ids).size).toBe(501);
    for (const r of requests.filter((r) => r.url.includes('/v1/ingest'))) expect(new TextEncoder().encode(r.body).length).toBeLessThanOrEqual(65536);
    expectClean(seen);
  });
});

test.describe('SPEC §2/§6: a collector that fails never breaks the page', () => {
  const failures = [
    {
      name: 'refuses connections',
      fail: (route: any) => route.abort('connectionrefused'),
      logged: /ERR_CONNECTION_REFUSED/,
      happened: (page: Page) => page.waitForEvent('requestfailed', (r) => r.url().includes('/v1/ingest')),
    },
    {
      name: 'answers 500',
      fail: (route: any) => route.fulfill({ status: 500, contentType: 'application/json', body: '{"error":"internal error"}' }),
      logged: /status of 500/,
      happened: (page: Page) => page.waitForResponse((r) => r.url().includes('/v1/ingest') && r.status() == 500),
    },
  ];
  for (const { name, fail, logged, happened } of failures)
    test(`the collector ${name}: no page error, no unhandled rejection; later events still go out`, async ({ page, site, browserName }) => {
      const key = newKey();
      const seen = watchPage(page);
      await trapErrors(page);
      await page.route('**/v1/ingest', fail);
      const failed = happened(page);
      await page.goto(site.page(tagPage(key, "w.spdt('view'); w.spdt('lead', { value: 1, currency: 'USD' });")));
      await tagLoaded(page);
      await failed;
      const failedAgain = happened(page);
      await call(page, 'purchase', { value: 9, currency: 'USD', order_id: 'lost' });
      await failedAgain;

      await page.unroute('**/v1/ingest');
      await call(page, 'signup', { sign_up_method: 'after' });
      await expect.poll(async () => (await site.events(key)).map((e) => e.action)).toContain('signup');
      expect(seen.pageErrors).toEqual([]);
      expect(await pageErrors(page)).toEqual([]);
      // The browser's own report of the failed request: Chromium logs one, Firefox none (and in
      // WebKit the harness sees only the page's own console calls).
      if (browserName === 'chromium') expect(seen.consoleErrors.length).toBeGreaterThan(0);
      else expect(seen.consoleErrors).toEqual([]);
      expect(seen.consoleErrors.filter((m) => !logged.test(m))).toEqual([]);
    });
});

test.describe('SPEC §4: storage and cookies that throw', () => {
  test('localStorage, sessionStorage and document.cookie throwing on every access: events still delivered, silently', async ({ page, site }) => {
    await trapErrors(page);
    // Chromium defines localStorage/sessionStorage on the window object itself (Window is a global),
    // document.cookie on Document.prototype: these are the accessors the page really uses.
    await page.addInitScript(() => {
      const blocked = () => {
        throw new DOMException('The operation is insecure.', 'SecurityError');
      };
      for (const name of ['localStorage', 'sessionStorage']) Object.defineProperty(window, name, { get: blocked, configurable: true });
      Object.defineProperty(Document.prototype, 'cookie', { get: blocked, set: blocked, configurable: true });
    });
    const key = newKey();
    const seen = watchPage(page);
    const logged: string[] = [];
    page.on('console', (m) => logged.push(`${m.type()}: ${m.text()}`));
    await page.goto(site.page(tagPage(key, "w.spdt('view');"), { host: 'www.example.co.uk' }) + '?spclid=click-9');
    await tagLoaded(page);
    expect(
      await page.evaluate(() =>
        [() => localStorage, () => sessionStorage, () => document.cookie].map((f) => {
          try {
            f();
            return 'read';
          } catch {
            return 'threw';
          }
        }),
      ),
    ).toEqual(['threw', 'threw', 'threw']);

    await call(page, 'alias', { email: 'blocked@example.org' });
    await call(page, 'purchase', { value: 3, currency: 'GBP', order_id: 'o-9' });
    const events = await site.waitForEvents(key, 3);
    expect(events.map((e) => e.action)).toEqual(['view', 'alias', 'purchase']);
    for (const e of events) {
      expect(e.uid).toMatch(/^[0-9a-f]{32}$/);
      expect(e.uid).toBe(events[0].uid);
      expect(e.sid).toMatch(/^[0-9a-f]{32}$/);
      expect(e.sid).toBe(events[0].sid);
      expect(e.cid).toBe('click-9');
    }
    expect(events[2].alias).toMatchObject({ hashed_email: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(seen.pageErrors).toEqual([]);
    expect(await pageErrors(page)).toEqual([]);
    expect(logged).toEqual([]);
  });
});
