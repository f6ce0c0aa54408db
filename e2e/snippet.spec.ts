/**
 * SPEC §1, the loader snippet: Spotify's snippet unchanged, the project's own snippet, every queue
 * shape drained once and in order, `window.spdt` after load, double loads, noscript, endpoint default.
 */
import { test, expect, html, spotifySnippet, newKey, tagLoaded, holdTag, watchPage, expectClean, waitForMatch, sendMarker } from './fixtures';
import { snippet } from '../src/snippet';

/** The project's own snippet for `key`, loading the tag from this collector. */
const ours = (key: string, options: { src?: string; endpoint?: string } = {}) =>
  snippet({ key, src: options.src ?? '/ping.min.js', endpoint: options.endpoint });




test.describe('SPEC §1: the loader snippet', () => {
  test("Spotify's snippet, unchanged: conf, view and purchase are stored in call order", async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const calls = "w.spdt('view'); w.spdt('purchase', { value: 12.5, currency: 'EUR', order_id: 'S-1' });";
    await page.goto(site.page(html(spotifySnippet('/ping.min.js', key, calls))));
    const events = await site.waitForEvents(key, 2);
    expect(events.map((e) => e.action)).toEqual(['view', 'purchase']);
    expect(events[1].body).toEqual({ url: page.url(), value: 12.5, currency: 'EUR', order_id: 'S-1' });
    expect(events[0].time).toBeLessThanOrEqual(events[1].time);
    expectClean(seen);
  });

  test("the project's snippet: at most 400 bytes of inline script with conf and view", async () => {
    const code = snippet({ key: '5a1c965e567a45f7832cc5ba7a37faf7', src: 'https://cdn.example.com/ping.min.js' });
    const inline = code.match(/<script[^>]*>([\s\S]*?)<\/script>/)![1];
    expect(inline).toContain('"conf"');
    expect(inline).toContain('"view"');
    expect(new TextEncoder().encode(inline).length).toBeLessThanOrEqual(400);
  });

  test("the project's snippet: conf and view are stored", async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    await page.goto(site.page(html(ours(key))));
    const [view] = await site.waitForEvents(key, 1);
    expect(view).toMatchObject({ key, action: 'view', transport: 'beacon' });
    expect(view.body.url).toBe(page.url());
    expectClean(seen);
  });

  test("the project's snippet: calls queued before the tag loads keep their own time and URL", async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const tag = await holdTag(page);
    const first = site.page(html(ours(key)), { path: `/shop/${key}` }) + '?a=1';
    await page.goto(first, { waitUntil: 'domcontentloaded' });
    const times = await page.evaluate(() => {
      const beforeRoute = Date.now();
      history.pushState({}, '', '/checkout/done?b=2');
      (window as any).spdt('purchase', { value: 5, currency: 'EUR', order_id: 'Q-1' });
      return { beforeRoute, beforeRelease: Date.now() };
    });
    const second = page.url();
    expect(second).not.toBe(first);
    tag.release();
    const [view, purchase] = await site.waitForEvents(key, 2);
    expect(view).toMatchObject({ action: 'view', body: { url: first } });
    expect(purchase).toMatchObject({ action: 'purchase', body: { url: second, order_id: 'Q-1' } });
    expect(view.time).toBeLessThanOrEqual(times.beforeRoute);
    expect(purchase.time).toBeGreaterThanOrEqual(times.beforeRoute);
    expect(purchase.time).toBeLessThanOrEqual(times.beforeRelease);
    expectClean(seen);
  });

  test('the click id in a queued call URL survives a route change before the tag loads', async ({ page, site, context }) => {
    const key = newKey();
    const seen = watchPage(page);
    const tag = await holdTag(page);
    await page.goto(site.page(html(ours(key)), { path: `/land/${key}` }) + '?spclid=abc', { waitUntil: 'domcontentloaded' });
    await page.evaluate(() => {
      history.pushState({}, '', '/elsewhere?x=1');
      (window as any).spdt('purchase', { value: 1, currency: 'EUR' });
    });
    tag.release();
    const events = await site.waitForEvents(key, 2);
    expect(events.map((e) => [e.action, e.cid])).toEqual([['view', 'abc'], ['purchase', 'abc']]);
    const cookies = await context.cookies();
    expect(cookies.find((c) => c.name === 'sp_click_id')?.value).toBe('abc');
    expectClean(seen);
  });

  test("Spotify's stub: queued calls take the bundle's load time and URL", async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const tag = await holdTag(page);
    await page.goto(site.page(html(spotifySnippet('/ping.min.js', key)), { path: `/a/${key}` }), { waitUntil: 'domcontentloaded' });
    const beforeRelease = await page.evaluate(() => {
      history.pushState({}, '', '/b?route=2');
      return Date.now();
    });
    const loadUrl = page.url();
    tag.release();
    const [view] = await site.waitForEvents(key, 1);
    expect(view).toMatchObject({ action: 'view', body: { url: loadUrl } });
    expect(view.time).toBeGreaterThanOrEqual(beforeRelease);
    expectClean(seen);
  });

  test('the object stub (_q of emit/on/off) is drained: emits are stored, a queued on() listens', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const stub = `<script>
      window.spdt = {
        _q: [],
        emit() { this._q.push(['emit', ...arguments]); },
        on() { this._q.push(['on', ...arguments]); },
        off() { this._q.push(['off', ...arguments]); },
      };
      window.sent = [];
      var never = function () { window.neverCalled = true; };
      spdt.on('send', function (info) { window.sent.push(info); });
      spdt.on('send', never);
      spdt.off('send', never);
      spdt.emit('conf', { key: '${key}' });
      spdt.emit('view');
      spdt.emit('purchase', { value: 3, currency: 'EUR', order_id: 'OBJ-1' });
    </script><script async src="/ping.min.js"></script>`;
    await page.goto(site.page(html(stub)));
    const events = await site.waitForEvents(key, 2);
    expect(events.map((e) => e.action)).toEqual(['view', 'purchase']);
    expect(events[1].body.order_id).toBe('OBJ-1');
    await page.waitForFunction(() => (window as any).sent.length > 0);
    expect(await page.evaluate(() => (window as any).sent[0].transport)).toBe('beacon');
    expect(await page.evaluate(() => (window as any).neverCalled)).toBeUndefined();
    expectClean(seen);
  });

  test('all queue shapes on one page: q before _q, each in call order, each exactly once', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const stub = `<script>
      var args = function () { return arguments; };
      var s = window.spdt = function () { (s.q = s.q || []).push(arguments); };
      s._q = [['emit', 'custom_event_1', { n: 4 }]];
      s('conf', { key: '${key}' });
      s('custom_event_1', { n: 1 });
      s.q.push([Date.now(), location.href, args('custom_event_1', { n: 2 })]);
      s('custom_event_1', { n: 3 });
      s._q.push(['emit', 'custom_event_1', { n: 5 }]);
    </script><script async src="/ping.min.js"></script>`;
    await page.goto(site.page(html(stub)));
    await tagLoaded(page);
    const events = await sendMarker(page, site, key);
    expect(events.filter((e) => e.action === 'custom_event_1').map((e) => e.body.n)).toEqual([1, 2, 3, 4, 5]);
    expect(events).toHaveLength(6);
    expectClean(seen);
  });

  test('after load: spdt.on/off subscribe to send and warn', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    await page.goto(site.page(html(spotifySnippet('/ping.min.js', key))));
    await tagLoaded(page);
    await site.waitForEvents(key, 1); // the snippet's view is out before listening starts
    await page.evaluate(() => {
      const w = window as any;
      w.sends = [];
      w.warns = [];
      w.onSend = (info: unknown) => w.sends.push(info);
      w.onWarn = (text: unknown) => w.warns.push(text);
      w.spdt.on('send', w.onSend);
      w.spdt.on('warn', w.onWarn);
      w.spdt('custom_event_1', { n: 1 });
      w.spdt('no_such_command');
    });
    await page.waitForFunction(() => (window as any).sends.length > 0);
    const { sends, warns } = await page.evaluate(() => ({ sends: (window as any).sends, warns: (window as any).warns }));
    expect(sends).toHaveLength(1);
    expect(sends[0]).toMatchObject({ transport: 'beacon', url: `${site.origin}/v1/ingest` });
    const body = JSON.parse(sends[0].body);
    expect(body.batch[0].pid).toBe(key);
    expect(body.batch[0].events.map((e: any) => [e.action, e.body.n])).toEqual([['custom_event_1', 1]]);
    expect(warns).toHaveLength(1);
    expect(warns[0]).toMatch(/^\[spdt\].*no_such_command/);

    await page.evaluate(() => {
      const w = window as any;
      w.spdt.off('send', w.onSend);
      w.spdt.off('warn', w.onWarn);
      w.spdt('no_such_command_either');
      w.spdt('custom_event_1', { n: 2 });
    });
    await waitForMatch(site, key, (e) => e.body.n === 2);
    expect(await page.evaluate(() => [(window as any).sends.length, (window as any).warns.length])).toEqual([1, 1]);
    expectClean(seen);
  });

  const stubs: [string, (key: string) => string, string][] = [
    ["Spotify's stub", (key) => spotifySnippet('/ping.min.js', key), "old('custom_event_1', { n: 1 })"],
    ["the project's stub", (key) => ours(key), "old('custom_event_1', { n: 1 })"],
    [
      'the object stub',
      (key) => `<script>
        window.spdt = { _q: [], emit() { this._q.push(['emit', ...arguments]); }, on() {}, off() {} };
        spdt.emit('conf', { key: '${key}' });
        spdt.emit('view');
      </script><script async src="/ping.min.js"></script>`,
      "old.emit('custom_event_1', { n: 1 })",
    ],
  ];
  for (const [name, head, call] of stubs) {
    test(`a page script holding ${name} still reaches the pixel after load`, async ({ page, site }) => {
      const key = newKey();
      const seen = watchPage(page);
      const tag = await holdTag(page);
      await page.goto(site.page(html(head(key))), { waitUntil: 'domcontentloaded' });
      await page.evaluate(() => ((window as any).old = (window as any).spdt));
      tag.release();
      await tagLoaded(page);
      await site.waitForEvents(key, 1);
      expect(await page.evaluate(() => (window as any).old !== (window as any).spdt)).toBe(true);
      await page.evaluate(`${call}; undefined`);
      const events = await waitForMatch(site, key, (e) => e.body.n === 1);
      expect(events.map((e) => e.action)).toEqual(['view', 'custom_event_1']);
      expectClean(seen);
    });
  }

  test('loading the bundle twice installs it once', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    await page.goto(site.page(html(spotifySnippet('/ping.min.js', key)), { path: `/once/${key}` }));
    await tagLoaded(page);
    await site.waitForEvents(key, 1);
    const same = await page.evaluate(async () => {
      const w = window as any;
      const first = w.spdt;
      const script = document.createElement('script');
      script.src = '/ping.min.js';
      await new Promise((resolve, reject) => {
        script.onload = resolve;
        script.onerror = reject;
        document.head.appendChild(script);
      });
      return w.spdt === first && typeof w.spdt === 'function';
    });
    expect(same).toBe(true);
    // One installed pixel sees a route change once and still knows its key.
    await page.evaluate(() => history.pushState({}, '', '/once/next'));
    await site.waitForEvents(key, 2);
    const events = await sendMarker(page, site, key);
    expect(events.map((e) => [e.action, new URL(e.body.url).pathname])).toEqual([
      ['view', `/once/${key}`],
      ['view', '/once/next'],
      ['custom_event_5', '/once/next'],
    ]);
    expectClean(seen);
  });

  test("Spotify's snippet pasted twice loads one bundle; its second view is dropped", async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const tagRequests: string[] = [];
    page.on('request', (r) => /\/ping\.min\.js(\?|$)/.test(r.url()) && tagRequests.push(r.url()));
    const twice = spotifySnippet('/ping.min.js', key) + spotifySnippet('/ping.min.js', key);
    await page.goto(site.page(html(twice)));
    await tagLoaded(page);
    const events = await sendMarker(page, site, key);
    expect(events.map((e) => e.action).sort()).toEqual(['custom_event_5', 'view']);
    expect(tagRequests).toHaveLength(1);
    expect(await page.locator('script[src*="ping.min.js"]').count()).toBe(1);
    expectClean(seen);
  });

  test('noscript: with JavaScript disabled the image is requested and stored as a view', async ({ browser, site }) => {
    const key = newKey();
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    const seen = watchPage(page);
    const image = page.waitForRequest((r) => r.url().includes('/v1/img?'));
    const url = site.page(html(ours(key)));
    await page.goto(url);
    expect(new URL((await image).url()).searchParams.get('key')).toBe(key);
    const [view] = await site.waitForEvents(key, 1);
    // The page's URL comes from the image request's Referer (SPEC §8).
    expect(view).toMatchObject({ key, action: 'view', transport: 'noscript', body: { url } });
    // The hit carries no event id: each page load gets its own, so a second view is not a duplicate.
    await page.reload();
    const views = await site.waitForEvents(key, 2);
    expect(views.map((e) => [e.action, e.transport])).toEqual([['view', 'noscript'], ['view', 'noscript']]);
    expect(views[1].event_id).not.toBe(views[0].event_id);
    expectClean(seen);
    await context.close();
  });
});

