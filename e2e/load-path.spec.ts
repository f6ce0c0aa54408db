// What the tag costs a page that loads it: not timings (those are `npm run bench`), but the things
// that make a load slow in any browser and can be checked exactly.
import type { Page } from '@playwright/test';
import { test, expect, html, spotifySnippet, newKey, tagLoaded, expectClean, watchPage, type Site } from './fixtures';

const HOST = 'www.example.co.uk';

/**
 * Counts, from before any script of the page runs, every access to `window.localStorage` and
 * `window.sessionStorage`: Chromium defines them on the window object itself, and reading either is
 * what opens the storage area (the largest single cost of a load, SPEC §4).
 */
const countStorageOpens = (page: Page) =>
  page.addInitScript(() => {
    const opens: Record<string, number> = ((window as any).__opens = { localStorage: 0, sessionStorage: 0 });
    for (const name of ['localStorage', 'sessionStorage'] as const) {
      const native = Object.getOwnPropertyDescriptor(window, name)!;
      Object.defineProperty(window, name, {
        configurable: true,
        enumerable: true,
        get() {
          opens[name]++;
          return native.get!.call(this);
        },
      });
    }
  });
const opens = (page: Page) => page.evaluate(() => ({ ...(window as any).__opens }));

/** Loads a page with the snippet (a view, then a lead) and waits until the collector has `count` events of `key`. */
async function load(page: Page, site: Site, key: string, count: number, calls = "w.spdt('view'); w.spdt('lead', { type: 'load' });") {
  await page.goto(site.page(html(spotifySnippet('/ping.min.js', key, calls)), { host: HOST }));
  await tagLoaded(page);
  return site.waitForEvents(key, count);
}

test.describe('the load path', () => {
  test('ordinary calls throw nothing inside the tag, not even caught exceptions', { tag: ['@needs-cdp'] }, async ({ page, site }) => {
    // A caught exception still costs a stack capture (and source positions) on the main thread;
    // one per event crept in once (reading `options.key` of a call without options).
    const cdp = await page.context().newCDPSession(page);
    const scripts = new Map<string, string>(); // script id → URL
    const thrown: string[] = [];
    cdp.on('Debugger.scriptParsed', (e) => scripts.set(e.scriptId, e.url));
    cdp.on('Debugger.paused', (e) => {
      const top = e.callFrames[0];
      const url = (top && scripts.get(top.location.scriptId)) || '';
      // Only the tag's own exceptions count (not the page's, nor Playwright's helpers).
      if (url.endsWith('/ping.min.js'))
        thrown.push(`${(e.data as { description?: string })?.description?.split('\n')[0]} at column ${top.location.columnNumber}`);
      // The page may be closing when a pause arrives (the tag flushes at pagehide).
      cdp.send('Debugger.resume').catch(() => {});
    });
    await cdp.send('Debugger.enable');
    await cdp.send('Debugger.setPauseOnExceptions', { state: 'all' });

    const key = newKey();
    const seen = watchPage(page);
    const calls = `w.spdt('view');
      w.spdt('product', { value: '19.90', currency: 'eur', product_id: 42 });
      w.spdt('purchase', { value: 79.99, currency: 'USD', order_id: 'O-1', line_items: [{ product_id: 'p', quantity: 2 }] });
      w.spdt('alias', { email: ' Someone@Example.com ', id: 'u-1' });
      w.spdt('custom', { event_name: 'quiz_done', score: 7 });`;
    await page.goto(site.page(html(spotifySnippet('/ping.min.js', key, calls))) + '?spclid=click-1');
    await tagLoaded(page);
    const events = await site.waitForEvents(key, 5);
    expect(events.map((e) => e.action)).toEqual(['view', 'product', 'purchase', 'alias', 'custom']);
    // The listener saw every exception of the page: none came from the tag.
    expect(thrown).toEqual([]);
    expectClean(seen);
    await cdp.send('Debugger.setPauseOnExceptions', { state: 'none' });
    await cdp.send('Debugger.disable');
  });
});

