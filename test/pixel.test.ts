/**
 * Behaviour of the whole pixel in jsdom, through the npm entry `createPixel` (SPEC §2–§6).
 * The only fake is the browser edge `navigator.sendBeacon` (jsdom has none); every test gets a
 * fresh module, because the pixel patches `history` and listens on `window`. Pixels of earlier
 * tests are retired with `consent('denied')` so that their listeners stay silent.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Pixel, PixelOptions } from '../src/types';
import {
  HEX32, KEY, ORIGIN, OTHER_KEY, START_PATH, T0, UUID_V4,
  accepted, actions, advance, captureConsole, captureImages, changeVisibility, cookieNames, delivered,
  eventIds, everythingSent, flush, getCookie, installBeacon, parseBody, resetPage, setGpc, setOnline,
  setReferrer, sha256, storageKeys, type Beacon,
} from './helpers/pixel';

const START_URL = ORIGIN + START_PATH;
const INGEST = ORIGIN + '/v1/ingest';

let created: Pixel[] = [];
let beacon: Beacon;
let warnings: ReturnType<typeof captureConsole>;

/** A pixel from a freshly imported module. */
async function newPixel(options: PixelOptions = { key: KEY }): Promise<Pixel> {
  vi.resetModules();
  const { createPixel } = await import('../src/index');
  const pixel = createPixel(options);
  created.push(pixel);
  return pixel;
}

const warned = () => warnings.lines().filter((l) => l.startsWith('[spdt]'));

beforeEach(() => {
  resetPage();
  vi.useFakeTimers({ now: T0 });
  beacon = installBeacon(true);
  warnings = captureConsole('warn');
});

afterEach(() => {
  for (const pixel of created) {
    pixel.conf({ debug: false });
    pixel.consent('denied');
  }
  created = [];
  vi.useRealTimers();
  vi.restoreAllMocks();
  resetPage();
});

// =============================================================================================
describe('§2 Commands', () => {
  it('a view carries the page url, no empty referrer, and a generated UUID v4 event_id', async () => {
    const pixel = await newPixel();
    pixel.view();
    await flush();
    const [e] = delivered(beacon);
    expect(delivered(beacon)).toHaveLength(1);
    expect(e.action).toBe('view');
    expect(e.body.url).toBe(START_URL);
    expect('referrer' in e.body).toBe(false);
    expect(e.event_id).toMatch(UUID_V4);
    expect(e.item.pid).toBe(KEY);
  });

  it("carries the document's referrer", async () => {
    setReferrer('https://search.example.org/?q=shoes');
    const pixel = await newPixel();
    pixel.view();
    await flush();
    expect(delivered(beacon)[0].body.referrer).toBe('https://search.example.org/?q=shoes');
  });

  it('validates and normalises props, dropping only the bad fields, with [spdt] warnings naming event and field', async () => {
    const pixel = await newPixel();
    pixel.purchase({
      value: '79.99',
      currency: 'usd',
      order_id: 12345 as any,
      is_new_customer: 'true',
      quantity: '2',
      discount_code: '  SPRING  ',
      line_items: [{ product_id: 7 as any, value: '5', quantity: 1, colour: 'red' } as any],
      colour: 'blue',
      nested: { a: 1 },
      'bad-name': 1,
      url: 'https://evil.example/',
      empty: '',
    });
    await flush();
    const [e] = delivered(beacon);
    expect(e.action).toBe('purchase');
    expect(e.body).toEqual({
      url: START_URL,
      value: 79.99,
      currency: 'USD',
      order_id: '12345',
      is_new_customer: true,
      quantity: 2,
      discount_code: 'SPRING',
      line_items: [{ product_id: '7', value: 5, quantity: 1 }],
      colour: 'blue',
    });
    expect(warned().some((w) => w.includes('purchase') && w.includes('nested'))).toBe(true);
    expect(warned().some((w) => w.includes('purchase') && w.includes('bad-name'))).toBe(true);
  });

  it('a bad currency is dropped with a warning, the event still goes out', async () => {
    const pixel = await newPixel();
    pixel.lead({ value: 10, currency: '£', type: 'demo' });
    await flush();
    const [e] = delivered(beacon);
    expect(e.body).toMatchObject({ value: 10, type: 'demo' });
    expect('currency' in e.body).toBe(false);
    expect(warned().some((w) => w.includes('lead') && w.includes('currency'))).toBe(true);
  });

  it('keeps a valid event_id and replaces an invalid one with a UUID v4, warning', async () => {
    const pixel = await newPixel();
    pixel.purchase({ event_id: 'order-123', value: 1, currency: 'EUR' });
    pixel.signup({ event_id: 'x'.repeat(129) });
    await flush();
    const [kept, replaced] = delivered(beacon);
    expect(kept.event_id).toBe('order-123');
    expect(replaced.event_id).toMatch(UUID_V4);
    expect(warned().some((w) => w.includes('signup') && w.includes('event_id'))).toBe(true);
    expect('event_id' in kept.body).toBe(false);
  });

  it("`time` is the call's own time, `sent_at` the send time", async () => {
    const pixel = await newPixel();
    pixel.view();
    vi.setSystemTime(T0 + 5000); // the send happens later than the call
    await flush();
    const [e] = delivered(beacon);
    expect(e.time).toBe(T0);
    expect(e.payload.sent_at).toBe(T0 + 5000);
  });

  it('every command method sends its own action, in call order', async () => {
    const pixel = await newPixel();
    pixel.view();
    pixel.product({ product_id: 'p1' });
    pixel.addtocart({ product_id: 'p1', quantity: 1 });
    pixel.checkout({ value: 3, currency: 'GBP' });
    pixel.purchase({ value: 3, currency: 'GBP' });
    pixel.lead({ category: 'b2b' });
    pixel.signup({ sign_up_method: 'email' });
    pixel.custom_event_1();
    pixel.custom_event_2();
    pixel.custom_event_3();
    pixel.custom_event_4();
    pixel.custom_event_5({ value: 1, currency: 'USD', tier: 'gold' });
    pixel.custom({ event_name: 'quiz_done' });
    pixel('product', { product_id: 'p2' });
    await flush();
    expect(actions(beacon)).toEqual([
      'view', 'product', 'addtocart', 'checkout', 'purchase', 'lead', 'signup', 'custom_event_1',
      'custom_event_2', 'custom_event_3', 'custom_event_4', 'custom_event_5', 'custom', 'product',
    ]);
    const events = delivered(beacon);
    expect(events[11].body.tier).toBe('gold');
    expect(events[12].body.event_name).toBe('quiz_done');
    expect(events[13].body.product_id).toBe('p2');
  });

  it('an unknown command gives one [spdt] warning and sends nothing', async () => {
    const pixel = await newPixel();
    (pixel as any)('pageview', { a: 1 });
    await flush();
    expect(beacon.calls).toHaveLength(0);
    expect(warned()).toHaveLength(1);
    expect(warned()[0]).toContain('pageview');
  });

  it('`custom` without event_name warns and sends nothing', async () => {
    const pixel = await newPixel();
    pixel.custom({ value: 1, currency: 'USD' } as any);
    await flush();
    expect(beacon.calls).toHaveLength(0);
    expect(warned().some((w) => w.includes('custom') && w.includes('event_name'))).toBe(true);
  });

  it('events before any key are held (at most 100, oldest dropped) and sent once conf sets a key', async () => {
    const pixel = await newPixel({});
    for (let i = 0; i < 105; i++) pixel.custom_event_1({ event_id: 'held-' + i });
    await flush();
    expect(beacon.calls).toHaveLength(0);
    pixel.conf({ key: KEY });
    await flush();
    expect(eventIds(beacon)).toEqual(Array.from({ length: 100 }, (_, i) => 'held-' + (i + 5)));
    expect(delivered(beacon).every((e) => e.item.pid == KEY)).toBe(true);
  });
});

