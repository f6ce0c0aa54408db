/**
 * SPEC §5 (privacy): consent, alias hashing, the PII guard, Global Privacy Control, and §3
 * `cookies: false` — the real tag in each engine against the real collector.
 *
 * Proving that something did NOT happen: pages here can also load a second, independent pixel (the
 * npm build, `cookies: false`, its own key: it writes no storage) as `window.marker`. Once the
 * marker's event is stored and its request recorded, anything the tag under test had sent or
 * written before it would be visible too.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, Page } from '@playwright/test';
import { test, expect, html, newKey, spotifySnippet, tagLoaded, watchPage, recordRequests, type Site, expectClean } from './fixtures';

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

type Requests = ReturnType<typeof recordRequests>;

/**
 * Spotify's snippet (SPEC §1) followed by a `conf` with the options of our choosing and `calls`;
 * with `marker`, also the marker pixel (see above). The queue is drained in one go, so the second
 * `conf` applies before anything could be sent.
 */
function tagPage(key: string, opts: { conf?: object; calls?: string; marker?: string } = {}) {
  const marker = opts.marker
    ? `<script type="module">import { createPixel } from '/dist/index.mjs';
window.marker = createPixel({ key: '${opts.marker}', cookies: false });</script>`
    : '';
  const calls = (opts.conf ? `w.spdt('conf', ${JSON.stringify(opts.conf)});\n` : '') + (opts.calls ?? '');
  return html(spotifySnippet('/ping.min.js', key, calls) + marker);
}

const call = (page: Page, ...args: unknown[]) => page.evaluate((a) => (window as any).spdt(...a), args);

/** Sends one event through the marker pixel and waits until it is stored and its request recorded. */
async function markerRoundTrip(page: Page, site: Site, requests: Requests, markerKey: string, count: number) {
  await page.waitForFunction(() => (window as any).marker);
  await page.evaluate((n) => (window as any).marker('custom_event_5', { marker: n }), count);
  await site.waitForEvents(markerKey, count);
  await expect.poll(() => requests.filter((r) => r.body.includes(`"marker":${count}`)).length).toBe(1);
}

