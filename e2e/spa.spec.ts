/**
 * SPEC §3 `spa` and the view rule: automatic views on History API route changes and on pages
 * restored from the back/forward cache, in each engine against the real collector.
 *
 * Absence of a view is proven with a marker: after the change under test, the page calls
 * `custom_event_1` and, once the collector holds the marker, the events before it are final.
 */
import type { Page } from '@playwright/test';
import { test, expect, html, spotifySnippet, newKey, tagLoaded, watchPage, type Site, type StoredEvent, expectClean } from './fixtures';

declare global {
  interface Window {
    spdt: any;
    __shows: boolean[];
  }
}

/** Opens a page with Spotify's snippet and waits for its first view to be stored. */
async function open(page: Page, site: Site, key: string, calls?: string, headers?: Record<string, string>) {
  const url = site.page(html(spotifySnippet('/ping.min.js', key, calls)), { headers });
  await page.goto(url);
  await tagLoaded(page);
  await site.waitForEvents(key, 1);
  return url;
}

/** Sends the marker event and returns every event stored for `key` up to and including it. */
async function untilMarker(page: Page, site: Site, key: string): Promise<StoredEvent[]> {
  await page.evaluate(() => window.spdt('custom_event_1', { marker: 'end' }));
  let events: StoredEvent[] = [];
  await expect.poll(async () => (events = await site.events(key)).some((e) => e.body.marker === 'end')).toBe(true);
  return events;
}

// The back/forward cache is on in every engine, as in a real browser (see playwright.config.ts).

/** Init script: records `persisted` of every pageshow of the document. */
function recordPageshow() {
  window.__shows = [];
  addEventListener('pageshow', (e) => window.__shows.push(e.persisted));
}

/** After going back: the restored document was shown again, or a new one was shown. */
const pageShown = () =>
  window.__shows &&
  (window.__shows.length > 1 ||
    ((performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming).type == 'back_forward' && window.__shows.length > 0));

const summary = (events: StoredEvent[]) => events.map((e) => [e.action, e.body.url]);
/** Rows in a stable order: events sent by separate requests may reach the collector in either order. */
const unordered = (rows: unknown[][]) => rows.map((r) => JSON.stringify(r)).sort();
const at = (url: string, path: string) => new URL(path, url).href;


test.describe('SPEC §3 spa: automatic views on route changes', () => {
  test('pushState to a new path sends a view with the new URL', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const url = await open(page, site, key);
    await page.evaluate(() => history.pushState({}, '', '/app/products'));
    const events = await site.waitForEvents(key, 2);
    expect(summary(events)).toEqual([
      ['view', url],
      ['view', at(url, '/app/products')],
    ]);
    expectClean(seen);
  });

  test('a query change sends a view', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const url = await open(page, site, key);
    await page.evaluate(() => history.pushState({}, '', location.pathname + '?page=2'));
    const events = await site.waitForEvents(key, 2);
    expect(summary(events)).toEqual([
      ['view', url],
      ['view', url + '?page=2'],
    ]);
    expectClean(seen);
  });

  test('a change of hash alone is not a view', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const url = await open(page, site, key);
    await page.evaluate(() => history.pushState({}, '', '#section-1'));
    await page.evaluate(
      () =>
        new Promise<void>((resolve) => {
          addEventListener('hashchange', () => resolve(), { once: true });
          location.hash = 'section-2';
        }),
    );
    const events = await untilMarker(page, site, key);
    expect(summary(events)).toEqual([
      ['view', url],
      ['custom_event_1', url + '#section-2'],
    ]);
    expectClean(seen);
  });

  test('replaceState to the same URL is not a view', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const url = await open(page, site, key);
    await page.evaluate(() => history.replaceState({ some: 'state' }, '', location.href));
    const events = await untilMarker(page, site, key);
    expect(summary(events)).toEqual([
      ['view', url],
      ['custom_event_1', url],
    ]);
    expectClean(seen);
  });

  test('replaceState to another path is a view', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const url = await open(page, site, key);
    await page.evaluate(() => history.replaceState({}, '', '/app/replaced'));
    const events = await site.waitForEvents(key, 2);
    expect(summary(events)[1]).toEqual(['view', at(url, '/app/replaced')]);
    expectClean(seen);
  });

  test('history.back() sends a view for the URL popped to', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const url = await open(page, site, key);
    await page.evaluate(() => history.pushState({}, '', '/app/step-2'));
    await site.waitForEvents(key, 2);
    await page.evaluate(
      () =>
        new Promise<void>((resolve) => {
          addEventListener('popstate', () => resolve(), { once: true });
          history.back();
        }),
    );
    const events = await site.waitForEvents(key, 3);
    expect(summary(events)).toEqual([
      ['view', url],
      ['view', at(url, '/app/step-2')],
      ['view', url],
    ]);
    expectClean(seen);
  });

  test('spa: false sends no automatic view', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const url = await open(page, site, key, "w.spdt('conf', { spa: false }); w.spdt('view');");
    await page.evaluate(() => history.pushState({}, '', '/app/a?x=1'));
    await page.evaluate(() => history.replaceState({}, '', '/app/b'));
    await page.evaluate(
      () =>
        new Promise<void>((resolve) => {
          addEventListener('popstate', () => resolve(), { once: true });
          history.back();
        }),
    );
    const events = await untilMarker(page, site, key);
    expect(summary(events)).toEqual([
      ['view', url],
      ['custom_event_1', url],
    ]);
    expectClean(seen);
  });

  test('a click id in a pushState URL is captured and carried as cid on later events', async ({ page, context, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const url = await open(page, site, key);
    await page.evaluate(() => history.pushState({}, '', '/app/landing?spclid=spa-click'));
    await site.waitForEvents(key, 2);
    await page.evaluate(() => history.pushState({}, '', '/app/next')); // the parameter is gone
    const events = await untilMarker(page, site, key);
    expect(unordered(events.map((e) => [e.action, e.cid, new URL(e.body.url).pathname]))).toEqual(
      unordered([
        ['view', null, new URL(url).pathname],
        ['view', 'spa-click', '/app/landing'],
        ['view', 'spa-click', '/app/next'],
        ['custom_event_1', 'spa-click', '/app/next'],
      ]),
    );
    expect((await context.cookies()).find((c) => c.name === 'sp_click_id')?.value).toBe('spa-click');
    expectClean(seen);
  });
});