// =============================================================================================
describe('§3 Configuration', () => {
  it('the endpoint defaults to the page origin', async () => {
    const pixel = await newPixel();
    pixel.view();
    await flush();
    expect(beacon.calls.map((c) => c.url)).toEqual([INGEST]);
  });

  it('conf({endpoint}) overrides it, trailing slash stripped', async () => {
    const pixel = await newPixel();
    pixel.conf({ endpoint: 'https://collect.example.net/px/' });
    pixel.view();
    await flush();
    expect(beacon.calls.map((c) => c.url)).toEqual(['https://collect.example.net/px/v1/ingest']);
  });

  it('a later conf overrides the options it names and keeps the rest', async () => {
    const pixel = await newPixel({ key: KEY, endpoint: 'https://one.example.net' });
    pixel.conf({ key: OTHER_KEY });
    pixel.signup({ event_id: 'a' });
    await flush();
    pixel.conf({ endpoint: 'https://two.example.net' });
    pixel.signup({ event_id: 'b' });
    await flush();
    expect(beacon.calls.map((c) => c.url)).toEqual(['https://one.example.net/v1/ingest', 'https://two.example.net/v1/ingest']);
    expect(delivered(beacon).map((e) => [e.event_id, e.item.pid])).toEqual([['a', OTHER_KEY], ['b', OTHER_KEY]]);
  });

  it('options.key sends that one call to another key, as its own batch item in the same request', async () => {
    const pixel = await newPixel();
    pixel.view();
    pixel.purchase({ event_id: 'other', value: 2, currency: 'USD' }, { key: OTHER_KEY });
    pixel.signup({ event_id: 'mine' });
    await flush();
    expect(beacon.calls).toHaveLength(1);
    const { batch } = parseBody(beacon.calls[0].body);
    expect(batch.map((item) => item.pid).sort()).toEqual([KEY, OTHER_KEY].sort());
    const mine = batch.find((item) => item.pid == KEY)!;
    const other = batch.find((item) => item.pid == OTHER_KEY)!;
    expect(mine.events.map((e) => e.action)).toEqual(['view', 'signup']);
    expect(other.events.map((e) => e.event_id)).toEqual(['other']);
  });

  describe('the view rule', () => {
    it('drops a view for the same key and URL within 1 s', async () => {
      const pixel = await newPixel();
      pixel.view();
      await advance(999);
      pixel.view();
      await flush();
      expect(actions(beacon)).toEqual(['view']);
    });

    it('sends it again after 1 s', async () => {
      const pixel = await newPixel();
      pixel.view();
      await advance(1000);
      pixel.view();
      await flush();
      expect(actions(beacon)).toEqual(['view', 'view']);
    });

    it('sends a view for another URL or another key at once', async () => {
      const pixel = await newPixel({ key: KEY, spa: false });
      pixel.view();
      pixel.view({}, { key: OTHER_KEY });
      history.pushState(null, '', '/products/2');
      pixel.view();
      await flush();
      const sent = delivered(beacon).map((e) => e.item.pid + ' ' + e.body.url);
      expect(sent.sort()).toEqual([KEY + ' ' + START_URL, KEY + ' ' + ORIGIN + '/products/2', OTHER_KEY + ' ' + START_URL].sort());
    });

    it("drops an app's manual view right after the automatic one", async () => {
      const pixel = await newPixel();
      history.pushState(null, '', '/products/2');
      pixel.view();
      await flush();
      expect(delivered(beacon).map((e) => e.body.url)).toEqual([ORIGIN + '/products/2']);
    });
  });

  describe('spa', () => {
    it('pushState to a new path is an automatic view', async () => {
      await newPixel();
      history.pushState({}, '', '/products/2');
      await flush();
      expect(delivered(beacon).map((e) => [e.action, e.body.url])).toEqual([['view', ORIGIN + '/products/2']]);
    });

    it('a query change is a view', async () => {
      await newPixel();
      history.pushState(null, '', '/products/1?ref=y');
      await flush();
      expect(delivered(beacon).map((e) => e.body.url)).toEqual([ORIGIN + '/products/1?ref=y']);
    });

    it('replaceState to a new path is a view, to the same URL is not', async () => {
      await newPixel();
      history.replaceState(null, '', START_PATH);
      await flush();
      expect(beacon.calls).toHaveLength(0);
      history.replaceState(null, '', '/cart');
      await flush();
      expect(delivered(beacon).map((e) => e.body.url)).toEqual([ORIGIN + '/cart']);
    });

    it('a change of hash alone is not a view', async () => {
      await newPixel();
      history.pushState(null, '', '#reviews');
      location.hash = 'specs';
      await flush();
      expect(beacon.calls).toHaveLength(0);
    });

    it('spa: false sends no automatic view, also when set by a later conf', async () => {
      const off = await newPixel({ key: KEY, spa: false });
      history.pushState(null, '', '/a');
      await flush();
      expect(beacon.calls).toHaveLength(0);
      off.consent('denied');

      const later = await newPixel();
      later.conf({ spa: false });
      history.pushState(null, '', '/b');
      await flush();
      expect(beacon.calls).toHaveLength(0);
    });
  });

  describe('debug', () => {
    it('debug: true logs every command and request, each line prefixed [spdt]', async () => {
      const logs = captureConsole('log');
      const pixel = await newPixel({ key: KEY, debug: true });
      pixel.signup({ sign_up_method: 'google' });
      await flush();
      const lines = logs.lines();
      expect(lines.length).toBeGreaterThanOrEqual(2);
      expect(lines.every((l) => l.startsWith('[spdt]'))).toBe(true);
      expect(lines.some((l) => l.includes('signup'))).toBe(true);
      expect(lines.some((l) => l.includes(INGEST))).toBe(true);
    });

    it('is off by default and turned on by ?spdt_debug=1', async () => {
      const logs = captureConsole('log');
      const quiet = await newPixel();
      quiet.view();
      await flush();
      expect(logs.lines()).toHaveLength(0);
      quiet.consent('denied');

      history.replaceState(null, '', '/?spdt_debug=1');
      const loud = await newPixel();
      loud.view();
      await flush();
      expect(logs.lines().length).toBeGreaterThan(0);
      expect(logs.lines().every((l) => l.startsWith('[spdt]'))).toBe(true);
    });
  });
});