/** The /v1/* requests made for `key` (URL or body naming it), parsed. */
const requestsFor = (requests: Requests, key: string) =>
  requests.filter((r) => /\/v1\//.test(r.url) && (r.url.includes(key) || r.body.includes(key)));

const storage = (page: Page) =>
  page.evaluate(() => ({ local: { ...localStorage }, session: { ...sessionStorage } }));

const pixelCookies = async (context: BrowserContext) =>
  (await context.cookies()).filter((c) => c.name == '__spdt' || c.name == 'sp_click_id' || c.name.startsWith('__spdt'));

/**
 * The recorded /v1/* requests for `key`, once every event the collector stored for it is among them
 * (Chromium may report a beacon's request a little after the collector has it).
 */
async function sentRequests(requests: Requests, site: Site, key: string): Promise<Requests> {
  const ids = (await site.events(key)).map((e) => e.event_id);
  expect(ids.length).toBeGreaterThan(0);
  await expect.poll(() => ids.filter((id) => !requestsFor(requests, key).some((r) => r.body.includes(id)))).toEqual([]);
  return requestsFor(requests, key);
}

/** Spellings in which a raw identifier could leak: as given, trimmed, lower-cased, URL-encoded. */
function spellings(raw: string): string[] {
  const forms = new Set<string>();
  for (const base of [raw, raw.trim(), raw.trim().toLowerCase()]) {
    forms.add(base);
    forms.add(encodeURIComponent(base));
    forms.add(encodeURIComponent(base).replace(/%20/g, '+'));
    forms.add(JSON.stringify(base).slice(1, -1));
  }
  return [...forms].filter(Boolean);
}

/** No request of the page (once those carrying `key`'s stored events are recorded) holds a raw identifier. */
async function expectNoRawPii(requests: Requests, site: Site, key: string, raws: string[]) {
  await sentRequests(requests, site, key);
  for (const raw of raws)
    for (const form of spellings(raw))
      for (const r of requests) {
        expect(r.url.toLowerCase(), `request URL contains ${JSON.stringify(form)}`).not.toContain(form.toLowerCase());
        expect(r.body.toLowerCase(), `request body contains ${JSON.stringify(form)}`).not.toContain(form.toLowerCase());
      }
}


const HOST = 'www.example.co.uk';

test.describe('SPEC §5 Privacy: consent', () => {
  test("'pending' writes nothing and sends nothing; 'granted' sends the held events in call order", async ({ page, context, site }) => {
    const key = newKey();
    const markerKey = newKey();
    const seen = watchPage(page);
    const requests = recordRequests(page);
    const url = site.page(tagPage(key, { conf: { consent: 'pending' }, calls: "w.spdt('view');", marker: markerKey }), { host: HOST });
    await page.goto(url + '?spclid=click-1');
    await tagLoaded(page);
    await call(page, 'lead', { value: 5, currency: 'usd' });
    await call(page, 'signup', { sign_up_method: 'email' });
    await call(page, 'custom_event_1', { n: 1 });
    await markerRoundTrip(page, site, requests, markerKey, 1);

    expect(await context.cookies()).toEqual([]);
    expect(await storage(page)).toEqual({ local: {}, session: {} });
    expect(requestsFor(requests, key)).toEqual([]);
    expect(await site.events(key)).toEqual([]);

    const grantedAt = await page.evaluate(() => {
      const t = Date.now();
      (window as any).spdt('consent', 'granted');
      return t;
    });
    const events = await site.waitForEvents(key, 4);
    expect(events.map((e) => e.action)).toEqual(['view', 'lead', 'signup', 'custom_event_1']);
    expect(events.map((e) => e.time)).toEqual(events.map((e) => e.time).sort((a, b) => a - b));
    for (const e of events) expect(e.time).toBeLessThanOrEqual(grantedAt);
    for (const r of await sentRequests(requests, site, key)) expect(JSON.parse(r.body).sent_at).toBeGreaterThanOrEqual(grantedAt);

    const cookies = await context.cookies();
    expect(cookies.find((c) => c.name == '__spdt')).toMatchObject({ domain: '.example.co.uk', value: events[0].uid });
    expect(cookies.find((c) => c.name == 'sp_click_id')).toMatchObject({ value: 'click-1' });
    expect(cookies.filter((c) => c.name.includes('probe'))).toEqual([]);
    expect(cookies.find((c) => c.name == '__spdt_s')).toMatchObject({ domain: '.example.co.uk', value: events[0].sid });
    expectClean(seen);
  });

  test("'pending' holds at most 100 events, the oldest dropped", async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    await page.goto(site.page(tagPage(key, { conf: { consent: 'pending' } })));
    await tagLoaded(page);
    await page.evaluate(() => {
      for (let n = 0; n < 105; n++) (window as any).spdt('custom_event_1', { n });
    });
    await call(page, 'consent', 'granted');
    await site.waitForEvents(key, 100);
    await call(page, 'signup');
    const events = await site.waitForEvents(key, 101);
    expect(events).toHaveLength(101);
    expect(events.slice(0, 100).map((e) => e.body.n)).toEqual(Array.from({ length: 100 }, (_, i) => i + 5));
    expect(events[100].action).toBe('signup');
    expectClean(seen);
  });

  test("'denied' drops the held events; a later 'granted' sends only what is called after it", async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const requests = recordRequests(page);
    await page.goto(site.page(tagPage(key, { conf: { consent: 'pending' }, calls: "w.spdt('view');" })));
    await tagLoaded(page);
    await call(page, 'lead');
    await call(page, 'signup');
    await call(page, 'consent', 'denied');
    await call(page, 'custom_event_2');
    await call(page, 'consent', 'granted');
    await call(page, 'purchase', { order_id: 'after-grant' });
    const events = await site.waitForEvents(key, 1);
    expect(events.map((e) => e.action)).toEqual(['purchase']);
    for (const r of requestsFor(requests, key)) expect(r.body).not.toMatch(/"action":"(view|lead|signup|custom_event_2)"/);
    expectClean(seen);
  });

  test("'denied' after events were sent deletes every cookie and storage key of the pixel, and stops sending", { tag: ['@needs-offline'] }, async ({ page, context, site }) => {
    const key = newKey();
    const markerKey = newKey();
    const seen = watchPage(page);
    const requests = recordRequests(page);
    const url = site.page(tagPage(key, { calls: "w.spdt('view');", marker: markerKey }), { host: HOST });
    await page.goto(url + '?spclid=click-2');
    await tagLoaded(page);
    await call(page, 'alias', { email: 'someone@example.org', id: 'u-1' });
    const sentBefore = await site.waitForEvents(key, 2);
    // A host-only copy as well, as an earlier `cookie_domain` setting would have left it.
    const port = new URL(url).port;
    await context.addCookies([
      { name: '__spdt', value: sentBefore[0].uid!, url: `http://${HOST}:${port}/` },
      { name: '__spdt_s', value: sentBefore[0].sid!, url: `http://${HOST}:${port}/` },
      { name: 'sp_click_id', value: 'click-2', url: `http://${HOST}:${port}/` },
    ]);
    // Offline, an event waits in the persisted outbox.
    await context.setOffline(true);
    await call(page, 'custom_event_3', { offline: true });
    await expect.poll(async () => (await storage(page)).local.__spdt_outbox ?? '').toContain('custom_event_3');

    const before = await storage(page);
    expect(Object.keys(before.local).sort()).toEqual(['__spdt_alias', '__spdt_outbox']);
    expect(before.session).toEqual({});
    const cookiesBefore = (await pixelCookies(context)).map((c) => `${c.name}@${c.domain}=${c.name == '__spdt_m' ? c.value : ''}`).sort();
    expect(cookiesBefore).toEqual([
      '__spdt@.example.co.uk=',
      '__spdt@www.example.co.uk=',
      '__spdt_m@www.example.co.uk=3ao', // host-only: the root domain has 3 labels; an alias and an outbox are stored
      '__spdt_s@.example.co.uk=',
      '__spdt_s@www.example.co.uk=',
      'sp_click_id@.example.co.uk=',
      'sp_click_id@www.example.co.uk=',
    ]);

    await call(page, 'consent', 'denied');
    expect(await pixelCookies(context)).toEqual([]);
    expect(await storage(page)).toEqual({ local: {}, session: {} });

    await context.setOffline(false);
    await call(page, 'lead', { while_denied: true });
    await markerRoundTrip(page, site, requests, markerKey, 1);
    // While denied, deleting is the only thing the pixel did to storage; nothing more was sent.
    expect(await pixelCookies(context)).toEqual([]);
    expect(await storage(page)).toEqual({ local: {}, session: {} });
    for (const r of requestsFor(requests, key)) expect(r.body).not.toMatch(/"offline":true|"while_denied"/);
    expect((await site.events(key)).map((e) => e.action)).toEqual(['view', 'alias']);

    await call(page, 'consent', 'granted');
    await call(page, 'signup', { after: 'grant' });
    const events = await site.waitForEvents(key, 3);
    expect(events.map((e) => e.action)).toEqual(['view', 'alias', 'signup']);
    expect(events[2]).not.toHaveProperty('alias'); // forgotten with the rest
    expectClean(seen);
  });

  const explicitWins = [
    { name: "spdt('consent','denied') before conf({consent:'granted'})", calls: "w.spdt('consent','denied'); w.spdt('conf',{consent:'granted'}); w.spdt('view');" },
    { name: "conf({consent:'granted'}) before spdt('consent','denied')", calls: "w.spdt('conf',{consent:'granted'}); w.spdt('consent','denied'); w.spdt('view');" },
  ];
  for (const { name, calls } of explicitWins)
    test(`an explicit 'denied' wins: ${name}`, async ({ page, context, site }) => {
      const key = newKey();
      const markerKey = newKey();
      const seen = watchPage(page);
      const requests = recordRequests(page);
      await page.goto(site.page(tagPage(key, { calls, marker: markerKey }), { host: HOST }));
      await tagLoaded(page);
      await call(page, 'lead');
      await markerRoundTrip(page, site, requests, markerKey, 1);
      expect(requestsFor(requests, key)).toEqual([]);
      expect(await site.events(key)).toEqual([]);
      expect(await context.cookies()).toEqual([]);
      expect(await storage(page)).toEqual({ local: {}, session: {} });
      expectClean(seen);
    });

  test("an explicit 'granted' wins over a later conf({consent:'pending'})", async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    await page.goto(site.page(tagPage(key, { calls: "w.spdt('consent','granted'); w.spdt('conf',{consent:'pending'}); w.spdt('view');" })));
    await tagLoaded(page);
    const [view] = await site.waitForEvents(key, 1);
    expect(view.action).toBe('view');
    expectClean(seen);
  });
});

