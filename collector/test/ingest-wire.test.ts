import { describe, expect, it } from 'vitest';
import { findPii, parseIngest } from '../src/ingest/wire.js';
import { imageEvent } from '../src/ingest/image.js';

const facts = { received_at: 1_763_776_001_000, ip: '203.0.113.7', user_agent: 'UA' };
const H = 'a'.repeat(64);

const body = (events: unknown[], item: Record<string, unknown> = {}) =>
  JSON.stringify({ v: 1, sent_at: 1, batch: [{ pid: 'k1', uid: 'e80cb68aa08941c5937911daee4144ea', sid: 's1', ...item, events }] });
const event = (extra: Record<string, unknown> = {}) => ({ action: 'purchase', event_id: 'e1', time: 1_763_776_000_100, ...extra });

describe('parseIngest', () => {
  it('turns the SPEC §6 example into one clean event', () => {
    const parsed = parseIngest(
      body([event({ body: { url: 'https://shop.example/thanks', referrer: 'https://shop.example/cart', value: 79.99, currency: 'USD', order_id: 'SP-ORD-12345' } })], {
        cid: 'abc123',
        alias: { hashed_email: H.toUpperCase(), id: 'u-42' },
        opt_out_targeting: true,
      }),
      facts,
    );
    expect(parsed.rejection).toBeUndefined();
    expect(parsed.events).toEqual([
      expect.objectContaining({
        key: 'k1',
        action: 'purchase',
        event_id: 'e1',
        time: 1_763_776_000_100,
        received_at: facts.received_at,
        uid: 'e80cb68aa08941c5937911daee4144ea',
        sid: 's1',
        cid: 'abc123',
        alias: { hashed_email: H, id: 'u-42' },
        opt_out_targeting: true,
        transport: 'beacon',
        action_source: 'WEB',
        ip: '203.0.113.7',
        user_agent: 'UA',
        body: { url: 'https://shop.example/thanks', referrer: 'https://shop.example/cart', value: 79.99, currency: 'USD', order_id: 'SP-ORD-12345' },
        problems: [],
      }),
    ]);
  });

  it.each([
    ['{', 'malformed_json', 'body: not valid JSON'],
    ['[]', 'shape', 'body: not a JSON object'],
    ['{"batch":[]}', 'shape', 'v: missing'],
    ['{"v":2,"batch":[]}', 'shape', 'v: not 1'],
    ['{"v":1}', 'shape', 'batch: missing'],
    ['{"v":1,"batch":[{"events":[]}]}', 'shape', 'batch[0].pid: missing'],
    [body([{ event_id: 'e', time: 1 }]), 'shape', 'batch[0].events[0].action: missing'],
    [body([{ action: 'view', time: 1 }]), 'shape', 'batch[0].events[0].event_id: missing'],
    [body([{ action: 'view', event_id: 'e' }]), 'shape', 'batch[0].events[0].time: missing'],
    [body([{ action: 'view', event_id: 'e', time: '1' }]), 'shape', 'batch[0].events[0].time: not a number'],
    [body([event({ event_id: 'x'.repeat(129) })]), 'shape', 'event_id: over 128'],
    [body([event({ body: [] })]), 'shape', 'batch[0].events[0].body: not an object'],
    [body([event({ body: { email: 'ann@example.com' } })]), 'pii', 'body.batch[0].events[0].body.email'],
    [body([event()], { alias: { phone_number: '+1 555' } }), 'pii', 'body.batch[0].alias.phone_number'],
    [body([event({ body: { line_items: [{ product_id: 'p', email: 'x' }] } })]), 'pii', 'line_items[0].email'],
  ])('refuses %s (%s)', (text, reason, error) => {
    const parsed = parseIngest(text, facts);
    expect(parsed.events).toBeUndefined();
    expect(parsed.rejection?.reason).toBe(reason);
    expect(parsed.rejection?.error).toContain(error);
  });

  it('takes any non-empty key the tag sends, a blank one too (the tag does not trim keys)', () => {
    const parsed = parseIngest(body([event()], { pid: ' ' }), facts);
    expect(parsed.rejection).toBeUndefined();
    expect(parsed.events!.map((e) => e.key)).toEqual([' ']);
  });

  it('never echoes a raw PII value in the error', () => {
    const parsed = parseIngest(body([event({ body: { nested: 1, phone_number: '+44 7700 900123' } })]), facts);
    expect(parsed.rejection?.error).not.toContain('7700');
  });

  it("re-applies the tag's validation and keeps what it changed as problems", () => {
    const [stored] = parseIngest(
      body([event({ body: { value: '79.99', currency: 'usd', quantity: 1.5, 'bad name': 1, trunc: 1, hashed_email: 'nothex', color: 'red' } })]),
      facts,
    ).events!;
    expect(stored.body).toEqual({ value: 79.99, currency: 'USD', trunc: 1, color: 'red' });
    expect(stored.problems).toEqual(
      expect.arrayContaining(['purchase quantity: not an integer ≥ 0', 'purchase bad name: not a valid name', 'purchase hashed_email: not a SHA-256']),
    );
    expect(Object.getPrototypeOf(stored.body)).toBe(Object.prototype);
  });

  it('drops __proto__ and constructor keys without polluting anything', () => {
    const text = '{"v":1,"batch":[{"pid":"k","events":[{"action":"view","event_id":"e","time":1,"body":{"__proto__":{"polluted":1},"constructor":"x","a":1}}]}]}';
    const [stored] = parseIngest(text, facts).events!;
    expect(stored.body).toEqual({ a: 1 });
    expect(Object.getPrototypeOf(stored.body)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(stored.problems).toEqual(['view __proto__: not a valid name', 'view constructor: not a valid name']);
  });

  it('stores an unknown action with a problem, its props as free props', () => {
    const [stored] = parseIngest(body([event({ action: 'teleport', body: { where: 'mars' } })]), facts).events!;
    expect(stored.action).toBe('teleport');
    expect(stored.body).toEqual({ where: 'mars' });
    expect(stored.problems).toEqual(['teleport command: unknown']);
  });

  it('keeps 64-hex hashed identifiers (lower-cased) and redacts emails in URLs and free props', () => {
    const [stored] = parseIngest(
      body([event({ body: { url: 'https://shop.example/welcome?email=ann%40example.com&x=1', hashed_phone_number: H.toUpperCase(), note: 'mail bob@example.org now' } })]),
      facts,
    ).events!;
    expect(stored.body.url).toBe('https://shop.example/welcome?email=[email]&x=1');
    expect(stored.body.hashed_phone_number).toBe(H);
    expect(stored.body).not.toHaveProperty('note');
    expect(JSON.stringify(stored)).not.toContain('example.org');
    expect(stored.problems).toEqual(expect.arrayContaining(['purchase url: email replaced by [email]', 'purchase note: looks like an email']));
  });

  it("reports a batch item's bad fields on each of its events", () => {
    const events = parseIngest(body([event(), event({ event_id: 'e2' })], { uid: 5, alias: { hashed_email: 'x', nick: 'n' } }), facts).events!;
    expect(events.map((e) => e.uid)).toEqual(['5', '5']);
    for (const e of events) expect(e.problems).toEqual(['alias hashed_email: not a SHA-256', 'alias nick: not an alias field']);
    expect(events[0].alias).toBeUndefined();
  });
});

describe('findPii', () => {
  it('finds the key at any depth and nothing in values', () => {
    expect(findPii({ a: [{ b: { email: 1 } }] }, 'x')).toBe('x.a[0].b.email');
    expect(findPii({ a: 'email', hashed_email: H, phone: 'phone_number' }, 'x')).toBeUndefined();
  });
});

describe('imageEvent', () => {
  it('maps the image fallback query to an event', () => {
    const e = imageEvent(
      {
        key: 'k1', a: 'purchase', eid: 'e1', t: '1763776000100', uid: 'e80cb68aa08941c5937911daee4144ea', sid: 's1', cid: 'c1',
        url: 'https://shop.example/thanks', ref: 'https://shop.example/cart', alias: JSON.stringify({ hashed_email: H }),
        opt_out_targeting: '1', value: '79.99', currency: 'usd', line_items: JSON.stringify([{ product_id: 'p1', quantity: '2' }]), trunc: '1',
      },
      undefined,
      facts,
    )!;
    expect(e).toMatchObject({
      key: 'k1', action: 'purchase', event_id: 'e1', time: 1_763_776_000_100, uid: 'e80cb68aa08941c5937911daee4144ea', sid: 's1', cid: 'c1',
      alias: { hashed_email: H }, opt_out_targeting: true, transport: 'image', ip: facts.ip,
      body: { url: 'https://shop.example/thanks', referrer: 'https://shop.example/cart', trunc: 1, value: 79.99, currency: 'USD', line_items: [{ product_id: 'p1', quantity: 2 }] },
      problems: [],
    });
  });

  it('records nothing without key and a', () => {
    expect(imageEvent({ a: 'view' }, undefined, facts)).toBeUndefined();
    expect(imageEvent({ key: 'k' }, undefined, facts)).toBeUndefined();
    expect(imageEvent({ key: ['', 'k'], a: 'view' }, undefined, facts)).toBeUndefined();
  });

  it('treats init as view, makes a UUID for a missing eid and takes the noscript url from the Referer', () => {
    const e = imageEvent({ key: 'k', a: 'init', ns: '1', url: 'https://ignored.example/' }, 'https://shop.example/page?email=ann@example.com', facts)!;
    expect(e.action).toBe('view');
    expect(e.transport).toBe('noscript');
    expect(e.event_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(e.time).toBe(facts.received_at);
    expect(e.body).toEqual({ url: 'https://shop.example/page?email=[email]' });
  });

  it('drops raw PII parameters and email-looking values', () => {
    const e = imageEvent({ key: 'k', a: 'lead', email: 'ann@example.com', phone_number: '555', type: 'ann%40example.com', category: 'b2b' }, undefined, facts)!;
    expect(e.body).toEqual({ category: 'b2b' });
    expect(JSON.stringify(e)).not.toMatch(/ann|555/);
    expect(e.problems).toEqual(['lead email: raw PII, dropped', 'lead phone_number: raw PII, dropped', 'lead type: looks like an email']);
  });

  it('reports a bad eid, t and alias and keeps going', () => {
    const e = imageEvent({ key: 'k', a: 'view', eid: 'x'.repeat(200), t: 'soon', alias: '{' }, undefined, facts)!;
    expect(e.event_id).toHaveLength(36);
    expect(e.time).toBe(facts.received_at);
    expect(e.alias).toBeUndefined();
    expect(e.problems).toEqual(['view event_id: not a string ≤ 128, replaced', 'view t: not epoch ms, receipt time used', 'view alias: not JSON']);
  });
});

describe('parseIngest on hostile bodies', () => {
  it('walks any nesting depth without overflowing the stack', () => {
    const deep = '['.repeat(30_000) + ']'.repeat(30_000);
    expect(parseIngest(`{"v":1,"batch":[{"pid":"k","events":[],"x":${deep}}]}`, facts).events).toEqual([]);
    const pii = `{"v":1,"batch":[{"pid":"k","events":[],"x":${'['.repeat(20_000)}{"email":1}${']'.repeat(20_000)}}]}`;
    expect(parseIngest(pii, facts).rejection?.reason).toBe('pii');
  });
  it('finds a key written with \\u escapes', () => {
    expect(parseIngest(body([event({ body: { x: 1 } })]).replace('"x"', '"\\u0065mail"'), facts).rejection?.reason).toBe('pii');
  });
});

describe('emails where ids and names go', () => {
  it('refuses a body whose key, action or event_id holds an email', () => {
    expect(parseIngest(body([event({ event_id: 'ann@example.com' })]), facts).rejection).toEqual({ reason: 'pii', error: 'batch[0].events[0].event_id: looks like an email address, not accepted' });
    expect(parseIngest(body([event({ action: 'ann%40example.com' })]), facts).rejection?.reason).toBe('pii');
    expect(parseIngest(body([event()], { pid: 'ann@example.com' }), facts).rejection?.reason).toBe('pii');
  });
  it('drops email-looking visitor ids and never names an email in a problem', () => {
    const [stored] = parseIngest(body([event({ body: { 'ann@example.com': 1 } })], { uid: 'ann@example.com' }), facts).events!;
    expect(stored.uid).toBeUndefined();
    expect(JSON.stringify(stored)).not.toContain('ann@');
    expect(stored.problems).toEqual(['batch uid: looks like an email', '[email]: not a valid name']);
  });
  it('records no image hit whose key or action is an email, and replaces such an eid', () => {
    expect(imageEvent({ key: 'ann@example.com', a: 'view' }, undefined, facts)).toBeUndefined();
    expect(imageEvent({ key: 'k', a: 'ann%40example.com' }, undefined, facts)).toBeUndefined();
    expect(imageEvent({ key: 'k', a: 'view', eid: 'ann@example.com' }, undefined, facts)!.event_id).toHaveLength(36);
  });
});