// =============================================================================================
describe('§4 Identity on the client', () => {
  it('uid is the __spdt cookie and sid the __spdt_s cookie, both 32 hex', async () => {
    const pixel = await newPixel();
    pixel.view();
    await flush();
    const { item } = delivered(beacon)[0];
    expect(item.uid).toMatch(HEX32);
    expect(item.sid).toMatch(HEX32);
    expect(getCookie('__spdt')).toBe(item.uid);
    expect(getCookie('__spdt_s')).toBe(item.sid);
  });

  it('reads the click id spclid on a route change', async () => {
    await newPixel();
    history.pushState(null, '', '/landing?spclid=abc123');
    await flush();
    const [e] = delivered(beacon);
    expect(e.item.cid).toBe('abc123');
    expect(getCookie('sp_click_id')).toBe('abc123');
  });

  it('spclid wins over sp_click_id, and a new click id replaces the old', async () => {
    const pixel = await newPixel();
    history.pushState(null, '', '/a?sp_click_id=second&spclid=first');
    await flush();
    history.pushState(null, '', '/b?sp_click_id=newer');
    pixel.signup();
    await flush();
    expect(delivered(beacon).map((e) => e.item.cid)).toEqual(['first', 'newer', 'newer']);
  });

  it('reads the click id of the landing URL', async () => {
    history.replaceState(null, '', '/?spclid=landed');
    const pixel = await newPixel();
    pixel.view();
    await flush();
    expect(delivered(beacon)[0].item.cid).toBe('landed');
  });
});