test.describe('SPEC §1 and §3: the endpoint', () => {
  test('defaults to the directory of the ping.min.js URL', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    site.page('', { path: '/dist/v1/ingest' }); // answers the beacon, so the page logs no 404
    const beacon = page.waitForRequest((r) => r.method() === 'POST' && r.url().includes('/v1/ingest'));
    await page.goto(site.page(html(spotifySnippet('/dist/ping.min.js', key))));
    const request = await beacon;
    expect(request.url()).toBe(`${site.origin}/dist/v1/ingest`);
    const body = JSON.parse(request.postData()!);
    expect(body.batch[0]).toMatchObject({ pid: key, events: [{ action: 'view' }] });
    expectClean(seen);
  });

  test('conf({ endpoint }) overrides the default, in both snippets', async ({ page, site }) => {
    const spotifyKey = newKey();
    const ourKey = newKey();
    const seen = watchPage(page);
    const calls = `w.spdt('conf', { endpoint: '${site.origin}' }); w.spdt('view');`;
    await page.goto(site.page(html(spotifySnippet('/dist/ping.min.js', spotifyKey, calls))));
    expect((await site.waitForEvents(spotifyKey, 1))[0].action).toBe('view');

    await page.goto(site.page(html(ours(ourKey, { src: '/dist/ping.min.js', endpoint: site.origin }))));
    expect((await site.waitForEvents(ourKey, 1))[0].action).toBe('view');
    expectClean(seen);
  });
});
