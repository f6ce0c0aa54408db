// Unit tests of src/transport.ts (SPEC §6): packing events into request bodies of at most 64 KiB
// (incrementally: only the front of the outbox is rendered), shrinking an event that alone is too
// large, UTF-8 byte lengths, the image fallback URL; and the outbox draining a backlog (the retry
// schedule) and its memory bound, with navigator.sendBeacon as the only fake.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  byteLength,
  createTransport,
  FIRST_RETRY,
  imageUrl,
  MAX_BODY,
  MAX_WAITING,
  MAX_WAITING_BYTES,
  nextRequest,
  shrink,
  sizeOf,
  type OutEvent,
  type Request,
} from '../src/transport';

type Props = Record<string, unknown>;

const LIMIT = 65536;
const KEY_A = '5a1c965e567a45f7832cc5ba7a37faf7';
const KEY_B = 'b'.repeat(32);
const KEY_C = 'c'.repeat(32);
const UID = 'e80cb68aa08941c5937911daee4144ea';
const SID = '0f6c9a3d2b1e4c5f8a7b6c5d4e3f2a1b';
const PAGE = 'https://shop.example/thanks';
const REFERRER = 'https://shop.example/cart';
const ENDPOINT = 'https://collect.example.com/px';

let seq = 0;
/** A tracked event, ready for the transport; each gets a distinct event_id and time. */
function event(key: string, body: Props = {}, free: string[] = [], action = 'purchase'): OutEvent {
  seq++;
  return { key, action, event_id: `ev-${seq}`, time: 1763776000000 + seq, body: { url: PAGE, referrer: REFERRER, ...body }, free };
}

/** An event whose free props `names` each hold `value`. */
function withFree(key: string, names: string[], value: string, body: Props = {}): OutEvent {
  const props: Props = { ...body };
  for (const name of names) props[name] = value;
  return event(key, props, names);
}

const names = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => prefix + i);
const lineItems = (n: number, name: string) =>
  Array.from({ length: n }, (_, i) => ({ product_id: 'p' + i, product_name: name, value: i, quantity: 1 }));

const header = (key: string): Props => ({ pid: key, uid: UID, sid: SID });

/** Every request an outbox of `events` goes out in: nextRequest() until none are left. */
function pack(events: OutEvent[], headerFn: (key: string) => Props, sentAt: number): Request[] {
  const requests: Request[] = [];
  for (let rest = events, r; (r = nextRequest(rest, headerFn, sentAt)); rest = rest.slice(r.events.length)) requests.push(r);
  return requests;
}
const size = (r: Request) => Buffer.byteLength(r.body, 'utf8');

interface Parsed {
  v: number;
  sent_at: number;
  batch: (Props & { pid: string; events: (Props & { event_id: string; body: Props })[] })[];
}
const parse = (r: Request): Parsed => JSON.parse(r.body);

/** The event ids of a request body, in body order. */
const idsInBody = (r: Request) => parse(r).batch.flatMap((item) => item.events.map((e) => e.event_id));

/** Checks the invariants every packing must hold and returns the parsed bodies. */
function checkPacking(events: OutEvent[], requests: Request[]): Parsed[] {
  const parsed = requests.map(parse);
  for (const r of requests) expect(size(r)).toBeLessThanOrEqual(LIMIT);
  // Each request lists exactly the events in its body (in call order; the body groups them by key).
  requests.forEach((r) => expect(r.events.map((e) => e.event_id).sort()).toEqual(idsInBody(r).sort()));
  // Every event exactly once.
  const sent = requests.flatMap(idsInBody);
  expect([...sent].sort()).toEqual(events.map((e) => e.event_id).sort());
  expect(new Set(sent).size).toBe(sent.length);
  // Within a key, call order, also across requests.
  for (const key of new Set(events.map((e) => e.key))) {
    const order = parsed.flatMap((p) => p.batch.filter((i) => i.pid == key).flatMap((i) => i.events.map((e) => e.event_id)));
    expect(order).toEqual(events.filter((e) => e.key == key).map((e) => e.event_id));
  }
  // One batch item per key per request.
  for (const p of parsed) expect(new Set(p.batch.map((i) => i.pid)).size).toBe(p.batch.length);
  return parsed;
}

/** The query parameters of an image URL, in order. */
const params = (url: string) => [...new URL(url).searchParams.entries()];
const paramNames = (url: string) => params(url).map(([name]) => name);
const param = (url: string, name: string) => new URL(url).searchParams.get(name);