// =============================================================================================
describe('§5 Privacy', () => {
  describe('consent', () => {
    it("'pending' sends nothing and writes no cookie and no storage", async () => {
      const pixel = await newPixel({ key: KEY, consent: 'pending' });
      pixel.view();
      pixel.alias({ email: 'a@b.example', id: 'u-1' });
      pixel.purchase({ value: 1, currency: 'USD' });
      history.pushState(null, '', '/landing?spclid=abc');
      changeVisibility('hidden');
      window.dispatchEvent(new Event('pagehide'));
      await advance(10_000);
      expect(beacon.calls).toHaveLength(0);
      expect(document.cookie).toBe('');
      expect(storageKeys(localStorage)).toEqual([]);
      expect(storageKeys(sessionStorage)).toEqual([]);
    });

    it("holds at most 100 while pending; 'granted' sends them in call order", async () => {
      const pixel = await newPixel({ key: KEY, consent: 'pending' });
      for (let i = 0; i < 103; i++) pixel.custom_event_2({ event_id: 'p' + i });
      await flush();
      expect(beacon.calls).toHaveLength(0);
      pixel.consent('granted');
      await flush();
      expect(eventIds(beacon)).toEqual(Array.from({ length: 100 }, (_, i) => 'p' + (i + 3)));
    });

    it("'denied' drops held events, deletes every cookie and storage key of the pixel, and sends nothing more", async () => {
      history.replaceState(null, '', '/?spclid=click-1');
      const pixel = await newPixel();
      pixel.alias({ email: 'someone@example.com' });
      pixel.view();
      await flush();
      setOnline(false); // leaves an event in the outbox
      pixel.signup({ event_id: 'stuck' });
      await flush();
      document.cookie = 'sp_click_id=host-only; path=/'; // a copy at another domain level
      document.cookie = '__spdt=0123456789abcdef0123456789abcdef; path=/';
      localStorage.setItem('page_own', 'kept');
      expect(cookieNames()).toEqual(expect.arrayContaining(['__spdt', 'sp_click_id']));
      expect(storageKeys(localStorage)).toEqual(expect.arrayContaining(['__spdt_alias', '__spdt_outbox']));
      expect(cookieNames()).toEqual(expect.arrayContaining(['__spdt_s', '__spdt_m']));
      setOnline(true);
      const before = beacon.calls.length;

      pixel.consent('denied');
      expect(cookieNames()).not.toContain('__spdt');
      expect(cookieNames()).not.toContain('sp_click_id');
      expect(storageKeys(localStorage)).toEqual(['page_own']);
      expect(storageKeys(sessionStorage)).toEqual([]);

      pixel.view({ later: 1 });
      pixel.purchase({ value: 1, currency: 'USD' });
      history.pushState(null, '', '/next?spclid=click-2');
      window.dispatchEvent(new Event('online'));
      window.dispatchEvent(new Event('pagehide'));
      await advance(10_000);
      expect(beacon.calls.length).toBe(before);
      expect(eventIds(beacon)).not.toContain('stuck');
      expect(document.cookie).toBe('');
      expect(storageKeys(localStorage)).toEqual(['page_own']);
      expect(storageKeys(sessionStorage)).toEqual([]);
    });

    it("'denied' while pending drops the held events; a later 'granted' sends only what was called after it", async () => {
      const pixel = await newPixel({ key: KEY, consent: 'pending' });
      pixel.signup({ event_id: 'while-pending' });
      pixel.consent('denied');
      pixel.signup({ event_id: 'while-denied' });
      await flush();
      pixel.consent('granted');
      pixel.signup({ event_id: 'after-grant' });
      await flush();
      expect(eventIds(beacon)).toEqual(['after-grant']);
    });

    it('an explicit consent call made first wins over a later conf option', async () => {
      const pixel = await newPixel();
      pixel.consent('denied');
      pixel.conf({ consent: 'granted' });
      pixel.view();
      await flush();
      expect(beacon.calls).toHaveLength(0);
    });

    it('an explicit consent call made later wins over the conf option, and over any conf after it', async () => {
      const pixel = await newPixel({ key: KEY, consent: 'pending' });
      pixel.signup({ event_id: 'one' });
      pixel.consent('granted');
      pixel.conf({ consent: 'pending' });
      pixel.signup({ event_id: 'two' });
      await flush();
      expect(eventIds(beacon)).toEqual(['one', 'two']);
    });
  });

  describe('Global Privacy Control', () => {
    it('navigator.globalPrivacyControl = true puts opt_out_targeting: true on the batch item', async () => {
      setGpc(true);
      const pixel = await newPixel();
      pixel.view();
      await flush();
      expect(delivered(beacon)[0].item.opt_out_targeting).toBe(true);
    });

    it('is absent otherwise', async () => {
      const pixel = await newPixel();
      pixel.view();
      await flush();
      expect('opt_out_targeting' in delivered(beacon)[0].item).toBe(false);
    });
  });

  describe('alias', () => {
    const EMAIL = '  Jane.Doe@Example.COM ';
    const PHONE = '+44 7700 900123';
    const HASHED_EMAIL = sha256('jane.doe@example.com');
    const HASHED_PHONE = sha256('447700900123');

    it('hashes email and phone, goes out as action alias, and attaches to later batch items', async () => {
      const pixel = await newPixel();
      pixel.alias({ email: EMAIL, phone_number: PHONE, id: 'u-42' });
      pixel.purchase({ event_id: 'after', value: 5, currency: 'USD' });
      await flush();
      const [alias, purchase] = delivered(beacon);
      expect(alias.action).toBe('alias');
      expect(alias.body).toMatchObject({ hashed_email: HASHED_EMAIL, hashed_phone_number: HASHED_PHONE, id: 'u-42' });
      expect('email' in alias.body || 'phone_number' in alias.body).toBe(false);
      expect(purchase.event_id).toBe('after');
      expect(purchase.item.alias).toEqual({ hashed_email: HASHED_EMAIL, hashed_phone_number: HASHED_PHONE, id: 'u-42' });
      expect(JSON.parse(localStorage.getItem('__spdt_alias')!)).toMatchObject({ hashed_email: HASHED_EMAIL, hashed_phone_number: HASHED_PHONE });
    });

    it('a phone number with a leading 00 hashes like the + form', async () => {
      const pixel = await newPixel();
      pixel.alias({ phone_number: '0044 7700-900-123' });
      await flush();
      expect(delivered(beacon)[0].body.hashed_phone_number).toBe(HASHED_PHONE);
    });

    it('a value that is already 64 hex passes through lower-cased, never hashed twice', async () => {
      const pixel = await newPixel();
      pixel.alias({ email: HASHED_EMAIL.toUpperCase(), phone_number: HASHED_PHONE });
      await flush();
      expect(delivered(beacon)[0].body).toMatchObject({ hashed_email: HASHED_EMAIL, hashed_phone_number: HASHED_PHONE });
    });

    it('later alias calls merge into the earlier ones', async () => {
      const pixel = await newPixel();
      pixel.alias({ email: EMAIL });
      await flush();
      pixel.alias({ partner_user_id: 'p-7' });
      pixel.view();
      await flush();
      const last = delivered(beacon).at(-1)!;
      expect(last.action).toBe('view');
      expect(last.item.alias).toEqual({ hashed_email: HASHED_EMAIL, partner_user_id: 'p-7' });
      expect(JSON.parse(localStorage.getItem('__spdt_alias')!)).toEqual({ hashed_email: HASHED_EMAIL, partner_user_id: 'p-7' });
    });

    it('raw email and phone never appear in any request, from alias or as event props', async () => {
      const pixel = await newPixel();
      pixel.alias({ email: EMAIL, phone_number: PHONE });
      pixel.lead({ email: 'Lead@Example.com', phone_number: '0044 20 7946 0000' } as any);
      await flush();
      const lead = delivered(beacon).find((e) => e.action == 'lead')!;
      expect(lead.body.hashed_email).toBe(sha256('lead@example.com'));
      expect(lead.body.hashed_phone_number).toBe(sha256('442079460000'));
      expect('email' in lead.body || 'phone_number' in lead.body).toBe(false);
      const sent = everythingSent(beacon).toLowerCase();
      for (const raw of ['jane.doe@example.com', 'lead@example.com', '447700900123', '7700 900123', '442079460000', '7946 0000'])
        expect(sent).not.toContain(raw);
    });

    it('raw email and phone never appear in image-fallback URLs either', async () => {
      delete (navigator as any).sendBeacon;
      const images = captureImages();
      const pixel = await newPixel();
      pixel.alias({ email: EMAIL, phone_number: PHONE });
      pixel.signup({ email: EMAIL } as any);
      await flush();
      expect(images.length).toBe(2);
      const sent = decodeURIComponent(everythingSent(beacon, images)).toLowerCase();
      expect(sent).toContain(HASHED_EMAIL);
      for (const raw of ['jane.doe@example.com', '447700900123', '7700 900123']) expect(sent).not.toContain(raw);
    });
  });

  describe('email addresses outside email and phone_number', () => {
    const PAGE_PATH = '/welcome?email=ann%40example.com&step=2#/done?to=bob@example.org';
    const REDACTED_URL = ORIGIN + '/welcome?email=[email]&step=2#/done?to=[email]';
    const REFERRER = 'https://shop.example.co.uk/signup?e=ann%2540example.com';

    /** Loads a page whose URL and referrer hold addresses, then calls `run` on a fresh pixel. */
    async function leakyPage(run: (pixel: Pixel) => void) {
      history.replaceState(null, '', PAGE_PATH);
      setReferrer(REFERRER);
      const pixel = await newPixel();
      run(pixel);
      await flush();
    }

    it('url and referrer go out with each address as [email], by beacon', async () => {
      await leakyPage((pixel) => pixel.view());
      const [view] = delivered(beacon);
      expect(view.body.url).toBe(REDACTED_URL);
      expect(view.body.referrer).toBe('https://shop.example.co.uk/signup?e=[email]');
      expect(everythingSent(beacon)).not.toMatch(/ann|bob/);
    });

    it('url and referrer go out with each address as [email], by the image fallback', async () => {
      delete (navigator as any).sendBeacon;
      const images = captureImages();
      await leakyPage((pixel) => pixel.lead({ type: 'demo' }));
      expect(images).toHaveLength(1);
      const params = new URL(images[0]).searchParams;
      expect(params.get('url')).toBe(REDACTED_URL);
      expect(params.get('ref')).toBe('https://shop.example.co.uk/signup?e=[email]');
      expect(params.get('type')).toBe('demo');
      expect(images[0]).not.toMatch(/ann|bob/);
    });

    it('the send listener sees the redacted body too', async () => {
      const seen: any[] = [];
      await leakyPage((pixel) => {
        pixel.on('send', (info) => seen.push(info));
        pixel.view();
      });
      expect(seen).toHaveLength(1);
      expect(JSON.stringify(seen)).not.toMatch(/ann|bob/);
    });

    it('a free prop or a named string holding one is dropped with a warning; the event still goes', async () => {
      await leakyPage((pixel) => {
        pixel.lead({ note: 'ann@example.com', type: 'demo' } as any);
        pixel.alias({ id: 'Ann@Example.com', partner_user_id: 'p-1' });
      });
      const [lead, alias] = delivered(beacon);
      expect(lead.body).toEqual({ url: REDACTED_URL, referrer: 'https://shop.example.co.uk/signup?e=[email]', type: 'demo' });
      expect(alias.body).toMatchObject({ partner_user_id: 'p-1' });
      expect(alias.body).not.toHaveProperty('id');
      expect(warned()).toEqual(['[spdt] lead note: looks like an email', '[spdt] alias id: looks like an email']);
      expect(everythingSent(beacon).toLowerCase()).not.toContain('ann');
    });

    it('the view rule still compares the real URLs (two pages differing only in a redacted address are two views)', async () => {
      const pixel = await newPixel();
      history.pushState(null, '', '/welcome?email=ann%40example.com');
      history.pushState(null, '', '/welcome?email=bob%40example.com');
      await flush();
      const views = delivered(beacon).filter((e) => e.action == 'view');
      expect(views.map((e) => e.body.url)).toEqual([ORIGIN + '/welcome?email=[email]', ORIGIN + '/welcome?email=[email]']);
      pixel.conf({ spa: false });
    });
  });

  it('cookies: false writes no cookie and no storage, sends no uid, still a sid', async () => {
    const pixel = await newPixel({ key: KEY, cookies: false });
    history.pushState(null, '', '/landing?spclid=c-1');
    pixel.alias({ email: 'x@y.example' });
    pixel.view();
    await flush();
    const events = delivered(beacon);
    expect(events.length).toBeGreaterThan(0);
    for (const e of events) {
      expect('uid' in e.item).toBe(false);
      expect(e.item.sid).toMatch(HEX32);
    }
    expect(document.cookie).toBe('');
    expect(storageKeys(localStorage)).toEqual([]);
    expect(storageKeys(sessionStorage)).toEqual([]);
  });
});