test.describe('SPEC §5 Privacy: alias', () => {
  const EMAIL = '  Jane.Doe@Example.COM ';
  const PHONE = '+44 (0)20 7946 0958';
  const EMAIL_HASH = sha256('jane.doe@example.com');
  const PHONE_HASH = sha256('4402079460958');

  test('on a plain-http page (no crypto.subtle) email and phone are normalised and hashed in the browser', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const requests = recordRequests(page);
    await page.goto(site.page(tagPage(key, { calls: "w.spdt('view');" }), { host: HOST }));
    await tagLoaded(page);
    expect(await page.evaluate(() => ({ secure: window.isSecureContext, subtle: typeof crypto.subtle }))).toEqual({ secure: false, subtle: 'undefined' });
    await call(page, 'alias', { email: EMAIL, phone_number: PHONE });
    const [, alias] = await site.waitForEvents(key, 2);
    expect(alias.action).toBe('alias');
    expect(alias.body).toMatchObject({ hashed_email: EMAIL_HASH, hashed_phone_number: PHONE_HASH });
    expect(alias.body).not.toHaveProperty('email');
    expect(alias.body).not.toHaveProperty('phone_number');
    expect(alias.alias).toEqual({ hashed_email: EMAIL_HASH, hashed_phone_number: PHONE_HASH });
    await expectNoRawPii(requests, site, key, [EMAIL, PHONE, '+4402079460958', '4402079460958', '02079460958']);
    expectClean(seen);
  });

  test("a leading '00' is removed from the phone number, no country code added", async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const requests = recordRequests(page);
    await page.goto(site.page(tagPage(key), { host: HOST }));
    await tagLoaded(page);
    await call(page, 'alias', { phone_number: '0044 20 7946 0958' });
    const [alias] = await site.waitForEvents(key, 1);
    expect(alias.body.hashed_phone_number).toBe(sha256('442079460958'));
    await expectNoRawPii(requests, site, key, ['0044 20 7946 0958', '00442079460958', '442079460958']);
    expectClean(seen);
  });

  test('a value that is already 64 hex is sent lower-cased, never hashed twice', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    await page.goto(site.page(tagPage(key), { host: HOST }));
    await tagLoaded(page);
    await call(page, 'alias', { email: EMAIL_HASH.toUpperCase(), phone_number: PHONE_HASH.toUpperCase() });
    const [alias] = await site.waitForEvents(key, 1);
    expect(alias.body).toMatchObject({ hashed_email: EMAIL_HASH, hashed_phone_number: PHONE_HASH });
    expectClean(seen);
  });

  test('later alias calls merge; events after alias go out after it, carrying it, also on the next page', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const requests = recordRequests(page);
    await page.goto(site.page(tagPage(key), { host: HOST }));
    await tagLoaded(page);
    await page.evaluate(
      ([email, phone]) => {
        const spdt = (window as any).spdt;
        spdt('alias', { email });
        spdt('alias', { phone_number: phone, id: 'u-42' });
        spdt('purchase', { value: 10, currency: 'EUR', order_id: 'o-1' });
      },
      [EMAIL, PHONE],
    );
    const merged = { hashed_email: EMAIL_HASH, hashed_phone_number: PHONE_HASH, id: 'u-42' };
    const events = await site.waitForEvents(key, 3);
    expect(events.map((e) => e.action)).toEqual(['alias', 'alias', 'purchase']);
    expect(events[2].alias).toEqual(merged);
    expect(JSON.parse((await page.evaluate(() => localStorage.getItem('__spdt_alias')))!)).toEqual(merged);

    await page.goto(site.page(tagPage(key, { calls: "w.spdt('view');" }), { host: HOST }));
    const next = await site.waitForEvents(key, 4);
    expect(next[3].action).toBe('view');
    expect(next[3].alias).toEqual(merged);
    await expectNoRawPii(requests, site, key, [EMAIL, PHONE, '+4402079460958', '4402079460958']);
    expectClean(seen);
  });

  test('alias and an event called just before the page is left are both delivered, in order', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const next = site.page(html('', '<p>next</p>'), { host: HOST });
    await page.goto(site.page(tagPage(key), { host: HOST }));
    await tagLoaded(page);
    await Promise.all([
      page.waitForURL(next),
      page.evaluate(
        ([email, url]) => {
          (window as any).spdt('alias', { email });
          (window as any).spdt('signup', { sign_up_method: 'email' });
          location.href = url;
        },
        [EMAIL, next],
      ),
    ]);
    const events = await site.waitForEvents(key, 2);
    expect(events.map((e) => e.action)).toEqual(['alias', 'signup']);
    expect(events[1].alias).toEqual({ hashed_email: EMAIL_HASH });
    // A beacon sent while the page is being left may never be reported as a request to Playwright:
    // check what the collector received instead.
    expect(JSON.stringify(events).toLowerCase()).not.toContain('jane.doe');
    expectClean(seen);
  });

  test('PII guard: email and phone_number event props are sent hashed, never raw', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const requests = recordRequests(page);
    await page.goto(site.page(tagPage(key), { host: HOST }));
    await tagLoaded(page);
    await call(page, 'lead', { email: 'x@y.z', phone_number: '555 1234', type: 'demo' });
    const [lead] = await site.waitForEvents(key, 1);
    expect(lead.body).toMatchObject({ type: 'demo', hashed_email: sha256('x@y.z'), hashed_phone_number: sha256('5551234') });
    expect(lead.body).not.toHaveProperty('email');
    expect(lead.body).not.toHaveProperty('phone_number');
    await expectNoRawPii(requests, site, key, ['x@y.z', '555 1234', '5551234']);
    expectClean(seen);
  });

  test('in a secure context (localhost, crypto.subtle present) the hashes are the same', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const requests = recordRequests(page);
    await page.goto(site.page(tagPage(key)));
    await tagLoaded(page);
    expect(await page.evaluate(() => ({ secure: window.isSecureContext, subtle: typeof crypto.subtle }))).toEqual({ secure: true, subtle: 'object' });
    await call(page, 'alias', { email: EMAIL, phone_number: PHONE });
    await call(page, 'lead', { email: 'x@y.z', phone_number: '555 1234' });
    const [alias, lead] = await site.waitForEvents(key, 2);
    expect(alias.body).toMatchObject({ hashed_email: EMAIL_HASH, hashed_phone_number: PHONE_HASH });
    expect(lead.body).toMatchObject({ hashed_email: sha256('x@y.z'), hashed_phone_number: sha256('5551234') });
    expect(lead.alias).toEqual({ hashed_email: EMAIL_HASH, hashed_phone_number: PHONE_HASH });
    await expectNoRawPii(requests, site, key, [EMAIL, PHONE, '4402079460958', 'x@y.z', '555 1234', '5551234']);
    expectClean(seen);
  });
});

