/**
 * SPEC §2, commands: validation and normalisation as the collector stores it, one `[spdt]` warning
 * per bad field, unknown commands, held events before `conf`, `options.key`, and hostile input.
 */
import type { Page } from '@playwright/test';
import { test, expect, html, spotifySnippet, newKey, tagLoaded, watchPage, type Site, expectClean, waitForMatch, sendMarker } from './fixtures';

type Seen = ReturnType<typeof watchPage>;

/** A page whose tag is loaded and configured with `key` (no view sent). */
async function openPixel(page: Page, site: Site, key: string): Promise<Seen> {
  const seen = watchPage(page);
  await page.goto(site.page(html(spotifySnippet('/ping.min.js', key, ''))));
  await tagLoaded(page);
  return seen;
}

/** Calls `spdt(command, JSON.parse(propsJson), options)` in the page (JSON.parse keeps `__proto__` an own key). */
const call = (page: Page, command: string, propsJson?: string, options?: object) =>
  page.evaluate(([c, p, o]) => (window as any).spdt(c, p === undefined ? undefined : JSON.parse(p), o), [command, propsJson, options] as const);



/** The page's console warnings so far: a console message logged now arrives after all earlier ones. */
async function warningsSoFar(page: Page, seen: Seen): Promise<string[]> {
  const mark = 'console-mark-' + Math.random();
  const arrived = new Promise<void>((resolve) => page.on('console', (m) => m.text() === mark && resolve()));
  await page.evaluate((m) => console.info(m), mark);
  await arrived;
  return seen.warnings.slice();
}