test.describe('SPEC §4: a load with nothing persisted opens no storage', () => {
  test('a view and an event, a new and a returning visitor, and leaving the page: localStorage and sessionStorage are never opened', async ({ page, context, site }) => {
    await countStorageOpens(page);
    const key = newKey();
    const seen = watchPage(page);
    const [view] = await load(page, site, key, 2);
    expect(await opens(page)).toEqual({ localStorage: 0, sessionStorage: 0 });
    // The one cookie read told the pixel that nothing waits in localStorage; what it wrote says so too.
    const jar = await context.cookies();
    expect(jar.map((c) => c.name).sort()).toEqual(['__spdt', '__spdt_m', '__spdt_s']);
    expect(jar.find((c) => c.name == '__spdt_m')!.value).toBe('3');

    // Hidden and left with everything delivered: nothing to persist.
    await page.evaluate(() => {
      dispatchEvent(new Event('pagehide'));
      (window as any).spdt('custom_event_1', { after: 'pagehide' });
    });
    const events = await load(page, site, key, 5);
    expect(events.map((e) => e.action)).toEqual(['view', 'lead', 'custom_event_1', 'view', 'lead']);
    expect(events[4].uid).toBe(view.uid);
    expect(events[4].sid).toBe(view.sid);
    expect(await opens(page)).toEqual({ localStorage: 0, sessionStorage: 0 });
    expectClean(seen);
  });

  test('an outbox left by an earlier page is found and sent by the next page load', { tag: ['@needs-offline'] }, async ({ page, context, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    await load(page, site, key, 1, "w.spdt('view');");
    await context.setOffline(true);
    await page.evaluate(() => (window as any).spdt('purchase', { value: 7, currency: 'EUR', order_id: 'o-left' }));
    await expect.poll(() => page.evaluate(() => localStorage.getItem('__spdt_outbox') ?? '')).toContain('o-left');
    expect((await context.cookies()).find((c) => c.name == '__spdt_m')!.value).toBe('3o');
    await page.close(); // offline: what pagehide could not send stays in the outbox

    await context.setOffline(false);
    const next = await context.newPage();
    await countStorageOpens(next);
    const seenNext = watchPage(next);
    const events = await load(next, site, key, 4);
    expect(events.map((e) => e.action).sort()).toEqual(['lead', 'purchase', 'view', 'view']);
    expect(events.find((e) => e.action == 'purchase')!.body.order_id).toBe('o-left');
    expect((await opens(next)).localStorage).toBeGreaterThan(0);
    expect((await opens(next)).sessionStorage).toBe(0);
    await expect.poll(async () => (await context.cookies()).find((c) => c.name == '__spdt_m')!.value).toBe('3'); // claimed
    expectClean(seen);
    expectClean(seenNext);
  });

  test('an alias stored by an earlier page is attached on the next, which opens localStorage (not sessionStorage)', async ({ page, context, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    await load(page, site, key, 2, "w.spdt('view'); w.spdt('alias', { id: 'u-7' });");
    expect((await context.cookies()).find((c) => c.name == '__spdt_m')!.value).toBe('3a');

    await countStorageOpens(page);
    const events = await load(page, site, key, 4);
    expect(events[2].alias).toEqual({ id: 'u-7' });
    expect(events[3].alias).toEqual({ id: 'u-7' });
    expect((await opens(page)).localStorage).toBeGreaterThan(0);
    expect((await opens(page)).sessionStorage).toBe(0);
    expectClean(seen);
  });

  test('what the earlier version of the tag left (a __spdt cookie, an alias and an outbox, no marker) is found, then marked', async ({ page, context, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const device = newKey();
    const url = site.page(html(''), { host: HOST });
    await page.goto(url);
    await context.addCookies([{ name: '__spdt', value: device, domain: '.example.co.uk', path: '/' }]);
    await page.evaluate(({ key, url }) => {
      localStorage.setItem('__spdt_alias', JSON.stringify({ id: 'u-old' }));
      const left = { key, action: 'signup', event_id: 'left-by-the-old-tag', time: Date.now(), body: { url } };
      localStorage.setItem('__spdt_outbox', JSON.stringify([left]));
    }, { key, url });

    const events = await load(page, site, key, 3);
    expect(events.map((e) => e.event_id)).toContain('left-by-the-old-tag');
    for (const e of events) expect(e.uid).toBe(device);
    expect(events.find((e) => e.action == 'view')!.alias).toEqual({ id: 'u-old' });
    await expect.poll(async () => (await context.cookies()).find((c) => c.name == '__spdt_m')?.value).toBe('3a');
    expect(await page.evaluate(() => localStorage.getItem('__spdt_outbox'))).toBeNull();
    expectClean(seen);
  });
});