test.describe('SPEC §5 Privacy: Global Privacy Control', () => {
  test('navigator.globalPrivacyControl === true: events still go out, with opt_out_targeting: true', async ({ page, site }) => {
    await page.addInitScript(() => Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { get: () => true, configurable: true }));
    const key = newKey();
    const seen = watchPage(page);
    const requests = recordRequests(page);
    await page.goto(site.page(tagPage(key, { calls: "w.spdt('view');" })));
    await tagLoaded(page);
    await call(page, 'purchase', { value: 1, currency: 'USD' });
    const events = await site.waitForEvents(key, 2);
    for (const e of events) expect(e.opt_out_targeting).toBe(true);
    for (const r of await sentRequests(requests, site, key)) for (const item of JSON.parse(r.body).batch) expect(item.opt_out_targeting).toBe(true);
    expectClean(seen);
  });

  test('without Global Privacy Control, opt_out_targeting is absent', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const requests = recordRequests(page);
    await page.goto(site.page(tagPage(key, { calls: "w.spdt('view');" })));
    await tagLoaded(page);
    expect(await page.evaluate(() => (navigator as any).globalPrivacyControl)).not.toBe(true);
    const [view] = await site.waitForEvents(key, 1);
    expect(view).not.toHaveProperty('opt_out_targeting');
    for (const r of await sentRequests(requests, site, key)) expect(r.body).not.toContain('opt_out_targeting');
    expectClean(seen);
  });
});