/** A seeded PRNG (mulberry32), so that a failure can be reproduced. */
function seeded(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHABETS = ['abcdefghij', 'é€ü', '中文字', '😀🎉', '%&=+ "<>\\\n'];
function randomText(random: () => number, length: number): string {
  const alphabet = [...ALPHABETS[Math.floor(random() * ALPHABETS.length)]];
  return Array.from({ length }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
}

describe('§6 byteLength', () => {
  it.each(['', 'a', 'hello world', '{"v":1}', 'x'.repeat(70000)])('counts ASCII %#', (text) => {
    expect(byteLength(text)).toBe(Buffer.byteLength(text));
  });

  it.each(['é', '€', '😀', '中文', 'aé€😀', 'ü'.repeat(1000), '😀'.repeat(3000) + 'x', '\u0080', '\u07ff', '\u0800', '\uffff'])(
    'counts UTF-8 bytes of multi-byte text %#',
    (text) => {
      expect(byteLength(text)).toBe(Buffer.byteLength(text));
    },
  );

  it('agrees with Buffer.byteLength on seeded random text', () => {
    const random = seeded(42);
    for (let i = 0; i < 200; i++) {
      const text = randomText(random, Math.floor(random() * 200));
      expect(byteLength(text), JSON.stringify(text)).toBe(Buffer.byteLength(text));
    }
  });

  it('uses the 64 KiB limit of SPEC §6', () => {
    expect(MAX_BODY).toBe(LIMIT);
  });
});

describe('§6 pack: the request body', () => {
  it('has the v / sent_at / batch shape with one batch item holding the events', () => {
    const e = event(KEY_A, { value: 79.99, currency: 'USD', order_id: 'SP-ORD-12345' });
    const requests = pack([e], header, 1763776000123);
    expect(requests).toHaveLength(1);
    expect(requests[0].events).toEqual([e]);
    expect(parse(requests[0])).toEqual({
      v: 1,
      sent_at: 1763776000123,
      batch: [
        {
          pid: KEY_A,
          uid: UID,
          sid: SID,
          events: [
            {
              action: 'purchase',
              event_id: e.event_id,
              time: e.time,
              body: { url: PAGE, referrer: REFERRER, value: 79.99, currency: 'USD', order_id: 'SP-ORD-12345' },
            },
          ],
        },
      ],
    });
  });

  it('takes the batch item fields from the header callback, once per key', () => {
    const full = {
      pid: KEY_A,
      uid: UID,
      sid: SID,
      cid: 'abc123',
      alias: { hashed_email: 'f'.repeat(64), id: 'u-42' },
      opt_out_targeting: true,
    };
    const headerFn = vi.fn((key: string): Props => (key == KEY_A ? full : { pid: key, sid: SID, uid: undefined, cid: undefined }));
    const requests = pack([event(KEY_A), event(KEY_B), event(KEY_A)], headerFn, 1);
    const [a, b] = parse(requests[0]).batch;
    const { events: _a, ...headA } = a;
    const { events: _b, ...headB } = b;
    expect(headA).toEqual(full);
    expect(headB).toEqual({ pid: KEY_B, sid: SID });
    expect(headerFn.mock.calls.map((c) => c[0]).sort()).toEqual([KEY_A, KEY_B].sort());
  });

  it('has one batch item per key in order of first appearance, events in call order within a key', () => {
    const events = [event(KEY_B), event(KEY_A), event(KEY_B), event(KEY_C), event(KEY_A), event(KEY_B)];
    const requests = pack(events, header, 5);
    expect(requests).toHaveLength(1);
    const parsed = checkPacking(events, requests)[0];
    expect(parsed.batch.map((i) => i.pid)).toEqual([KEY_B, KEY_A, KEY_C]);
    expect(parsed.batch[0].events.map((e) => e.event_id)).toEqual([events[0], events[2], events[5]].map((e) => e.event_id));
    expect(parsed.batch[1].events.map((e) => e.event_id)).toEqual([events[1], events[4]].map((e) => e.event_id));
    expect(parsed.batch[2].events.map((e) => e.event_id)).toEqual([events[3].event_id]);
  });

  it('keeps multi-byte content intact', () => {
    const e = event(KEY_A, { product_name: 'Crème brûlée 😀 中文', plan: '"quoted" \\ slash' }, ['plan']);
    const body = parse(pack([e], header, 1)[0]).batch[0].events[0].body;
    expect(body.product_name).toBe('Crème brûlée 😀 中文');
    expect(body.plan).toBe('"quoted" \\ slash');
  });

  it('returns no request for no events', () => {
    expect(pack([], header, 1)).toEqual([]);
  });

  it('does not change the events it was given', () => {
    const e = withFree(KEY_A, names('f', 100), 'x'.repeat(1000), { line_items: lineItems(5, 'n') });
    const copy = JSON.parse(JSON.stringify(e));
    pack([e, event(KEY_B)], header, 1);
    expect(e).toEqual(copy);
  });
});

describe('§6 pack: 64 KiB per request', () => {
  /** Two events whose single request body is exactly `target` bytes, padded with `unit` characters. */
  function padTo(target: number, unit: string) {
    const make = (pad: string) => [event(KEY_A, { order_id: 'A1' }), withFree(KEY_B, ['pad'], pad)];
    const probe = pack(make(unit.repeat(100)), header, 1763776000123);
    expect(probe).toHaveLength(1);
    const missing = target - size(probe[0]);
    const unitBytes = Buffer.byteLength(unit);
    const pad = unit.repeat(100 + Math.floor(missing / unitBytes)) + 'x'.repeat(missing % unitBytes);
    return make(pad);
  }

  it.each([
    ['ASCII', 'x'],
    ['2-byte', 'é'],
    ['3-byte', '中'],
    ['4-byte', '😀'],
  ])('a batch of exactly 65,536 bytes (%s padding) is one request', (_name, unit) => {
    const events = padTo(LIMIT, unit);
    const requests = pack(events, header, 1763776000123);
    expect(requests).toHaveLength(1);
    expect(size(requests[0])).toBe(LIMIT);
    checkPacking(events, requests);
    expect(requests[0].body).not.toContain('"trunc"');
  });

  it.each([
    ['ASCII', 'x'],
    ['2-byte', 'é'],
    ['3-byte', '中'],
    ['4-byte', '😀'],
  ])('one byte more (%s padding) is split into two requests, nothing truncated', (_name, unit) => {
    const events = padTo(LIMIT + 1, unit);
    const requests = pack(events, header, 1763776000123);
    expect(requests).toHaveLength(2);
    checkPacking(events, requests);
    for (const r of requests) expect(r.body).not.toContain('"trunc"');
  });

  it('a batch that fits is one request', () => {
    const events = Array.from({ length: 50 }, (_, i) => event([KEY_A, KEY_B][i % 2], { product_name: 'é'.repeat(200) }));
    const requests = pack(events, header, 1);
    expect(requests).toHaveLength(1);
    checkPacking(events, requests);
  });

  it('splits a larger batch into requests under the limit, losing and duplicating nothing', () => {
    const events = Array.from({ length: 400 }, (_, i) =>
      event([KEY_A, KEY_B, KEY_C][i % 3], { product_name: ['x', 'é', '中', '😀'][i % 4].repeat(200 + (i % 57)) }),
    );
    const requests = pack(events, header, 1);
    expect(requests.length).toBeGreaterThan(1);
    const parsed = checkPacking(events, requests);
    for (const p of parsed) for (const item of p.batch) expect(item).toMatchObject(header(item.pid));
    for (const r of requests) expect(r.body).not.toContain('"trunc"');
  });

  it('holds the limit for seeded random batches of multi-byte events', () => {
    const random = seeded(1234);
    for (let round = 0; round < 20; round++) {
      const events = Array.from({ length: 20 + Math.floor(random() * 200) }, () => {
        const key = [KEY_A, KEY_B, KEY_C][Math.floor(random() * 3)];
        const free = names('f', Math.floor(random() * 5));
        const e = withFree(key, free, randomText(random, Math.floor(random() * 256)), {
          product_name: randomText(random, Math.floor(random() * 256)),
        });
        if (random() < 0.1) e.body.line_items = lineItems(100, randomText(random, 200));
        return e;
      });
      checkPacking(events, pack(events, header, 1763776000123));
    }
    // About 1 s alone; it failed once in the full suite on this shared machine (load near 20),
    // most likely on the default 5 s timeout.
  }, 30_000);

  it('an event that alone exceeds the limit loses its free props first, keeping line_items, with trunc = 1', () => {
    const big = withFree(KEY_A, names('f', 100), '中'.repeat(256), {
      value: 79.99,
      currency: 'USD',
      order_id: 'A1',
      line_items: lineItems(3, 'shirt'),
    });
    const requests = pack([big], header, 1);
    expect(requests).toHaveLength(1);
    checkPacking([big], requests);
    const body = parse(requests[0]).batch[0].events[0].body;
    expect(body).toEqual({
      url: PAGE,
      referrer: REFERRER,
      value: 79.99,
      currency: 'USD',
      order_id: 'A1',
      line_items: lineItems(3, 'shirt'),
      trunc: 1,
    });
  });

  it('then loses its line_items, with trunc = 1', () => {
    const big = withFree(KEY_A, ['plan', 'tier'], 'pro', {
      value: 5,
      currency: 'EUR',
      order_id: 'A2',
      line_items: lineItems(100, '😀'.repeat(128) + 'x'.repeat(200)),
    });
    const requests = pack([big], header, 1);
    expect(requests).toHaveLength(1);
    checkPacking([big], requests);
    const body = parse(requests[0]).batch[0].events[0].body;
    expect(body).toEqual({ url: PAGE, referrer: REFERRER, value: 5, currency: 'EUR', order_id: 'A2', trunc: 1 });
  });

  it('truncates only the event that is too large; its neighbours go out whole', () => {
    const before = event(KEY_A, { order_id: 'before' });
    const big = withFree(KEY_A, names('f', 100), 'y'.repeat(1000), { order_id: 'big' });
    const after = withFree(KEY_B, ['plan'], 'pro', { order_id: 'after' });
    const events = [before, big, after];
    const requests = pack(events, header, 1);
    const parsed = checkPacking(events, requests);
    const bodies = parsed.flatMap((p) => p.batch.flatMap((i) => i.events.map((e) => e.body)));
    expect(bodies.find((b) => b.order_id == 'before')).toEqual({ url: PAGE, referrer: REFERRER, order_id: 'before' });
    expect(bodies.find((b) => b.order_id == 'big')).toEqual({ url: PAGE, referrer: REFERRER, order_id: 'big', trunc: 1 });
    expect(bodies.find((b) => b.order_id == 'after')).toEqual({ url: PAGE, referrer: REFERRER, order_id: 'after', plan: 'pro' });
  });

  it('two events that each fit but not together go in two requests, neither truncated', () => {
    const events = [withFree(KEY_A, names('f', 40), 'z'.repeat(1000)), withFree(KEY_A, names('g', 40), 'z'.repeat(1000))];
    const requests = pack(events, header, 1);
    expect(requests).toHaveLength(2);
    checkPacking(events, requests);
    for (const r of requests) expect(r.body).not.toContain('"trunc"');
  });
});

describe('§6 shrink', () => {
  const render = (body: Props) => JSON.stringify(body);

  function bigEvent(): OutEvent {
    return withFree(KEY_A, ['f1', 'f2'], 'x'.repeat(500), {
      value: 10,
      currency: 'USD',
      line_items: lineItems(2, 'n'),
      url: 'https://shop.example/' + 'p'.repeat(3000),
      referrer: 'https://ref.example/' + 'r'.repeat(3000),
    });
  }

  it('returns the rendering unchanged when it fits', () => {
    const e = bigEvent();
    expect(shrink(e, render, () => true)).toBe(render(e.body));
  });

  it('drops the free props first, keeping line_items, and marks trunc = 1', () => {
    const e = bigEvent();
    const limit = render(e.body).length - 900;
    const out = JSON.parse(shrink(e, render, (r) => r.length <= limit));
    expect(out).not.toHaveProperty('f1');
    expect(out).not.toHaveProperty('f2');
    expect(out.line_items).toEqual(lineItems(2, 'n'));
    expect(out.url).toBe(e.body.url);
    expect(out).toMatchObject({ value: 10, currency: 'USD', trunc: 1 });
  });

  it('then drops line_items', () => {
    const e = bigEvent();
    const { f1, f2, line_items, ...rest } = e.body;
    const limit = render({ ...rest, trunc: 1 }).length;
    const out = JSON.parse(shrink(e, render, (r) => r.length <= limit));
    expect(out).toEqual({ ...rest, trunc: 1 });
  });

  it('then shortens url and referrer', () => {
    const e = bigEvent();
    const out = JSON.parse(shrink(e, render, (r) => r.length <= 3000));
    expect(out.url.length).toBeLessThan((e.body.url as string).length);
    expect(out.referrer.length).toBeLessThan((e.body.referrer as string).length);
    expect(e.body.url as string).toContain(out.url);
    expect(render(out).length).toBeLessThanOrEqual(3000);
    expect(out).toMatchObject({ value: 10, currency: 'USD', trunc: 1 });
  });

  it('drops line_items right away when the event lists no free props', () => {
    const e = event(KEY_A, { line_items: lineItems(2, 'n'), plan: 'x'.repeat(100) });
    delete e.free;
    const out = JSON.parse(shrink(e, render, (r) => r.length < render(e.body).length - 10));
    expect(out.plan).toBe('x'.repeat(100));
    expect(out).not.toHaveProperty('line_items');
    expect(out.trunc).toBe(1);
  });

  it('does not change the event', () => {
    const e = bigEvent();
    const copy = JSON.parse(JSON.stringify(e));
    shrink(e, render, () => false);
    expect(e).toEqual(copy);
  });
});

describe('§6 imageUrl (the fallback without sendBeacon)', () => {
  const fullHeader: Props = {
    pid: KEY_A,
    uid: UID,
    sid: SID,
    cid: 'abc123',
    alias: { hashed_email: 'f'.repeat(64), id: 'u-42' },
    opt_out_targeting: true,
  };

  it('puts key, a, eid, t, uid, sid, cid, url, ref first, then alias and opt_out_targeting, then the props', () => {
    const items = lineItems(2, 'Blue shirt');
    const e = event(KEY_A, { value: 79.99, currency: 'USD', order_id: 'SP-1', is_new_customer: true, line_items: items, plan: 'pro' }, ['plan']);
    const url = imageUrl(ENDPOINT, fullHeader, e);
    expect(url.startsWith(ENDPOINT + '/v1/img?key=')).toBe(true);
    expect(paramNames(url)).toEqual([
      'key', 'a', 'eid', 't', 'uid', 'sid', 'cid', 'url', 'ref', 'alias', 'opt_out_targeting',
      'value', 'currency', 'order_id', 'is_new_customer', 'line_items', 'plan',
    ]);
    expect(Object.fromEntries(params(url))).toEqual({
      key: KEY_A,
      a: 'purchase',
      eid: e.event_id,
      t: String(e.time),
      uid: UID,
      sid: SID,
      cid: 'abc123',
      url: PAGE,
      ref: REFERRER,
      alias: JSON.stringify(fullHeader.alias),
      opt_out_targeting: '1',
      value: '79.99',
      currency: 'USD',
      order_id: 'SP-1',
      is_new_customer: 'true',
      line_items: JSON.stringify(items),
      plan: 'pro',
    });
    expect(JSON.parse(param(url, 'alias')!)).toEqual(fullHeader.alias);
    expect(JSON.parse(param(url, 'line_items')!)).toEqual(items);
  });

  it('leaves out uid, cid, ref, alias and opt_out_targeting when they do not apply', () => {
    const e = event(KEY_A, { plan: 'pro' }, ['plan'], 'view');
    delete e.body.referrer;
    const url = imageUrl(ENDPOINT, { pid: KEY_A, sid: SID, uid: undefined, opt_out_targeting: undefined }, e);
    expect(paramNames(url)).toEqual(['key', 'a', 'eid', 't', 'sid', 'url', 'plan']);
    expect(param(url, 'a')).toBe('view');
  });

  it('encodes every value, so that &, =, # and non-ASCII text survive', () => {
    const tricky = 'a&b=c#d?e+f %20 é中😀';
    const e = event(KEY_A, { order_id: tricky, url: 'https://shop.example/?q=a&b=c#frag' });
    const url = imageUrl(ENDPOINT, { pid: KEY_A, sid: SID }, e);
    expect(param(url, 'order_id')).toBe(tricky);
    expect(param(url, 'url')).toBe('https://shop.example/?q=a&b=c#frag');
    expect(new URL(url).hash).toBe('');
  });

  it('drops the free props first when too long, keeping line_items, and adds trunc=1', () => {
    const items = lineItems(3, 'shirt');
    const e = withFree(KEY_A, names('f', 40), 'x'.repeat(256), { value: 5, currency: 'USD', line_items: items });
    const url = imageUrl(ENDPOINT, fullHeader, e);
    expect(url.length).toBeLessThan(8000);
    const got = Object.fromEntries(params(url));
    expect(Object.keys(got).filter((k) => /^f\d+$/.test(k))).toEqual([]);
    expect(JSON.parse(got.line_items)).toEqual(items);
    expect(got).toMatchObject({ value: '5', currency: 'USD', url: PAGE, ref: REFERRER, trunc: '1' });
  });

  it('then drops line_items, and adds trunc=1', () => {
    const e = withFree(KEY_A, ['plan'], 'pro', { value: 5, currency: 'USD', order_id: 'A1', line_items: lineItems(100, 'shirt') });
    const url = imageUrl(ENDPOINT, fullHeader, e);
    expect(url.length).toBeLessThan(8000);
    const got = Object.fromEntries(params(url));
    expect(got).not.toHaveProperty('plan');
    expect(got).not.toHaveProperty('line_items');
    expect(got).toMatchObject({ value: '5', currency: 'USD', order_id: 'A1', url: PAGE, ref: REFERRER, trunc: '1' });
  });

  it('then shortens url and ref, and adds trunc=1', () => {
    const longUrl = 'https://shop.example/search?q=' + 'long'.repeat(2000);
    const longRef = 'https://ref.example/?r=' + 'r'.repeat(8000);
    const e = event(KEY_A, { url: longUrl, referrer: longRef, value: 5, currency: 'USD' });
    const url = imageUrl(ENDPOINT, fullHeader, e);
    expect(url.length).toBeLessThan(8000);
    const got = Object.fromEntries(params(url));
    expect(longUrl.startsWith(got.url)).toBe(true);
    expect(longRef.startsWith(got.ref)).toBe(true);
    expect(got).toMatchObject({ key: KEY_A, a: 'purchase', eid: e.event_id, value: '5', currency: 'USD', trunc: '1' });
  });

  it('does not add trunc when the URL fits', () => {
    const url = imageUrl(ENDPOINT, fullHeader, event(KEY_A, { value: 5, currency: 'USD' }));
    expect(paramNames(url)).not.toContain('trunc');
  });

  it('stays under 8,000 characters and never ends in a broken %-escape, for seeded huge inputs', () => {
    const random = seeded(99);
    for (let i = 0; i < 60; i++) {
      const text = (n: number) => randomText(random, n);
      const e = withFree(KEY_A, names('f', Math.floor(random() * 30)), text(256), {
        url: 'https://shop.example/' + encodeURIComponent(text(Math.floor(random() * 3000))),
        referrer: 'https://ref.example/' + encodeURIComponent(text(Math.floor(random() * 3000))),
        value: 5,
        currency: 'USD',
        product_name: text(Math.floor(random() * 256)),
        order_id: text(Math.floor(random() * 256)),
        line_items: random() < 0.5 ? lineItems(Math.floor(random() * 100), text(100)) : undefined,
      });
      const url = imageUrl(ENDPOINT, fullHeader, e);
      expect(url.length, `case ${i}`).toBeLessThan(8000);
      expect(url, `case ${i}`).not.toMatch(/%[0-9A-Fa-f]?$/);
      expect(param(url, 'key')).toBe(KEY_A);
      expect(param(url, 'eid')).toBe(e.event_id);
    }
  });

  it('still carries trunc=1 when the known fields alone are too long', () => {
    const wide = '中'.repeat(256); // 2,304 characters once encoded
    const e = event(KEY_A, {
      url: 'https://shop.example/' + '%E4%B8%AD'.repeat(400),
      value: 5,
      currency: 'USD',
      discount_code: wide,
      order_id: wide,
      product_id: wide,
      product_name: wide,
      product_type: wide,
      product_vendor: wide,
      variant_id: wide,
      variant_name: wide,
    });
    const url = imageUrl(ENDPOINT, fullHeader, e);
    expect(url.length).toBeLessThan(8000);
    expect(url).not.toMatch(/%[0-9A-Fa-f]?$/);
    expect(param(url, 'trunc')).toBe('1');
  });

  it('never cuts the %-escapes of a multi-byte character in half (every parameter decodes as UTF-8)', () => {
    for (let extra = 0; extra < 9; extra++) {
      const wide = 'x'.repeat(extra) + '中'.repeat(256);
      const e = event(KEY_A, {
        url: PAGE,
        order_id: wide,
        product_id: wide,
        product_name: wide,
        product_type: wide,
        product_vendor: wide,
      });
      const url = imageUrl(ENDPOINT, { pid: KEY_A, sid: SID }, e);
      expect(url.length).toBeLessThan(8000);
      const query = url.slice(url.indexOf('?') + 1);
      for (const pair of query.split('&'))
        expect(() => decodeURIComponent(pair), `extra ${extra}: …${pair.slice(-20)}`).not.toThrow();
    }
  });
});

/** `n` purchases of about 1.3 KB each on the wire (five long free props), as in issue 9's backlog. */
const longPurchases = (n: number, key = KEY_A) =>
  Array.from({ length: n }, (_, i) => withFree(key, names('note_', 5), `${i} ` + 'lorem ipsum '.repeat(17), { value: 79.99, currency: 'USD', order_id: 'B-' + i }));

/** Counts, per event, how often its body was rendered (JSON.stringify calls a body's toJSON). */
function countRenders(events: OutEvent[]): Map<OutEvent, number> {
  const renders = new Map(events.map((e) => [e, 0]));
  for (const e of events) {
    const plain = e.body;
    e.body = Object.assign(Object.create({ toJSON: () => (renders.set(e, renders.get(e)! + 1), plain) }), plain);
  }
  return renders;
}

describe('§6 nextRequest: only the front of the outbox is rendered', () => {
  it('of 3,000 waiting events (about 4 MB), renders only those of the first body and the one after', () => {
    const events = longPurchases(3000);
    const renders = countRenders(events);
    const request = nextRequest(events, header, 1)!;
    const n = request.events.length;
    expect(request.events).toEqual(events.slice(0, n));
    const rendered = events.filter((e) => renders.get(e)! > 0);
    expect(rendered).toEqual(events.slice(0, n + 1));
    // Each at most three times: measured, rendered, and once more if the body came out too large.
    expect(Math.max(...rendered.map((e) => renders.get(e)!))).toBeLessThanOrEqual(3);
  });

  it('fills the body: it holds at most 65,536 bytes, and with the next event it would not fit', () => {
    const events = longPurchases(200);
    const request = nextRequest(events, header, 1763776000123)!;
    const n = request.events.length;
    expect(size(request)).toBeLessThanOrEqual(LIMIT);
    expect(size(request)).toBeGreaterThan(LIMIT - 2 * sizeOf(events[0]));
    expect(pack(events.slice(0, n + 1), header, 1763776000123)).toHaveLength(2);
    checkPacking(events, pack(events, header, 1763776000123));
  });

  it('holds 64 KiB when many keys with large headers add up, rendering the body at most twice', () => {
    // 400 events, each of its own key, each header with an alias: the headers alone add ~100 KB.
    const keys = Array.from({ length: 400 }, (_, i) => i.toString(16).padStart(32, '0'));
    const events = keys.map((key) => event(key, { order_id: 'k' }));
    const bigHeader = vi.fn((key: string): Props => ({ ...header(key), alias: { hashed_email: 'f'.repeat(64), hashed_phone_number: 'e'.repeat(64) } }));
    const request = nextRequest(events, bigHeader, 1)!;
    expect(size(request)).toBeLessThanOrEqual(LIMIT);
    expect(bigHeader.mock.calls.filter(([key]) => key == keys[0]).length).toBeLessThanOrEqual(2);
    checkPacking(events, pack(events, bigHeader, 1));
  });

  it('an event too large alone at the front goes alone, shrunk; the ones after it follow whole', () => {
    const big = withFree(KEY_A, names('f', 100), 'y'.repeat(1000), { order_id: 'big' });
    const rest = longPurchases(3);
    const first = nextRequest([big, ...rest], header, 1)!;
    expect(first.events).toEqual([big]);
    expect(parse(first).batch[0].events[0].body).toEqual({ url: PAGE, referrer: REFERRER, order_id: 'big', trunc: 1 });
    const second = nextRequest(rest, header, 1)!;
    expect(second.events).toEqual(rest);
    expect(second.body).not.toContain('"trunc"');
  });

  it('returns nothing for an empty outbox', () => {
    expect(nextRequest([], header, 1)).toBeUndefined();
  });
});

describe('§6 the outbox on a visible page: draining and its memory bound', () => {
  const ENDPOINT_URL = 'https://collect.example.com';
  /** Every sendBeacon call: when, whether the browser accepted it, the event ids it carried. */
  let calls: { at: number; ok: boolean; ids: string[] }[];
  let quota: { open: boolean; flightMs: number; inFlight: { until: number; bytes: number }[] };

  beforeEach(() => {
    vi.useFakeTimers();
    calls = [];
    // As Chromium does: beacons in flight share a 64 KiB quota; each is in flight for `flightMs`.
    quota = { open: true, flightMs: 15, inFlight: [] };
    (navigator as any).sendBeacon = (_url: string, body: string) => {
      const now = Date.now();
      quota.inFlight = quota.inFlight.filter((f) => f.until > now);
      const bytes = byteLength(body);
      const ok = quota.open && quota.inFlight.reduce((n, f) => n + f.bytes, 0) + bytes <= LIMIT;
      if (ok) quota.inFlight.push({ until: now + quota.flightMs, bytes });
      calls.push({ at: now, ok, ids: JSON.parse(body).batch.flatMap((i: any) => i.events.map((e: any) => e.event_id)) });
      return ok;
    };
  });
  afterEach(() => {
    vi.clearAllTimers();
    vi.useRealTimers();
    delete (navigator as any).sendBeacon;
  });

  function transport() {
    const warn = vi.fn();
    const sent = vi.fn();
    const t = createTransport({ endpoint: ENDPOINT_URL, cookies: false }, { header, canSend: () => true, sent, warn });
    return { ...t, warn, sent };
  }
  const delivered = () => calls.filter((c) => c.ok).flatMap((c) => c.ids);
  /** The waits between attempts (attempts of one flush count as one). */
  const gaps = () => {
    const times = [...new Set(calls.map((c) => c.at))];
    return times.slice(1).map((t, i) => t - times[i]);
  };

  it('delivers a backlog of 3,000 events (about 4 MB) whole, once each, in call order, within SPEC’s 10 s', async () => {
    const t = transport();
    const events = longPurchases(3000);
    expect(events.reduce((n, e) => n + sizeOf(e), 0)).toBeGreaterThan(3.5e6);
    const start = Date.now();
    for (const e of events) t.add(e);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(delivered()).toEqual(events.map((e) => e.event_id));
    const last = Math.max(...calls.filter((c) => c.ok).map((c) => c.at)) - start;
    expect(last).toBeLessThan(10_000);
    // As fast as the quota admits: each request waits for the one in flight, and at most one retry more.
    const requests = calls.filter((c) => c.ok).length;
    expect(last).toBeLessThanOrEqual(requests * (quota.flightMs + 2 * FIRST_RETRY));
    expect(t.warn).not.toHaveBeenCalled();
    expect(t.sent).toHaveBeenCalledTimes(requests);

    // An event called after the backlog goes too.
    const after = event(KEY_B, { order_id: 'after' });
    t.add(after);
    await vi.advanceTimersByTimeAsync(0);
    expect(delivered().at(-1)).toBe(after.event_id);
  });

  it('the retry delay starts again from its shortest after every accepted request, and doubles while refused', async () => {
    const t = transport();
    quota.flightMs = 100; // each request keeps the quota full for 100 ms
    for (const e of longPurchases(150)) t.add(e);
    await vi.advanceTimersByTimeAsync(1000);
    expect(delivered()).toHaveLength(150);
    // Accepted at 0; refused at 10, 30, 70; accepted at 150 (the first at or after 100); again 10, 20, 40, 80.
    expect(gaps().slice(0, 8)).toEqual([10, 20, 40, 80, 10, 20, 40, 80]);
  });

  it('refused forever: the delay grows to 5 s and stays there, no busy loop', async () => {
    const t = transport();
    quota.open = false;
    t.add(event(KEY_A));
    await vi.advanceTimersByTimeAsync(60_000);
    const waits = gaps();
    expect(waits.slice(0, 10)).toEqual([10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5000]);
    expect(new Set(waits.slice(9))).toEqual(new Set([5000]));
    // Another event while refused does not start the delay from its shortest again.
    t.add(event(KEY_A));
    await vi.advanceTimersByTimeAsync(10);
    expect(gaps().at(-1)).toBe(5000);
  });

  it(`keeps at most ${MAX_WAITING} events in memory: the oldest go, with one warning`, async () => {
    const t = transport();
    quota.open = false;
    const events = Array.from({ length: MAX_WAITING + 1000 }, (_, i) => event(KEY_A, { order_id: 'm-' + i }));
    for (const e of events) t.add(e);
    await vi.advanceTimersByTimeAsync(100);
    expect(t.warn).toHaveBeenCalledTimes(1);
    expect(t.warn.mock.calls[0].join(' ')).toMatch(/over 5000 or 4 MB, oldest dropped/);
    quota.open = true;
    await vi.advanceTimersByTimeAsync(20_000);
    expect(delivered()).toEqual(events.slice(1000).map((e) => e.event_id));
    expect(t.warn).toHaveBeenCalledTimes(1);
  });

  it('keeps at most 4 MB in memory, counted from each event’s size taken once as it enters', async () => {
    const t = transport();
    quota.open = false;
    const events = longPurchases(4000); // about 5.2 MB
    const renders = countRenders(events);
    for (const e of events.slice(0, 100)) t.add(e);
    const before = [...renders.values()].reduce((a, b) => a + b, 0);
    t.add(events[100]);
    // Adding one event renders that one event once, never the outbox again.
    expect([...renders.values()].reduce((a, b) => a + b, 0) - before).toBe(1);
    for (const e of events.slice(101)) t.add(e);
    await vi.advanceTimersByTimeAsync(100);
    expect(t.warn).toHaveBeenCalledTimes(1);
    quota.open = true;
    await vi.advanceTimersByTimeAsync(20_000);
    const ids = delivered();
    const kept = events.slice(events.length - ids.length);
    expect(ids).toEqual(kept.map((e) => e.event_id));
    const bytes = (list: OutEvent[]) => list.reduce((n, e) => n + sizeOf(e), 0);
    expect(bytes(kept)).toBeLessThanOrEqual(MAX_WAITING_BYTES);
    expect(bytes(events.slice(events.length - ids.length - 1))).toBeGreaterThan(MAX_WAITING_BYTES);
  });
});
