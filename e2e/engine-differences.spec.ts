/**
 * What the tag meets differently in each engine, asserted per engine (the rest of the suite runs
 * the same scenarios in all three: see e2e/engines/harness.ts).
 */
import { test, expect, html, spotifySnippet, newKey, tagLoaded, watchPage, expectClean } from './fixtures';
import type { EngineContextOptions } from './engines/firefox';

test.describe('SPEC §5: Global Privacy Control from the browser itself', () => {
  test('Firefox with GPC on: navigator.globalPrivacyControl and Sec-GPC, and every event opts out of targeting; the others ship no GPC', async ({ browser, browserName, site }) => {
    // Only Firefox has a GPC setting (privacy.globalprivacycontrol.enabled); Chromium and WebKit
    // have neither the property nor the header, so their events never opt out by themselves.
    const gpc = browserName === 'firefox';
    const context = await browser.newContext({ globalPrivacyControl: true } as EngineContextOptions);
    try {
      const page = await context.newPage();
      const seen = watchPage(page);
      const key = newKey();
      const headers: (string | undefined)[] = [];
      page.on('request', (r) => new URL(r.url()).pathname === '/v1/ingest' && headers.push(r.headers()['sec-gpc']));
      await page.goto(site.page(html(spotifySnippet('/ping.min.js', key))));
      await tagLoaded(page);
      expect(await page.evaluate(() => (navigator as any).globalPrivacyControl)).toBe(gpc ? true : undefined);
      await page.evaluate(() => (window as any).spdt('purchase', { value: 1, currency: 'USD' }));
      const events = await site.waitForEvents(key, 2);
      // The collector stores opt_out_targeting only when the tag sent it (true).
      for (const e of events) expect(e.opt_out_targeting).toBe(gpc ? true : undefined);
      await expect.poll(() => headers.length).toBeGreaterThan(0);
      expect(headers.every((h) => h === (gpc ? '1' : undefined))).toBe(true);
      expectClean(seen);
    } finally {
      await context.close();
    }
  });
});