const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test.describe('SPEC §2: validation and normalisation', () => {
  test('a purchase is stored exactly normalised, without warnings', async ({ page, site }) => {
    const key = newKey();
    const seen = await openPixel(page, site, key);
    const props = {
      value: '79.99',
      currency: 'usd',
      order_id: 12345,
      product_id: 42,
      product_name: '  Shirt  ',
      quantity: '2',
      is_new_customer: 'true',
      discount_code: 'SPRING',
      event_id: 'order-12345',
      line_items: [
        { product_id: 7, variant_id: 'v1', value: '10', quantity: 1, color: 'red' },
        { product_id: 'p8', product_name: 'Hat', value: 5, quantity: '3', sku: 'zz', nested: { a: 1 } },
      ],
      utm_campaign: 'podcast',
      score: 3,
      gift: false,
    };
    await call(page, 'purchase', JSON.stringify(props));
    const [purchase] = await site.waitForEvents(key, 1);
    expect(purchase.action).toBe('purchase');
    expect(purchase.event_id).toBe('order-12345');
    expect(purchase.body).toEqual({
      url: page.url(),
      value: 79.99,
      currency: 'USD',
      order_id: '12345',
      product_id: '42',
      product_name: 'Shirt',
      quantity: 2,
      is_new_customer: true,
      discount_code: 'SPRING',
      line_items: [
        { product_id: '7', variant_id: 'v1', value: 10, quantity: 1 },
        { product_id: 'p8', product_name: 'Hat', value: 5, quantity: 3 },
      ],
      utm_campaign: 'podcast',
      score: 3,
      gift: false,
    });
    expect(await warningsSoFar(page, seen)).toEqual([]);
    expectClean(seen);
  });

  const many = <T,>(n: number, make: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => make(i));
  const long = 'x'.repeat(300);
  const cases: { name: string; command: string; props: string; field: RegExp; body: Record<string, unknown> }[] = [
    {
      name: "value 'abc'",
      command: 'purchase',
      props: JSON.stringify({ value: 'abc', currency: 'USD', order_id: 'A1' }),
      field: /value/,
      body: { currency: 'USD', order_id: 'A1' },
    },
    {
      name: "currency '£'",
      command: 'purchase',
      props: JSON.stringify({ value: 5, currency: '£', order_id: 'A2' }),
      field: /currency/,
      body: { value: 5, order_id: 'A2' },
    },
    {
      name: 'a value without a currency',
      command: 'lead',
      props: JSON.stringify({ value: 5, type: 'demo' }),
      field: /currency/,
      body: { value: 5, type: 'demo' },
    },
    {
      name: 'quantity 2.5',
      command: 'addtocart',
      props: JSON.stringify({ product_id: 'p1', quantity: 2.5 }),
      field: /quantity/,
      body: { product_id: 'p1' },
    },
    {
      name: 'a 300-character string (truncated to 256)',
      command: 'product',
      props: JSON.stringify({ product_id: 'p2', product_name: long }),
      field: /product_name/,
      body: { product_id: 'p2', product_name: long.slice(0, 256) },
    },
    {
      name: 'a __proto__ free prop',
      command: 'custom_event_1',
      props: '{"__proto__": {"polluted": true}, "ok": "yes"}',
      field: /__proto__/,
      body: { ok: 'yes' },
    },
    {
      name: '101 free props',
      command: 'custom_event_2',
      props: JSON.stringify(Object.fromEntries(many(101, (i) => ['p' + i, i]))),
      field: /p100|props/,
      body: Object.fromEntries(many(100, (i) => ['p' + i, i])),
    },
    {
      name: '101 line items',
      command: 'checkout',
      props: JSON.stringify({ value: 1, currency: 'EUR', line_items: many(101, (i) => ({ product_id: 'i' + i })) }),
      field: /line_items/,
      body: { value: 1, currency: 'EUR', line_items: many(100, (i) => ({ product_id: 'i' + i })) },
    },
  ];
  for (const c of cases) {
    test(`${c.name}: the event is stored, only the bad field dropped, with one [spdt] warning`, async ({ page, site }) => {
      const key = newKey();
      const seen = await openPixel(page, site, key);
      await call(page, c.command, c.props);
      const [event] = await site.waitForEvents(key, 1);
      expect(event.action).toBe(c.command);
      expect(event.body).toEqual({ url: page.url(), ...c.body });
      const warnings = await warningsSoFar(page, seen);
      expect(warnings).toHaveLength(1);
      expect(warnings[0].startsWith('[spdt]')).toBe(true);
      expect(warnings[0]).toContain(c.command);
      expect(warnings[0]).toMatch(c.field);
      expect(await page.evaluate(() => ({} as any).polluted)).toBeUndefined();
      expectClean(seen);
    });
  }

  test('an unknown command is warned and nothing is sent', async ({ page, site }) => {
    const key = newKey();
    const seen = await openPixel(page, site, key);
    await call(page, 'purchased', JSON.stringify({ value: 1, currency: 'EUR' }));
    const events = await sendMarker(page, site, key);
    expect(events.map((e) => e.action)).toEqual(['custom_event_5']);
    const warnings = await warningsSoFar(page, seen);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^\[spdt\].*purchased/);
    expectClean(seen);
  });

  test('custom without event_name is warned and not sent; with it, it is sent', async ({ page, site }) => {
    const key = newKey();
    const seen = await openPixel(page, site, key);
    await call(page, 'custom', JSON.stringify({ value: 2, currency: 'EUR' }));
    await call(page, 'custom', JSON.stringify({ event_name: 'quiz_done', value: 3, currency: 'EUR' }));
    const events = await sendMarker(page, site, key);
    expect(events.map((e) => [e.action, e.body.event_name]).sort()).toEqual([
      ['custom', 'quiz_done'],
      ['custom_event_5', undefined],
    ]);
    const warnings = await warningsSoFar(page, seen);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^\[spdt\] custom.*event_name/);
    expectClean(seen);
  });

  test('event_id: kept when given, a UUID v4 when absent, a new UUID v4 (warned) when invalid', async ({ page, site }) => {
    const key = newKey();
    const seen = await openPixel(page, site, key);
    await page.evaluate(() => {
      const spdt = (window as any).spdt;
      spdt('custom_event_1', { n: 1, event_id: 'my-id-1' });
      spdt('custom_event_1', { n: 2 });
      spdt('custom_event_1', { n: 3, event_id: 'e'.repeat(130) });
    });
    const events = await site.waitForEvents(key, 3);
    expect(events.map((e) => e.body)).toEqual([1, 2, 3].map((n) => ({ url: page.url(), n })));
    expect(events[0].event_id).toBe('my-id-1');
    expect(events[1].event_id).toMatch(UUID_V4);
    expect(events[2].event_id).toMatch(UUID_V4);
    expect(events[2].event_id).not.toBe(events[1].event_id);
    const warnings = await warningsSoFar(page, seen);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^\[spdt\] custom_event_1.*event_id/);
    expectClean(seen);
  });

  test('events before any conf are held (at most 100, oldest dropped) and sent once a key is set', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const stub = `<script>window.spdt = function () { (spdt.q = spdt.q || []).push(arguments); };</script>
      <script async src="/ping.min.js"></script>`;
    await page.goto(site.page(html(stub)));
    await tagLoaded(page);
    await page.evaluate(() => {
      for (let n = 0; n < 105; n++) (window as any).spdt('custom_event_1', { n });
    });
    await page.evaluate((k) => (window as any).spdt('conf', { key: k }), key);
    const events = await sendMarker(page, site, key);
    expect(events).toHaveLength(101);
    expect(events.filter((e) => e.action === 'custom_event_1').map((e) => e.body.n)).toEqual(Array.from({ length: 100 }, (_, i) => i + 5));
    expectClean(seen);
  });

  test('options.key sends that one call to another key', async ({ page, site }) => {
    const key = newKey();
    const other = newKey();
    const seen = await openPixel(page, site, key);
    await call(page, 'custom_event_1', JSON.stringify({ n: 1 }), { key: other });
    await call(page, 'custom_event_1', JSON.stringify({ n: 2 }));
    const [elsewhere] = await site.waitForEvents(other, 1);
    expect(elsewhere).toMatchObject({ key: other, action: 'custom_event_1', body: { n: 1 } });
    const events = await sendMarker(page, site, key);
    expect(events.map((e) => [e.action, e.body.n]).sort()).toEqual([['custom_event_1', 2], ['custom_event_5', undefined]]);
    expect(await site.events(other)).toHaveLength(1);
    expectClean(seen);
  });
});

