import { test, expect, html, spotifySnippet, newKey, tagLoaded, watchPage, expectClean } from './fixtures';

test.describe('SPEC §1: the loader snippet', () => {
  test("Spotify's own snippet works unchanged and a view reaches the collector", async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    await page.goto(site.page(html(spotifySnippet('/ping.min.js', key))));
    await tagLoaded(page);
    const [view] = await site.waitForEvents(key, 1);
    expect(view).toMatchObject({ key, action: 'view', transport: 'beacon' });
    expect(view.uid).toMatch(/^[0-9a-f]{32}$/);
    expect(view.body.url).toBe(page.url());
    expectClean(seen);
  });
});