// =============================================================================================
describe('§6 Wire protocol', () => {
  it('a burst of 1,000 events in one task loses none, even when the quota refuses all but the first request', async () => {
    const pixel = await newPixel();
    // As Chromium does: while the first request's bytes are in flight, the keepalive quota is full.
    let inFlight = true;
    (navigator as any).sendBeacon = (url: string, body: string) => {
      const accepted = !inFlight || !beacon.calls.some((c) => c.accepted);
      beacon.calls.push({ url, body, accepted });
      return accepted;
    };
    for (let i = 0; i < 1000; i++) pixel.purchase({ value: 79.99, currency: 'USD', order_id: 'O-' + i, event_id: 'b-' + i });
    await flush();
    expect(beacon.calls.filter((c) => !c.accepted).length).toBeGreaterThan(0);
    inFlight = false;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(eventIds(beacon)).toEqual(Array.from({ length: 1000 }, (_, i) => 'b-' + i));
    expect(beacon.calls.every((c) => Buffer.byteLength(c.body as string) <= 65536)).toBe(true);
  });

  it('events called in the same task go out in one POST {endpoint}/v1/ingest with a string body', async () => {
    const pixel = await newPixel();
    pixel.view();
    pixel.product({ product_id: 'p1' });
    pixel.addtocart({ product_id: 'p1', quantity: 2 });
    expect(beacon.calls).toHaveLength(0); // not before the task ends
    await flush();
    expect(beacon.calls).toHaveLength(1);
    const [call] = beacon.calls;
    expect(call.url).toBe(INGEST);
    expect(typeof call.body).toBe('string');
    const payload = parseBody(call.body);
    expect(payload.v).toBe(1);
    expect(payload.batch).toHaveLength(1);
    expect(payload.batch[0].events.map((e) => e.action)).toEqual(['view', 'product', 'addtocart']);
  });

  it('a call in a later task goes out in another beacon', async () => {
    const pixel = await newPixel();
    pixel.view();
    await flush();
    pixel.signup();
    await flush();
    expect(beacon.calls).toHaveLength(2);
    expect(beacon.calls.map((c) => parseBody(c.body).batch[0].events.map((e) => e.action))).toEqual([['view'], ['signup']]);
  });

  describe('listeners', () => {
    it("on('send') receives {transport: 'beacon', url, body} for each request", async () => {
      const pixel = await newPixel();
      const seen: any[] = [];
      pixel.on('send', (info) => seen.push(info));
      pixel.view();
      await flush();
      expect(seen).toEqual([{ transport: 'beacon', url: INGEST, body: beacon.calls[0].body }]);
    });

    it("on('warn') receives the warning text; off stops both", async () => {
      const pixel = await newPixel();
      const sends: unknown[] = [];
      const warns: unknown[] = [];
      const onSend = (info: unknown) => sends.push(info);
      const onWarn = (text: string) => warns.push(text);
      pixel.on('send', onSend);
      pixel.on('warn', onWarn);
      (pixel as any)('bogus');
      expect(warns).toHaveLength(1);
      expect(warns[0]).toBe(warned()[0]);
      expect(String(warns[0])).toContain('bogus');
      pixel.off('send', onSend);
      pixel.off('warn', onWarn);
      (pixel as any)('bogus2');
      pixel.view();
      await flush();
      expect(beacon.calls).toHaveLength(1);
      expect(sends).toHaveLength(0);
      expect(warns).toHaveLength(1);
    });

    it('a listener that throws does not break sending', async () => {
      const pixel = await newPixel();
      const after: unknown[] = [];
      pixel.on('send', () => {
        throw new Error('listener bug');
      });
      pixel.on('warn', () => {
        throw new Error('listener bug');
      });
      pixel.on('send', (info) => after.push(info));
      expect(() => (pixel as any)('bogus')).not.toThrow();
      pixel.view();
      await flush();
      pixel.signup();
      await flush();
      expect(actions(beacon)).toEqual(['view', 'signup']);
      expect(after).toHaveLength(2);
    });
  });

  it('without navigator.sendBeacon each event goes out as one GET /v1/img image request', async () => {
    delete (navigator as any).sendBeacon;
    const images = captureImages();
    const pixel = await newPixel();
    const seen: any[] = [];
    pixel.on('send', (info) => seen.push(info));
    pixel.view();
    pixel.purchase({ event_id: 'img-2', value: '7.5', currency: 'gbp' });
    await flush();
    expect(images).toHaveLength(2);
    expect(images[0].startsWith(`${ORIGIN}/v1/img?key=${KEY}&a=view&eid=`)).toBe(true);
    expect(images[1].startsWith(`${ORIGIN}/v1/img?key=${KEY}&a=purchase&eid=img-2&t=${T0}&`)).toBe(true);
    const [view, purchase] = images.map((u) => new URL(u));
    for (const u of [view, purchase]) {
      expect(u.origin + u.pathname).toBe(ORIGIN + '/v1/img');
      expect(u.searchParams.get('key')).toBe(KEY);
    }
    expect(view.searchParams.get('a')).toBe('view');
    expect(view.searchParams.get('eid')).toMatch(UUID_V4);
    expect(purchase.searchParams.get('a')).toBe('purchase');
    expect(purchase.searchParams.get('eid')).toBe('img-2');
    expect(purchase.searchParams.get('value')).toBe('7.5');
    expect(purchase.searchParams.get('currency')).toBe('GBP');
    expect(seen.map((s) => [s.transport, s.url])).toEqual(images.map((u) => ['image', u]));
  });

  it('a refused beacon keeps its events and retries; each event_id is delivered once, never as an image', async () => {
    const images = captureImages();
    beacon.result = false;
    const pixel = await newPixel();
    pixel.purchase({ event_id: 'r-1', value: 1, currency: 'USD' });
    pixel.signup({ event_id: 'r-2' });
    await flush();
    expect(beacon.calls.length).toBeGreaterThan(0);
    expect(accepted(beacon)).toHaveLength(0);
    beacon.result = true;
    await advance(10_000);
    expect(eventIds(beacon)).toEqual(['r-1', 'r-2']);
    await advance(60_000);
    expect(eventIds(beacon)).toEqual(['r-1', 'r-2']);
    expect(images).toHaveLength(0);
  });

  it('flushes at once when the page is hidden', async () => {
    const pixel = await newPixel();
    pixel.signup({ event_id: 'h-1' });
    changeVisibility('hidden');
    expect(eventIds(beacon)).toEqual(['h-1']);
    await advance(10_000);
    expect(eventIds(beacon)).toEqual(['h-1']);
  });

  it('flushes at once on pagehide', async () => {
    const pixel = await newPixel();
    pixel.signup({ event_id: 'ph-1' });
    window.dispatchEvent(new Event('pagehide'));
    expect(eventIds(beacon)).toEqual(['ph-1']);
    await advance(10_000);
    expect(eventIds(beacon)).toEqual(['ph-1']);
  });

  it("offline: nothing is sent, the events wait in localStorage['__spdt_outbox'] and go once when back online", async () => {
    const pixel = await newPixel();
    setOnline(false);
    pixel.signup({ event_id: 'off-1' });
    pixel.view();
    await advance(10_000);
    expect(beacon.calls).toHaveLength(0);
    const outbox = JSON.parse(localStorage.getItem('__spdt_outbox') || '[]');
    expect(outbox.map((e: any) => e.event_id)).toContain('off-1');
    expect(outbox.map((e: any) => e.action)).toEqual(['signup', 'view']);

    setOnline(true);
    window.dispatchEvent(new Event('online'));
    await flush();
    await advance(10_000);
    expect(actions(beacon)).toEqual(['signup', 'view']);
    expect(eventIds(beacon)[0]).toBe('off-1');
    expect(localStorage.getItem('__spdt_outbox') || '').not.toContain('off-1');
  });
});