test.describe('SPEC §2: truncation at 256 never splits a surrogate pair', () => {
  // An emoji is two UTF-16 units: a cut between them sends a lone half, which arrives as U+FFFD.
  const EMOJI = '\u{1F600}';
  const AT_BOUNDARY = 'a'.repeat(255) + EMOJI + 'tail';
  /** JSON.stringify writes a lone surrogate as an escape, and a pair as itself. */
  const LONE_HALF_ESCAPED = /\\ud[89a-f]/i;

  for (const transport of ['beacon', 'image'] as const)
    test(`by ${transport}: an emoji across character 256 is dropped whole; the collector stores no U+FFFD`, async ({ page, site }) => {
      if (transport == 'image') await page.addInitScript(() => delete (Navigator.prototype as any).sendBeacon);
      const key = newKey();
      const seen = await openPixel(page, site, key);
      const props = {
        order_id: AT_BOUNDARY,
        product_name: 'b'.repeat(254) + EMOJI + EMOJI,
        note: AT_BOUNDARY,
        line_items: [{ product_id: 'p', variant_name: 'c' + EMOJI.repeat(200) }],
      };
      await call(page, 'purchase', JSON.stringify(props));
      const [purchase] = await site.waitForEvents(key, 1);
      expect(purchase.transport).toBe(transport);
      expect(purchase.body.order_id).toBe('a'.repeat(255));
      expect(purchase.body.product_name).toBe('b'.repeat(254) + EMOJI);
      expect(purchase.body.note).toBe('a'.repeat(255));
      expect(purchase.body.line_items).toEqual([{ product_id: 'p', variant_name: 'c' + EMOJI.repeat(127) }]);
      const stored = JSON.stringify(await site.events(key));
      expect(stored).not.toContain('\uFFFD');
      expect(stored).not.toMatch(LONE_HALF_ESCAPED);
      expect((await warningsSoFar(page, seen)).filter((w) => w.includes('truncated to 256')).sort()).toEqual([
        '[spdt] purchase line_items[0].variant_name: truncated to 256',
        '[spdt] purchase note: truncated to 256',
        '[spdt] purchase order_id: truncated to 256',
        '[spdt] purchase product_name: truncated to 256',
      ]);
      expectClean(seen);
    });
});

