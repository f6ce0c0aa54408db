import { describe, expect, it } from 'vitest';
import { eventDetails, eventName, eventTime, toSpotifyEvent, userData } from '../src/relay/mapping.js';
import type { ClaimedEvent } from '../src/store/types.js';
import { planDeliveries } from '../src/relay/plan.js';
import type { Connection } from '../src/context.js';

const H1 = 'a'.repeat(64);
const H2 = 'b'.repeat(64);
const H3 = 'c'.repeat(64);
const UID = 'e80cb68aa08941c5937911daee4144ea';

function stored(over: Partial<ClaimedEvent> = {}): ClaimedEvent {
  return {
    action: 'purchase',
    event_id: '9b1d-0001',
    time: Date.parse('2026-01-23T12:34:56.100Z'),
    received_at: Date.parse('2026-01-23T12:34:57.000Z'),
    uid: UID,
    action_source: 'WEB',
    ip: '203.0.113.7',
    body: { url: 'https://shop.example/thanks', value: 79.99, currency: 'USD', order_id: 'SP-ORD-12345', product_name: 'Listener Tee' },
    ...over,
  };
}

const connection = (over: Partial<Connection> = {}): Connection => ({
  connection_id: 'conn-1',
  token: 'secret-token',
  custom: {},
  url: 'http://127.0.0.1:1/',
  ...over,
});

function mapped(over: Partial<ClaimedEvent> = {}, custom: Record<string, string> = {}) {
  const result = toSpotifyEvent(stored(over), { custom });
  if (!('event' in result)) throw new Error('skipped: ' + result.skip);
  return result.event;
}

describe('event_name (SPEC §9 table)', () => {
  it.each([
    ['view', 'VIEW'],
    ['product', 'PRODUCT'],
    ['addtocart', 'ADD_TO_CART'],
    ['checkout', 'CHECK_OUT'],
    ['purchase', 'PURCHASE'],
    ['lead', 'LEAD'],
    ['signup', 'SIGN_UP'],
    ['custom_event_1', 'CUSTOM_EVENT_1'],
    ['custom_event_2', 'CUSTOM_EVENT_2'],
    ['custom_event_3', 'CUSTOM_EVENT_3'],
    ['custom_event_4', 'CUSTOM_EVENT_4'],
    ['custom_event_5', 'CUSTOM_EVENT_5'],
  ])('%s → %s', (action, name) => {
    expect(mapped({ action }).event_name).toBe(name);
  });

  it('a named custom event goes to its slot', () => {
    expect(mapped({ action: 'custom', body: { event_name: 'quiz_done' } }, { quiz_done: 'CUSTOM_EVENT_3' }).event_name).toBe('CUSTOM_EVENT_3');
  });

  it('a named custom event without a slot is skipped, with the reason naming it', () => {
    const result = toSpotifyEvent(stored({ action: 'custom', body: { event_name: 'quiz_done' } }), { custom: { other: 'CUSTOM_EVENT_1' } });
    expect(result).toEqual({ skip: expect.stringContaining('"quiz_done"') });
    expect((result as { skip: string }).skip).toMatch(/no CUSTOM_EVENT slot/);
  });

  it('a slot that is not one of the five is no slot', () => {
    expect(eventName('custom', { event_name: 'x' }, { x: 'PURCHASE' })).toEqual({ skip: expect.any(String) });
    expect(eventName('custom', { event_name: 'x' }, { x: 'CUSTOM_EVENT_6' })).toEqual({ skip: expect.any(String) });
  });

  it('a name from the prototype is no slot', () => {
    expect(eventName('custom', { event_name: 'toString' }, {})).toEqual({ skip: expect.any(String) });
    expect(eventName('custom', { event_name: '__proto__' }, {})).toEqual({ skip: expect.any(String) });
  });

  it('custom without event_name is skipped', () => {
    expect(eventName('custom', {}, { '': 'CUSTOM_EVENT_1' })).toEqual({ skip: expect.stringContaining('event_name') });
  });

  it('alias, unknown actions and init are not relayed (ingest turns init into view)', () => {
    for (const action of ['alias', 'init', 'refund', 'VIEW', 'constructor', 'hasOwnProperty']) expect(eventName(action, {}, {})).toBeUndefined();
    expect(toSpotifyEvent(stored({ action: 'alias' }), { custom: {} })).toEqual({ skip: expect.stringContaining('not relayed') });
  });
});

