/**
 * SPEC §3 (cookies, cookie_domain, cookie_days, click_days, debug) and §4 (identity on the client):
 * the real tag in each engine writing real cookies on a real-looking hostname (www.example.co.uk,
 * where co.uk is a public suffix), checked against what the collector stored.
 */
import type { BrowserContext, Cookie, Page } from '@playwright/test';
import { test, expect, html, spotifySnippet, newKey, tagLoaded, watchPage, type Site, expectClean } from './fixtures';

const WWW = 'www.example.co.uk';
const DAY = 86400;
const HEX32 = /^[0-9a-f]{32}$/;

/** A page with Spotify's snippet on `host`; `calls` run after `conf {key}` (default: a view). */
function mount(site: Site, key: string, options: { calls?: string; host?: string } = {}): string {
  return site.page(html(spotifySnippet('/ping.min.js', key, options.calls)), { host: options.host ?? WWW });
}

async function cookie(context: BrowserContext, name: string): Promise<Cookie | undefined> {
  return (await context.cookies()).find((c) => c.name === name);
}

/** A cookie expiry (seconds) is `days` from now, within a minute. */
function expectExpiresInDays(c: Cookie | undefined, days: number) {
  expect(c, 'cookie present').toBeDefined();
  expect(Math.abs(c!.expires - (Date.now() / 1000 + days * DAY))).toBeLessThan(60);
}


/** Loads `url` and waits until the collector holds `count` events for `key`. */
async function visit(page: Page, site: Site, url: string, key: string, count: number) {
  await page.goto(url);
  return site.waitForEvents(key, count);
}