test.describe('SPEC §3: the view rule', () => {
  test("an app's own view right after its pushState is sent once, not twice", async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const url = await open(page, site, key);
    await page.evaluate(() => {
      history.pushState({}, '', '/app/cart');
      window.spdt('view'); // what a router integration does on every route change
    });
    const events = await untilMarker(page, site, key);
    expect(unordered(summary(events))).toEqual(
      unordered([
        ['view', url],
        ['view', at(url, '/app/cart')],
        ['custom_event_1', at(url, '/app/cart')],
      ]),
    );
    expectClean(seen);
  });

  test('the same view twice within 1 s is dropped, a view for another key is not', async ({ page, site }) => {
    const key = newKey();
    const other = newKey();
    const seen = watchPage(page);
    const url = await open(page, site, key, `w.spdt('view'); w.spdt('view'); w.spdt('view', {}, { key: '${other}' }); w.spdt('custom_event_1', { marker: 'end' });`);
    let events: StoredEvent[] = [];
    await expect.poll(async () => (events = await site.events(key)).some((e) => e.body.marker === 'end')).toBe(true);
    expect(summary(events)).toEqual([
      ['view', url],
      ['custom_event_1', url],
    ]);
    expect(summary(await site.waitForEvents(other, 1))).toEqual([['view', url]]);
    expectClean(seen);
  });
});

test.describe('SPEC §3 spa: pages loaded again', () => {
  test('a reload (a new document, not restored) sends a view from the snippet', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const url = await open(page, site, key);
    await page.reload();
    const events = await site.waitForEvents(key, 2);
    expect(summary(events)).toEqual([
      ['view', url],
      ['view', url],
    ]);
    expect(events[1].event_id).not.toBe(events[0].event_id);
    expectClean(seen);
  });

  test('a page restored from the back/forward cache (pageshow, persisted) sends a view', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    await page.addInitScript(recordPageshow);
    // The fixture's default Cache-Control: no-store would keep the page out of the cache.
    const url = await open(page, site, key, undefined, { 'Cache-Control': 'no-cache' });
    // The restored view must not be the same URL as the last view within 1 s (the view rule):
    // a hash change is no view but makes the restored URL differ, however fast the test runs.
    await page.evaluate(() => history.replaceState({}, '', '#left'));
    const elsewhere = site.page(html(''), { headers: { 'Cache-Control': 'no-cache' } });
    await page.goto(elsewhere);
    await page.goBack({ waitUntil: 'commit' }); // a restore fires no load event
    await page.waitForFunction(pageShown);

    // The browser really restored the same document: its pageshow history is [load, restore].
    expect(await page.evaluate(() => window.__shows)).toEqual([false, true]);
    const events = await site.waitForEvents(key, 2);
    expect(summary(events)).toEqual([
      ['view', url],
      ['view', url + '#left'],
    ]);
    expect(events[1].sid).toBe(events[0].sid);
    expectClean(seen);
  });

  test('going back to a page the cache refused (no-store) loads it anew, and its snippet sends a view', async ({ page, site, browserName }) => {
    const key = newKey();
    const seen = watchPage(page);
    await page.addInitScript(recordPageshow);
    const url = await open(page, site, key); // served with Cache-Control: no-store
    // As above: the view on return must not be the last view's URL within 1 s (the view rule).
    await page.evaluate(() => history.replaceState({}, '', '#left'));
    await page.goto(site.page(html('')));
    await page.goBack();
    await page.waitForFunction(pageShown);

    // Chromium and Firefox refuse a no-store page: a new document, navigated to by back/forward,
    // shown once without persisted. WebKit keeps no-store pages in its back/forward cache too: the
    // same document is shown again (its navigation entry still the first load's), and the tag's
    // pageshow sends the view instead of the snippet.
    const restored = browserName === 'webkit';
    expect(await page.evaluate(() => [(performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming).type, window.__shows])).toEqual(
      restored ? ['navigate', [false, true]] : ['back_forward', [false]],
    );
    const events = await site.waitForEvents(key, 2);
    expect(summary(events)).toEqual([
      ['view', url],
      ['view', url + '#left'],
    ]);
    expectClean(seen);
  });
});