describe('event_id and event_time', () => {
  it('event_id is the stored one, unchanged', () => {
    expect(mapped({ event_id: 'SP-ORD-67890 x/y' }).event_id).toBe('SP-ORD-67890 x/y');
  });

  it('event_time is ISO 8601 UTC with milliseconds', () => {
    expect(mapped().event_time).toBe('2026-01-23T12:34:56.100Z');
    expect(eventTime(Date.parse('2026-01-23T12:34:56Z'), Date.parse('2026-01-24T00:00:00Z'))).toBe('2026-01-23T12:34:56.000Z');
  });

  it('a time after the receipt is replaced by the receipt time', () => {
    const received = Date.parse('2026-01-23T12:00:00.250Z');
    expect(mapped({ time: received + 3_600_000, received_at: received }).event_time).toBe('2026-01-23T12:00:00.250Z');
  });
});

describe('user_data', () => {
  it('full IP, device id, hashed email as a list, hashed phone', () => {
    expect(userData({ ip: '203.0.113.7', uid: UID, alias: { hashed_email: H1, hashed_phone_number: H2 }, body: {} })).toEqual({
      ip_address: '203.0.113.7',
      device_id: UID,
      hashed_emails: [H1],
      hashed_phone_number: H2,
    });
  });

  it('the event body’s own hashes win over the alias', () => {
    expect(userData({ ip: '203.0.113.7', alias: { hashed_email: H1, hashed_phone_number: H2 }, body: { hashed_email: H3 } })).toEqual({
      ip_address: '203.0.113.7',
      hashed_emails: [H3],
      hashed_phone_number: H2,
    });
    expect(userData({ ip: '203.0.113.7', alias: { hashed_email: H1 }, body: { hashed_phone_number: H3 } })).toMatchObject({
      hashed_emails: [H1],
      hashed_phone_number: H3,
    });
  });

  it('keys with nothing to say are left out', () => {
    expect(userData({ ip: '203.0.113.7', body: {} })).toEqual({ ip_address: '203.0.113.7' });
    expect(Object.keys(mapped({ uid: undefined, alias: { id: 'u-42' } }).user_data)).toEqual(['ip_address']);
  });

  it('a shortened (replayed) IP is left out, IPv4 and IPv6', () => {
    expect(userData({ ip: '203.0.113.0', uid: UID, body: {} })).toEqual({ device_id: UID });
    expect(userData({ ip: '2001:db8:1::', uid: UID, body: {} })).toEqual({ device_id: UID });
    expect(userData({ ip: '2001:db8:1:2::7', body: {} })).toEqual({ ip_address: '2001:db8:1:2::7' });
  });

  it('an IPv4-mapped IPv6 address is sent as the IPv4 address', () => {
    expect(userData({ ip: '::ffff:203.0.113.7', body: {} })).toEqual({ ip_address: '203.0.113.7' });
  });

  it('what is not an IP address, or not a 64-hex hash, is not sent', () => {
    expect(userData({ ip: 'unknown', body: { hashed_email: 'ann@example.com' }, alias: { hashed_phone_number: 'ABC' } })).toEqual({});
  });

  it('an event with no identifier left is not sent, with the reason', () => {
    expect(toSpotifyEvent(stored({ ip: '203.0.113.0', uid: undefined }), { custom: {} })).toEqual({ skip: expect.stringContaining('no identifier') });
  });
});