test.describe('SPEC §3 conf: cookies: false', () => {
  test('no cookie and no storage key is written; events are still stored, without uid', async ({ page, context, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const requests = recordRequests(page);
    const url = site.page(tagPage(key, { conf: { cookies: false }, calls: "w.spdt('view');" }), { host: HOST });
    await page.goto(url + '?spclid=click-3');
    await tagLoaded(page);
    await call(page, 'alias', { email: 'a@b.c' });
    await call(page, 'lead');
    const events = await site.waitForEvents(key, 3);
    expect(events.map((e) => e.action)).toEqual(['view', 'alias', 'lead']);
    for (const e of events) {
      expect(e).not.toHaveProperty('uid');
      expect(e.sid).toMatch(/^[0-9a-f]{32}$/);
    }
    for (const r of await sentRequests(requests, site, key)) for (const item of JSON.parse(r.body).batch) expect(item).not.toHaveProperty('uid');
    expect(await context.cookies()).toEqual([]);
    expect(await storage(page)).toEqual({ local: {}, session: {} });
    expectClean(seen);
  });
});

test.describe('SPEC §5 Privacy: email addresses in URLs and props', () => {
  // One address in every spelling a real site leaks it in: percent-encoded, plain, with a `+`,
  // double-encoded, and inside a single-page app's fragment with its own query.
  const QUERY = '?email=ann%40example.com&plain=ann@example.com&plus=ann+news@example.com&double=ann%2540example.com&step=2';
  const FRAGMENT = '#/signup?email=ann%40example.com&plan=pro';
  const REDACTED = '?email=[email]&plain=[email]&plus=[email]&double=[email]&step=2#/signup?email=[email]&plan=pro';
  const FROM_QUERY = '?next=%2Fwelcome%3Femail%3Dann%2540example.com&e=ann%40example.com';

  /** Decodes `text` until it stops changing, so no percent-encoding can hide an address. */
  const decoded = (text: string) => {
    for (let i = 0; i < 5; i++)
      try {
        text = decodeURIComponent(text);
      } catch {
        break;
      }
    return text;
  };

  /**
   * Opens a page with no tag whose URL holds the address, follows its link to the tag page (whose
   * URL holds it too, so both url and referrer do), then calls events whose props hold it.
   */
  async function leak(page: Page, site: Site, key: string) {
    const tagUrl = site.page(tagPage(key, { calls: "w.spdt('view');" }));
    const fromUrl = site.page(html('', `<a id="go" href="${tagUrl + QUERY + FRAGMENT}">go</a>`)) + FROM_QUERY;
    await page.goto(fromUrl);
    await Promise.all([page.waitForURL(/#\/signup/), page.click('#go')]);
    await tagLoaded(page);
    expect(await page.evaluate(() => document.referrer)).toBe(fromUrl);
    await call(page, 'lead', { note: 'ann@example.com', contact: 'Write to ANN%40EXAMPLE.COM', type: 'demo' });
    await call(page, 'purchase', { order_id: 'o-1', product_name: 'ann+news@example.com', line_items: [{ product_id: 'p', variant_name: 'ann@example.com' }] });
    await call(page, 'alias', { id: 'ann@example.com', partner_user_id: 'partner-1', email: 'ann@example.com' });
    await page.evaluate(() => history.pushState(null, '', '/welcome?email=ann%40example.com'));
    const events = await site.waitForEvents(key, 5);
    return { events, tagUrl, fromUrl };
  }

  /** Waits until a recorded /v1/ request carries each stored event, then checks none holds the address. */
  async function expectNoAddress(requests: Requests, events: { event_id: string }[]) {
    const v1 = () => requests.filter((r) => /\/v1\//.test(r.url));
    await expect.poll(() => events.filter((e) => !v1().some((r) => (r.url + r.body).includes(e.event_id))).length).toBe(0);
    for (const r of v1()) {
      expect(decoded(r.url)).not.toMatch(/ann|example\.com/i);
      expect(decoded(r.body)).not.toMatch(/ann|example\.com/i);
    }
  }

  for (const transport of ['beacon', 'image'] as const)
    test(`by ${transport}: url and referrer carry [email], props holding an address are dropped with a warning`, async ({ page, site }) => {
      if (transport == 'image') await page.addInitScript(() => delete (Navigator.prototype as any).sendBeacon);
      const key = newKey();
      const seen = watchPage(page);
      const requests = recordRequests(page);
      const { events, tagUrl, fromUrl } = await leak(page, site, key);
      const byAction = (a: string) => events.filter((e) => e.action == a);
      expect(events.every((e) => e.transport == transport)).toBe(true);
      expect(events.map((e) => e.action).sort()).toEqual(['alias', 'lead', 'purchase', 'view', 'view']);

      const url = tagUrl + REDACTED;
      const referrer = fromUrl.replace(FROM_QUERY, '?next=[email]&e=[email]');
      const [first, spa] = byAction('view').sort((a, b) => a.time - b.time);
      expect(first.body).toEqual({ url, referrer });
      expect(spa.body.url).toBe(site.origin + '/welcome?email=[email]');
      expect(byAction('lead')[0].body).toEqual({ url, referrer, type: 'demo' });
      expect(byAction('purchase')[0].body).toMatchObject({ url, referrer, order_id: 'o-1', line_items: [{ product_id: 'p' }] });
      expect(byAction('purchase')[0].body).not.toHaveProperty('product_name');
      const alias = byAction('alias')[0];
      expect(alias.body).toMatchObject({ partner_user_id: 'partner-1', hashed_email: sha256('ann@example.com') });
      expect(alias.body).not.toHaveProperty('id');

      expect(seen.warnings.filter((w) => w.includes('looks like an email')).sort()).toEqual([
        '[spdt] alias id: looks like an email',
        '[spdt] lead contact: looks like an email',
        '[spdt] lead note: looks like an email',
        '[spdt] purchase line_items[0].variant_name: looks like an email',
        '[spdt] purchase product_name: looks like an email',
      ]);
      await expectNoAddress(requests, events);
      expect(JSON.stringify(await site.events(key))).not.toMatch(/ann|example\.com/i);
      expectClean(seen);
    });
});

/**
 * The demo shop (examples/shop/) as a visitor meets it: opt-in consent. Its files are served to the
 * page from disk under /examples/, with the shop's pixel key swapped for a fresh one; the tag, the
 * marker pixel and the collector are the harness's (e2e/fixtures.ts).
 */
test.describe('SPEC §5 Privacy: the demo shop asks before it sends', () => {
  const EXAMPLES = fileURLToPath(new URL('../examples/', import.meta.url));
  const SHOP_KEY = '5a1c965e567a45f7832cc5ba7a37faf7';
  const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml' };

  async function serveShop(page: Page, key: string) {
    await page.route(
      (url) => url.pathname.startsWith('/examples/'),
      (route) => {
        const file = path.join(EXAMPLES, decodeURIComponent(new URL(route.request().url()).pathname.slice('/examples/'.length)));
        const type = TYPES[path.extname(file)];
        if (!type || !fs.existsSync(file)) return route.fulfill({ status: 404, body: '' });
        const body = fs.readFileSync(file, 'utf8').replaceAll(SHOP_KEY, key);
        return route.fulfill({ body, contentType: type + '; charset=utf-8' });
      },
    );
  }

  /** Loads the npm build as a second pixel (`cookies: false`, its own key) for the marker round trip. */
  const addMarker = (page: Page, markerKey: string) =>
    page.evaluate(async (k) => {
      const { createPixel } = await import('/dist/index.mjs' as string);
      (window as any).marker = createPixel({ key: k, cookies: false });
    }, markerKey);

  /** The /v1/ requests but the marker's: what the shop's pixel sent. */
  const shopRequests = (requests: Requests, markerKey: string) =>
    requests.filter((r) => /\/v1\//.test(r.url) && !(r.url + r.body).includes(markerKey));

  // Asserted by polling Locator methods rather than with expect(locator) matchers, which only
  // Playwright's own locators have: the WebKit harness's are its own (e2e/engines/webkit.ts).
  const banner = (page: Page) => page.locator('aside.consent');
  const pixelStorage = async (page: Page) =>
    Object.keys(await page.evaluate(() => ({ ...localStorage, ...sessionStorage }))).filter((k) => k.startsWith('__spdt'));

  test('nothing is sent before Accept; the held view goes out on Accept; the next page sends without asking', async ({ page, context, site }) => {
    const key = newKey();
    const markerKey = newKey();
    const seen = watchPage(page);
    const requests = recordRequests(page);
    await serveShop(page, key);
    const home = site.origin + '/examples/shop/index.html?spclid=demo-click-1';
    await page.goto(home);
    await tagLoaded(page);
    await expect.poll(() => banner(page).isVisible()).toBe(true);
    await addMarker(page, markerKey);
    await markerRoundTrip(page, site, requests, markerKey, 1);
    expect(shopRequests(requests, markerKey)).toEqual([]);
    expect(await site.events(key)).toEqual([]);
    expect(await pixelCookies(context)).toEqual([]);
    expect(await pixelStorage(page)).toEqual([]);

    const acceptedAt = await page.evaluate(() => Date.now());
    await banner(page).getByRole('button', { name: 'Accept' }).click();
    const [view] = await site.waitForEvents(key, 1);
    expect(view.action).toBe('view');
    expect(view.body.url).toBe(home);
    expect(view.time).toBeLessThanOrEqual(acceptedAt); // the view held since the page loaded
    expect(view.cid).toBe('demo-click-1');
    await expect.poll(() => banner(page).count()).toBe(0);
    expect(await page.evaluate(() => localStorage.getItem('podshop_consent'))).toBe('granted');

    await Promise.all([page.waitForURL(/product\.html/), page.locator('a.card-link').first().click()]);
    const events = await site.waitForEvents(key, 3);
    expect(events.map((e) => e.action)).toEqual(['view', 'view', 'product']);
    expect(events[2].body).toMatchObject({ product_id: 'mug-100', currency: 'USD' });
    expect(new Set(events.map((e) => e.uid)).size).toBe(1);
    await expect.poll(() => banner(page).count()).toBe(0);
    expectClean(seen);
  });

  test('Decline sends nothing on this page or the next; Privacy choices lets the visitor accept later, or decline again', async ({ page, context, site }) => {
    const key = newKey();
    const markerKey = newKey();
    const seen = watchPage(page);
    const requests = recordRequests(page);
    await serveShop(page, key);
    await page.goto(site.origin + '/examples/shop/index.html');
    await tagLoaded(page);
    await banner(page).getByRole('button', { name: 'Decline' }).click();
    await expect.poll(() => banner(page).count()).toBe(0);
    await addMarker(page, markerKey);
    await markerRoundTrip(page, site, requests, markerKey, 1);

    // The next page applies the remembered "declined" at once: no banner, nothing sent.
    await Promise.all([page.waitForURL(/product\.html/), page.locator('a.card-link').first().click()]);
    await tagLoaded(page);
    await page.waitForFunction(() => document.readyState != 'loading');
    await expect.poll(() => banner(page).count()).toBe(0);
    await addMarker(page, markerKey);
    await markerRoundTrip(page, site, requests, markerKey, 2);
    expect(shopRequests(requests, markerKey)).toEqual([]);
    expect(await site.events(key)).toEqual([]);
    expect(await pixelCookies(context)).toEqual([]);
    expect(await pixelStorage(page)).toEqual([]);

    // A change of mind: what is called after Accept goes out, and the page after it sends too.
    await page.getByRole('button', { name: 'Privacy choices' }).click();
    await expect.poll(() => banner(page).textContent()).toContain('Your current choice: declined');
    await banner(page).getByRole('button', { name: 'Accept' }).click();
    await page.getByRole('button', { name: 'Add to cart' }).click();
    const [added] = await site.waitForEvents(key, 1);
    expect(added.action).toBe('addtocart');
    await page.goto(site.origin + '/examples/shop/cart.html');
    const events = await site.waitForEvents(key, 2);
    expect(events.map((e) => e.action)).toEqual(['addtocart', 'view']);
    expect((await pixelCookies(context)).map((c) => c.name)).toContain('__spdt');

    // And back: Decline deletes the pixel's cookies and storage.
    await page.getByRole('button', { name: 'Privacy choices' }).click();
    await banner(page).getByRole('button', { name: 'Decline' }).click();
    expect(await pixelCookies(context)).toEqual([]);
    expect(await pixelStorage(page)).toEqual([]);
    expect(await page.evaluate(() => localStorage.getItem('podshop_consent'))).toBe('denied');
    expectClean(seen);
  });
});