// =============================================================================================
describe('§2 Hostile input', () => {
  function cyclic() {
    const o: any = { name: 'loop' };
    o.self = o;
    o.list = [o];
    return o;
  }
  const throwingGetters = () => {
    const o: any = {};
    for (const name of ['key', 'value', 'currency', 'event_id', 'event_name', 'email', 'line_items', 'free', 'endpoint', 'consent'])
      Object.defineProperty(o, name, { enumerable: true, get: () => { throw new Error('getter ' + name); } });
    return o;
  };
  const boom = () => { throw new Error('trap'); };
  const throwingProxy = () =>
    new Proxy({}, {
      get: boom, has: boom, ownKeys: boom, getOwnPropertyDescriptor: boom, getPrototypeOf: boom,
      set: boom, defineProperty: boom, deleteProperty: boom, apply: boom, construct: boom,
    });
  const huge = 'x'.repeat(1 << 20);
  const polluting = () => JSON.parse('{"__proto__": {"polluted": "yes"}, "constructor": {"prototype": {"polluted": "yes"}}, "event_name": "ok"}');

  const hostile = (): [string, unknown][] => [
    ['cyclic object', cyclic()],
    ['throwing getters', throwingGetters()],
    ['proxy with throwing traps', throwingProxy()],
    ['symbol', Symbol('s')],
    ['BigInt', 10n ** 30n],
    ['1 MB string', huge],
    ['1 MB string values', { value: huge, currency: huge, event_name: huge, free: huge, [huge.slice(0, 1000)]: 1, email: huge }],
    ['__proto__ keys', polluting()],
    ['array of hostile values', [cyclic(), throwingProxy(), Symbol('t'), 1n]],
    ['line_items of hostile values', { line_items: [cyclic(), throwingProxy(), throwingGetters(), polluting(), huge] }],
  ];

  const COMMANDS = [
    'conf', 'consent', 'view', 'product', 'addtocart', 'checkout', 'purchase', 'lead', 'signup', 'custom_event_1',
    'custom_event_2', 'custom_event_3', 'custom_event_4', 'custom_event_5', 'custom', 'alias',
  ];

  it('no command throws, whatever its arguments, and a valid event afterwards is still delivered', async () => {
    const protoBefore = Object.getOwnPropertyNames(Object.prototype);
    const pixel = await newPixel();
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown) => rejections.push(reason);
    process.on('unhandledRejection', onRejection);
    try {
      for (const [label, value] of hostile()) {
        for (const command of COMMANDS) {
          const method = (pixel as any)[command];
          const nested = { event_id: value, value, currency: value, event_name: value, email: value, tag: value };
          expect(() => (pixel as any)(command, value, value), `pixel('${command}', ${label}, ${label})`).not.toThrow();
          expect(() => method(nested), `pixel.${command}({…${label}})`).not.toThrow();
          expect(() => method({}, value), `pixel.${command}({}, ${label})`).not.toThrow();
        }
        expect(() => (pixel as any)(value), `pixel(${label})`).not.toThrow();
      }
      await flush();
      await advance(10_000);

      pixel.purchase({ event_id: 'after-hostile', value: 9.5, currency: 'EUR', order_id: 'o-1' });
      await flush();
      const after = delivered(beacon).filter((e) => e.event_id == 'after-hostile');
      expect(after).toHaveLength(1);
      expect(after[0].item.pid).toBe(KEY);
      expect(after[0].body).toMatchObject({ value: 9.5, currency: 'EUR', order_id: 'o-1' });
      for (const call of beacon.calls) expect(new Blob([call.body as string]).size).toBeLessThanOrEqual(65536);
      expect(rejections).toEqual([]);
    } finally {
      process.off('unhandledRejection', onRejection);
    }
    expect(({} as any).polluted).toBeUndefined();
    expect(Object.getOwnPropertyNames(Object.prototype)).toEqual(protoBefore);
  }, 120_000);

  it('on and off take hostile arguments without throwing', async () => {
    const pixel = await newPixel();
    for (const [label, value] of hostile()) {
      expect(() => pixel.on(value as any, value as any), `on(${label})`).not.toThrow();
      expect(() => pixel.off(value as any, value as any), `off(${label})`).not.toThrow();
      expect(() => pixel.on('send', value as any), `on('send', ${label})`).not.toThrow();
    }
    pixel.signup({ event_id: 'still-fine' });
    await flush();
    expect(eventIds(beacon)).toEqual(['still-fine']);
  });

  it('createPixel itself takes hostile options without throwing', async () => {
    for (const [label, value] of hostile()) {
      vi.resetModules();
      const { createPixel } = await import('../src/index');
      let pixel: Pixel | undefined;
      expect(() => (pixel = createPixel(value as any)), label).not.toThrow();
      created.push(pixel!);
    }
    const pixel = await newPixel();
    pixel.signup({ event_id: 'still-fine' });
    await flush();
    expect(eventIds(beacon)).toContain('still-fine');
    expect(({} as any).polluted).toBeUndefined();
  }, 120_000);
});