describe('event_details', () => {
  it('amount from value, currency, content_name from product_name; nothing else', () => {
    expect(mapped().event_details).toEqual({ amount: 79.99, currency: 'USD', content_name: 'Listener Tee' });
    expect(eventDetails({ value: 5, currency: 'EUR', quantity: 2, product_id: 'p', line_items: [{ value: 1 }], category: 'x', content_category: '123' })).toEqual({ amount: 5, currency: 'EUR' });
  });

  it('left out when empty', () => {
    expect(mapped({ action: 'view', body: { url: 'https://shop.example/' } })).not.toHaveProperty('event_details');
    expect(eventDetails({ value: 10 })).toBeUndefined();
  });

  it('an amount goes only with a currency; a currency may go alone', () => {
    expect(eventDetails({ value: 10, product_name: 'Tee' })).toEqual({ content_name: 'Tee' });
    expect(eventDetails({ currency: 'USD' })).toEqual({ currency: 'USD' });
    expect(eventDetails({ value: 0, currency: 'USD' })).toEqual({ amount: 0, currency: 'USD' });
  });
});

describe('event_source_url, action_source, opt_out_targeting', () => {
  it('event_source_url is body.url when http(s)', () => {
    expect(mapped().event_source_url).toBe('https://shop.example/thanks');
    expect(mapped({ body: { url: 'http://shop.example/' } }).event_source_url).toBe('http://shop.example/');
    expect(mapped({ body: { url: 'android-app://com.example' } })).not.toHaveProperty('event_source_url');
    expect(mapped({ body: {} })).not.toHaveProperty('event_source_url');
  });

  it('action_source is the stored one', () => {
    expect(mapped().action_source).toBe('WEB');
    expect(mapped({ action_source: 'OFFLINE' }).action_source).toBe('OFFLINE');
  });

  it('opt_out_targeting is true or absent', () => {
    expect(mapped({ opt_out_targeting: true }).opt_out_targeting).toBe(true);
    expect(mapped({ opt_out_targeting: false })).not.toHaveProperty('opt_out_targeting');
    expect(mapped()).not.toHaveProperty('opt_out_targeting');
  });

  it('the whole SPEC §9 example, and no other key', () => {
    expect(mapped({ alias: { hashed_email: H1, hashed_phone_number: H2 }, opt_out_targeting: true })).toEqual({
      event_name: 'PURCHASE',
      event_id: '9b1d-0001',
      event_time: '2026-01-23T12:34:56.100Z',
      user_data: { ip_address: '203.0.113.7', device_id: UID, hashed_emails: [H1], hashed_phone_number: H2 },
      event_details: { amount: 79.99, currency: 'USD', content_name: 'Listener Tee' },
      event_source_url: 'https://shop.example/thanks',
      action_source: 'WEB',
      opt_out_targeting: true,
    });
  });
});

describe('planDeliveries', () => {
  const a = connection({ connection_id: 'a' });
  const b = connection({ connection_id: 'b', keys: ['k1'], custom: { quiz: 'CUSTOM_EVENT_2' } });
  const c = connection({ connection_id: 'c', keys: ['k2'] });

  it('one pending delivery per connection whose keys include the event’s key (absent keys: every key)', () => {
    expect(planDeliveries({ key: 'k1', action: 'purchase', body: {} }, [a, b, c])).toEqual([
      { connection_id: 'a', state: 'pending' },
      { connection_id: 'b', state: 'pending' },
    ]);
    expect(planDeliveries({ key: 'k3', action: 'view', body: {} }, [a, b, c])).toEqual([{ connection_id: 'a', state: 'pending' }]);
    expect(planDeliveries({ key: 'k3', action: 'view', body: {} }, [b, c])).toEqual([]);
    expect(planDeliveries({ key: 'k1', action: 'view', body: {} }, [])).toEqual([]);
  });

  it('alias and unknown actions: none', () => {
    expect(planDeliveries({ key: 'k1', action: 'alias', body: {} }, [a, b])).toEqual([]);
    expect(planDeliveries({ key: 'k1', action: 'refund', body: {} }, [a, b])).toEqual([]);
  });

  it('a named custom event: pending where it has a slot, skipped with the reason elsewhere', () => {
    expect(planDeliveries({ key: 'k1', action: 'custom', body: { event_name: 'quiz' } }, [a, b])).toEqual([
      { connection_id: 'a', state: 'skipped', last_error: expect.stringContaining('"quiz"') },
      { connection_id: 'b', state: 'pending' },
    ]);
  });
});
