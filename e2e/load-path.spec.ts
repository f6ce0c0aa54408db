// What the tag costs a page that loads it: not timings (those are `npm run bench`), but the things
// that make a load slow in any browser and can be checked exactly.
import { test, expect, html, spotifySnippet, newKey, tagLoaded, expectClean, watchPage } from './fixtures';

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