test.describe('SPEC §4: the __spdt device cookie', () => {
  test('is 32 hex at the root domain, path /, SameSite=Lax, not Secure on http, 365 days, no probe left, and is the uid sent', async ({ page, context, site, browserName }) => {
    const key = newKey();
    const seen = watchPage(page);
    const [view] = await visit(page, site, mount(site, key), key, 1);

    const jar = await context.cookies();
    expect(jar.map((c) => c.name).sort()).toEqual(['__spdt', '__spdt_m', '__spdt_s']); // no probe cookie
    const device = jar.find((c) => c.name == '__spdt')!;
    expect(device.value).toMatch(HEX32);
    expect(device.domain).toBe('.example.co.uk'); // the widest that accepts it, never .co.uk
    expect(device.path).toBe('/');
    expect(device.sameSite).toBe('Lax');
    expect(device.secure).toBe(false);
    expect(device.httpOnly).toBe(false);
    expectExpiresInDays(device, 365);
    expect(view.uid).toBe(device.value);
    // The marker: host-only, the root domain's label count (example.co.uk: 3), nothing stored.
    expect(jar.find((c) => c.name == '__spdt_m')).toMatchObject({ value: '3', domain: WWW, path: '/', sameSite: 'Lax', secure: false, httpOnly: false });
    expectExpiresInDays(jar.find((c) => c.name == '__spdt_m'), 400);
    // Firefox reports the probe's refused write at the public suffix co.uk; Chromium and WebKit
    // refuse it silently (e2e/engines/notices.ts).
    expect(seen.engineNotices).toHaveLength(browserName === 'firefox' ? 1 : 0);
    expectClean(seen);
  });

  test('the root domain is probed on the first page only; later pages, in another tab too, write no probe cookie', async ({ page, context, site }) => {
    // Every probe is a cookie write and read (the read waits for the browser); the answer is kept in __spdt_m.
    const countProbes = () => {
      const native = Object.getOwnPropertyDescriptor(Document.prototype, 'cookie')!;
      const probes: string[] = ((window as any).__probeWrites = []);
      Object.defineProperty(Document.prototype, 'cookie', {
        configurable: true,
        get() {
          return native.get!.call(this);
        },
        set(value: string) {
          if (value.startsWith('__spdt_probe=')) probes.push(value);
          native.set!.call(this, value);
        },
      });
    };
    const tab = await context.newPage();
    for (const p of [page, tab]) await p.addInitScript(countProbes);
    const key = newKey();
    const seen = [page, tab].map(watchPage);
    const probeWrites = (p: Page) => p.evaluate(() => (window as any).__probeWrites.length as number);
    const [first] = await visit(page, site, mount(site, key), key, 1);
    expect(await probeWrites(page)).toBeGreaterThan(0);

    const [, second] = await visit(page, site, mount(site, key), key, 2);
    expect(await probeWrites(page)).toBe(0);
    expect(second.uid).toBe(first.uid);
    const [, , third] = await visit(tab, site, mount(site, key), key, 3);
    expect(await probeWrites(tab)).toBe(0);
    expect(third.uid).toBe(first.uid);
    const device = (await context.cookies()).filter((c) => c.name == '__spdt');
    expect(device.map((c) => c.domain)).toEqual(['.example.co.uk']); // still renewed at the root domain
    seen.forEach(expectClean);
  });

  test('cookie_days and click_days change the lifetimes', async ({ page, context, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const url = mount(site, key, { calls: "w.spdt('conf', { cookie_days: 30, click_days: 7 }); w.spdt('view');" });
    await visit(page, site, url + '?spclid=clk-days', key, 1);
    expectExpiresInDays(await cookie(context, '__spdt'), 30);
    expectExpiresInDays(await cookie(context, 'sp_click_id'), 7);
    expectClean(seen);
  });

  test('cookie_domain is honoured', async ({ page, context, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const url = mount(site, key, { calls: `w.spdt('conf', { cookie_domain: '${WWW}' }); w.spdt('view');` });
    const [view] = await visit(page, site, url + '?spclid=clk-domain', key, 1);
    const jar = await context.cookies();
    expect(jar.map((c) => [c.name, c.domain]).sort()).toEqual([
      ['__spdt', '.' + WWW],
      ['__spdt_m', WWW], // host-only, whatever the cookie_domain
      ['__spdt_s', '.' + WWW],
      ['sp_click_id', '.' + WWW],
    ]);
    expect(view.uid).toBe(jar.find((c) => c.name === '__spdt')!.value);
    expectClean(seen);
  });

  test('the same uid on two pages of the site and on a sibling subdomain', async ({ page, context, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    await visit(page, site, mount(site, key), key, 1);
    await visit(page, site, mount(site, key), key, 2);
    const events = await visit(page, site, mount(site, key, { host: 'shop.example.co.uk' }), key, 3);

    const device = await cookie(context, '__spdt');
    expect(events.map((e) => e.uid)).toEqual([device!.value, device!.value, device!.value]);
    expect(new URL(events[2].body.url).hostname).toBe('shop.example.co.uk');
    expect((await context.cookies()).filter((c) => c.name === '__spdt')).toHaveLength(1); // one cookie, at the root
    expectClean(seen);
  });

  test('a page load renews the expiry and keeps the value', async ({ page, context, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    await visit(page, site, mount(site, key), key, 1);
    const first = (await cookie(context, '__spdt'))!;
    // As if the visitor came back after most of the lifetime: the cookie has 2 days left.
    await context.addCookies([{ ...first, expires: Math.round(Date.now() / 1000) + 2 * DAY }]);
    expectExpiresInDays(await cookie(context, '__spdt'), 2);

    const events = await visit(page, site, mount(site, key), key, 2);
    const renewed = await cookie(context, '__spdt');
    expect(renewed!.value).toBe(first.value);
    expectExpiresInDays(renewed, 365);
    expect(events[1].uid).toBe(first.value);
    expectClean(seen);
  });

  test('a __pdst cookie of the predecessor tag is adopted when there is no __spdt', async ({ page, context, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const legacy = newKey();
    await context.addCookies([{ name: '__pdst', value: legacy, domain: '.example.co.uk', path: '/' }]);
    const [view] = await visit(page, site, mount(site, key), key, 1);
    expect(view.uid).toBe(legacy);
    expect((await cookie(context, '__spdt'))!.value).toBe(legacy);
    expectClean(seen);
  });

  test('an existing __spdt wins over __pdst', async ({ page, context, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const current = newKey();
    await context.addCookies([
      { name: '__pdst', value: newKey(), domain: '.example.co.uk', path: '/' },
      { name: '__spdt', value: current, domain: '.example.co.uk', path: '/' },
    ]);
    const [view] = await visit(page, site, mount(site, key), key, 1);
    expect(view.uid).toBe(current);
    expectClean(seen);
  });

  test('on localhost the cookie is host-only', async ({ page, context, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const [view] = await visit(page, site, mount(site, key, { host: 'localhost' }), key, 1);
    const jar = await context.cookies();
    expect(jar.map((c) => [c.name, c.domain, c.name == '__spdt_m' ? c.value : '']).sort()).toEqual([
      ['__spdt', 'localhost', ''],
      ['__spdt_m', 'localhost', '0'], // 0: host-only
      ['__spdt_s', 'localhost', ''],
    ]);
    expect(view.uid).toBe(jar.find((c) => c.name == '__spdt')!.value);
    expect(view.sid).toBe(jar.find((c) => c.name == '__spdt_s')!.value);
    expectClean(seen);
  });
});

test.describe('SPEC §4: the session id (__spdt_s)', () => {
  test('is a cookie with the attributes of __spdt and 30 minutes, the same across pages and tabs, new in another browser context', async ({ page, context, site, browser }) => {
    const key = newKey();
    const seen = watchPage(page);
    await visit(page, site, mount(site, key), key, 1);
    const events = await visit(page, site, mount(site, key), key, 2);
    expect(events[0].sid).toMatch(HEX32);
    expect(events[1].sid).toBe(events[0].sid);
    const session = await cookie(context, '__spdt_s');
    expect(session).toMatchObject({ value: events[0].sid, domain: '.example.co.uk', path: '/', sameSite: 'Lax', secure: false, httpOnly: false });
    expectExpiresInDays(session, 1800 / DAY);
    expect(await page.evaluate(() => Object.keys(sessionStorage))).toEqual([]);

    const tab = await context.newPage();
    const inTab = await visit(tab, site, mount(site, key, { host: 'shop.example.co.uk' }), key, 3);
    expect(inTab[2].sid).toBe(events[0].sid);

    const other = await browser.newContext();
    try {
      const page2 = await other.newPage();
      const all = await visit(page2, site, mount(site, key), key, 4);
      expect(all[3].sid).toMatch(HEX32);
      expect(all[3].sid).not.toBe(events[0].sid);
      expect(all[3].uid).not.toBe(events[0].uid);
    } finally {
      await other.close();
    }
    expectClean(seen);
  });

  test('every send renews it to 1800 s; once it has expired the next page starts a new session', async ({ page, context, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const [first] = await visit(page, site, mount(site, key), key, 1);
    // As if the last send was 29 minutes ago: one minute left.
    const session = (await cookie(context, '__spdt_s'))!;
    await context.addCookies([{ ...session, expires: Math.round(Date.now() / 1000) + 60 }]);
    expectExpiresInDays(await cookie(context, '__spdt_s'), 60 / DAY);

    await page.evaluate(() => (window as any).spdt('lead', { type: 'renew' }));
    const events = await site.waitForEvents(key, 2);
    expect(events[1].sid).toBe(first.sid);
    await expect.poll(async () => (await cookie(context, '__spdt_s'))!.expires - Date.now() / 1000).toBeGreaterThan(1800 - 60);
    expectExpiresInDays(await cookie(context, '__spdt_s'), 1800 / DAY);

    // 30 minutes without a send: the browser has dropped it.
    await context.clearCookies({ name: '__spdt_s' });
    const later = await visit(page, site, mount(site, key), key, 3);
    expect(later[2].sid).toMatch(HEX32);
    expect(later[2].sid).not.toBe(first.sid);
    expect(later[2].uid).toBe(first.uid);
    expect((await cookie(context, '__spdt_s'))!.value).toBe(later[2].sid);
    expectClean(seen);
  });

  test("consent denied deletes it (and the marker) at every domain level", async ({ page, context, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const url = mount(site, key);
    const [view] = await visit(page, site, url, key, 1);
    const port = new URL(url).port;
    // Copies at the other levels: host-only, as an earlier cookie_domain setting would have left them.
    await context.addCookies([
      { name: '__spdt_s', value: view.sid!, url: `http://${WWW}:${port}/` },
      { name: '__spdt_m', value: '3', domain: '.example.co.uk', path: '/' },
    ]);
    expect((await context.cookies()).filter((c) => c.name.startsWith('__spdt_')).length).toBe(4);
    await page.evaluate(() => (window as any).spdt('consent', 'denied'));
    expect(await context.cookies()).toEqual([]);
    expectClean(seen);
  });
});

test.describe('SPEC §4: the sp_click_id cookie', () => {
  test('spclid wins over sp_click_id, is stored URL-encoded for 30 days and sent as cid', async ({ page, context, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const clickId = 'clk 1/ü=2&x+y';
    const url = mount(site, key) + '?sp_click_id=loser&spclid=' + encodeURIComponent(clickId);
    const [view] = await visit(page, site, url, key, 1);

    const click = await cookie(context, 'sp_click_id');
    expect(click!.value).toBe(encodeURIComponent(clickId));
    expect(click!.domain).toBe('.example.co.uk');
    expect(click!.path).toBe('/');
    expect(click!.sameSite).toBe('Lax');
    expectExpiresInDays(click, 30);
    expect(view.cid).toBe(clickId);
    expectClean(seen);
  });

  test('sp_click_id alone is read too', async ({ page, context, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const [view] = await visit(page, site, mount(site, key) + '?sp_click_id=only-this', key, 1);
    expect(view.cid).toBe('only-this');
    expect((await cookie(context, 'sp_click_id'))!.value).toBe('only-this');
    expectClean(seen);
  });

  test('is carried as cid on later pages without the parameter, and a newer one replaces it', async ({ page, context, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    await visit(page, site, mount(site, key) + '?spclid=first-click', key, 1);
    await visit(page, site, mount(site, key), key, 2); // no parameter
    await visit(page, site, mount(site, key, { host: 'shop.example.co.uk' }) + '?spclid=second-click', key, 3);
    const events = await visit(page, site, mount(site, key), key, 4); // no parameter

    expect(events.map((e) => e.cid)).toEqual(['first-click', 'first-click', 'second-click', 'second-click']);
    const clicks = (await context.cookies()).filter((c) => c.name === 'sp_click_id');
    expect(clicks.map((c) => c.value)).toEqual(['second-click']);
    expectClean(seen);
  });
});

test.describe('SPEC §3: cookies: false', () => {
  test('writes no cookie and no storage, sends no uid, and still a per-page sid', async ({ page, context, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const url = mount(site, key, { calls: "w.spdt('conf', { cookies: false }); w.spdt('view'); w.spdt('alias', { id: 'u-42' });" });
    const events = await visit(page, site, url + '?spclid=no-cookie-click', key, 2);

    expect(await context.cookies()).toEqual([]);
    for (const e of events) {
      expect(e).not.toHaveProperty('uid');
      expect(e.sid).toMatch(HEX32);
    }
    expect(await page.evaluate(() => [Object.keys(localStorage), Object.keys(sessionStorage)])).toEqual([[], []]);

    // The session id lives for the page: the next page load has another.
    const again = await visit(page, site, url, key, 4);
    expect(again[2].sid).toMatch(HEX32);
    expect(again[2].sid).not.toBe(events[0].sid);
    expect(await context.cookies()).toEqual([]);
    expect(await page.evaluate(() => [Object.keys(localStorage), Object.keys(sessionStorage)])).toEqual([[], []]);
    expectClean(seen);
  });
});

test.describe('SPEC §3: debug', () => {
  test('?spdt_debug=1 logs commands and requests with the [spdt] prefix; without it nothing is logged', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const logs: string[] = [];
    page.on('console', (m) => m.type() === 'log' && logs.push(m.text()));
    const url = mount(site, key, { calls: "w.spdt('view'); w.spdt('lead', { type: 'debug-lead' });" });

    await visit(page, site, url + '?spdt_debug=1', key, 2);
    await expect.poll(() => logs.filter((l) => l.includes('/v1/ingest')).length).toBeGreaterThan(0);
    expect(logs.length).toBeGreaterThan(0);
    expect(logs.every((l) => l.startsWith('[spdt]'))).toBe(true);
    expect(logs.some((l) => /\bview\b/.test(l) && !l.includes('/v1/ingest'))).toBe(true); // the command
    expect(logs.some((l) => /\blead\b/.test(l) && !l.includes('/v1/ingest'))).toBe(true);
    expect(logs.some((l) => l.includes('/v1/ingest'))).toBe(true); // the request

    logs.length = 0;
    await visit(page, site, url, key, 4);
    await tagLoaded(page);
    expect(logs.filter((l) => l.startsWith('[spdt]'))).toEqual([]);
    expectClean(seen);
  });
});