test.describe('SPEC §2: no call throws into the page', () => {
  test('hostile input: no page error, no console error, no unhandled rejection, no pollution', async ({ page, site }) => {
    const key = newKey();
    await page.addInitScript(() => {
      const w = window as any;
      w.__rejections = [];
      w.__errors = [];
      addEventListener('unhandledrejection', (e) => w.__rejections.push(String(e.reason)));
      addEventListener('error', (e) => w.__errors.push(String(e.message)));
    });
    const seen = await openPixel(page, site, key);
    const protoBefore = await page.evaluate(() => Object.getOwnPropertyNames(Object.prototype).sort());

    const thrown = await page.evaluate(() => {
      const spdt = (window as any).spdt;
      const boom = () => {
        throw new Error('boom');
      };
      const cyclic: any = { a: 1 };
      cyclic.self = cyclic;
      cyclic.list = [cyclic];
      const getters = Object.defineProperty({}, 'value', { get: boom, enumerable: true });
      Object.defineProperty(getters, 'free', { get: boom, enumerable: true });
      const traps = { get: boom, has: boom, ownKeys: boom, getOwnPropertyDescriptor: boom, getPrototypeOf: boom, apply: boom };
      const proxy = new Proxy({}, traps);
      const keysOnly = new Proxy({ value: 1, currency: 'EUR' }, { get: boom });
      const arrayProxy = new Proxy([1, 2], { get: boom });
      const fnProxy = new Proxy(function () {}, traps);
      const hugeString = 'x'.repeat(1 << 20);
      const calls: [string, () => unknown][] = [
        ['no args', () => spdt()],
        ['null command', () => spdt(null)],
        ['undefined command', () => spdt(undefined, undefined, undefined)],
        ['number command', () => spdt(42, 42, 42)],
        ['symbol command', () => spdt(Symbol('x'))],
        ['bigint command', () => spdt(10n)],
        ['object command', () => spdt({})],
        ['null-prototype command', () => spdt(Object.create(null))],
        ['throwing toString command', () => spdt({ toString: boom, valueOf: boom, [Symbol.toPrimitive]: boom })],
        ['proxy command', () => spdt(proxy)],
        ['huge command', () => spdt(hugeString)],
        ['null props', () => spdt('view', null)],
        ['number props', () => spdt('custom_event_1', 42)],
        ['string props', () => spdt('custom_event_1', 'props')],
        ['symbol props', () => spdt('custom_event_1', Symbol('p'))],
        ['bigint props', () => spdt('custom_event_1', 5n)],
        ['symbol values and keys', () => spdt('custom_event_1', { s: Symbol('v'), [Symbol('k')]: 1 })],
        ['bigint values', () => spdt('purchase', { value: 10n, quantity: 2n, big: 3n, currency: 'EUR' })],
        ['cyclic props', () => spdt('custom_event_1', cyclic)],
        ['cyclic line items', () => spdt('purchase', { value: 1, currency: 'EUR', line_items: [cyclic, cyclic.list] })],
        ['cyclic options', () => spdt('custom_event_1', { n: 1 }, cyclic)],
        ['throwing getters', () => spdt('purchase', getters)],
        ['throwing getters in line items', () => spdt('checkout', { line_items: [getters] })],
        ['proxy props', () => spdt('purchase', proxy)],
        ['proxy with throwing get', () => spdt('purchase', keysOnly)],
        ['proxy options', () => spdt('custom_event_1', {}, proxy)],
        ['proxy line items', () => spdt('checkout', { line_items: arrayProxy })],
        ['proxy line item', () => spdt('checkout', { line_items: [proxy] })],
        ['function proxy props', () => spdt('custom_event_1', fnProxy)],
        ['proxy conf', () => spdt('conf', proxy)],
        ['null conf', () => spdt('conf', null)],
        ['number conf', () => spdt('conf', 5)],
        ['__proto__ conf', () => spdt('conf', JSON.parse('{"__proto__": {"polluted": true}}'))],
        ['proxy consent', () => spdt('consent', proxy)],
        ['object consent', () => spdt('consent', {})],
        ['huge string prop', () => spdt('custom_event_1', { big: hugeString, value: hugeString })],
        ['huge alias', () => spdt('alias', { email: hugeString, phone_number: hugeString, id: hugeString })],
        ['__proto__ props', () => spdt('custom_event_1', JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}'))],
        ['on/off with bad args', () => (spdt.on(), spdt.on(null, null), spdt.on('send', 'not a function'), spdt.off(), spdt.off(5, 5))],
        ['throwing listeners', () => (spdt.on('send', boom), spdt.on('warn', boom), spdt('no_such_command'))],
      ];
      const failures: string[] = [];
      for (const [name, fn] of calls) {
        try {
          fn();
        } catch (e) {
          failures.push(`${name}: ${e}`);
        }
      }
      return failures;
    });
    expect(thrown).toEqual([]);

    await page.evaluate(() => (window as any).spdt('purchase', { value: 9, currency: 'EUR', order_id: 'after-hostile' }));
    const events = await waitForMatch(site, key, (e) => e.body.order_id === 'after-hostile');
    expect(events.find((e) => e.body.order_id === 'after-hostile')!.body).toEqual({
      url: page.url(),
      value: 9,
      currency: 'EUR',
      order_id: 'after-hostile',
    });
    await warningsSoFar(page, seen); // every console message of the calls above has arrived
    expect(await page.evaluate(() => Object.getOwnPropertyNames(Object.prototype).sort())).toEqual(protoBefore);
    expect(await page.evaluate(() => [({} as any).polluted, (Object.prototype as any).polluted])).toEqual([undefined, undefined]);
    expect(await page.evaluate(() => [(window as any).__rejections, (window as any).__errors])).toEqual([[], []]);
    expectClean(seen);
  });

  test('spdt.on and spdt.off with hostile arguments do not throw', async ({ page, site }) => {
    const key = newKey();
    const seen = await openPixel(page, site, key);
    const thrown = await page.evaluate(() => {
      const spdt = (window as any).spdt;
      const boom = () => {
        throw new Error('boom');
      };
      const proxy = new Proxy({}, { get: boom, has: boom, ownKeys: boom, getOwnPropertyDescriptor: boom, getPrototypeOf: boom });
      const calls: [string, () => unknown][] = [
        ['on(proxy, fn)', () => spdt.on(proxy, () => {})],
        ['off(proxy, fn)', () => spdt.off(proxy, () => {})],
        ['on(throwing toString, fn)', () => spdt.on({ toString: boom }, () => {})],
        ['on(symbol, fn)', () => spdt.on(Symbol('send'), () => {})],
        ['on(send, proxy)', () => spdt.on('send', proxy)],
      ];
      const failures: string[] = [];
      for (const [name, fn] of calls) {
        try {
          fn();
        } catch (e) {
          failures.push(`${name}: ${e}`);
        }
      }
      return failures;
    });
    expect(thrown).toEqual([]);
    await call(page, 'custom_event_1', JSON.stringify({ n: 1 }));
    await site.waitForEvents(key, 1);
    expectClean(seen);
  });
});
