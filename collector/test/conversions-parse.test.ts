import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseConversion, parseConversions, type Conversion, type RequestFacts } from '../src/conversions/parse.js';

const NOW = Date.UTC(2026, 2, 2, 12, 0, 0);
const KEY = '5a1c965e567a45f7832cc5ba7a37faf7';
let ids = 0;
const facts = (over: Partial<RequestFacts> = {}): RequestFacts => ({
  ip: '198.51.100.20',
  userAgent: 'crm-client/1.0',
  now: NOW,
  newId: () => `generated-${++ids}`,
  ...over,
});
/** An independent SHA-256 (Node's), to check the tag's hashing and normalisation from outside. */
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

function one(input: Record<string, unknown>, f = facts()): Conversion {
  const parsed = parseConversion({ pixel_id: KEY, event_name: 'purchase', ...input }, f);
  if (typeof parsed == 'string') throw new Error(`unexpected error: ${parsed}`);
  return parsed;
}
const error = (input: Record<string, unknown>) => parseConversion({ pixel_id: KEY, event_name: 'purchase', ...input }, facts());

describe('the body', () => {
  it('is one event, or {data: [...]}', () => {
    const single = parseConversions({ pixel_id: KEY, event_name: 'lead', event_id: 'a' }, facts());
    expect(single.ok && single.events.map((e) => e.event_id)).toEqual(['a']);
    const many = parseConversions({ data: [{ pixel_id: KEY, event_name: 'lead', event_id: 'a' }, { pixel_id: KEY, event_name: 'view', event_id: 'b' }] }, facts());
    expect(many.ok && many.events.map((e) => [e.action, e.event_id])).toEqual([['lead', 'a'], ['view', 'b']]);
  });

  it('must be an object with events: request-level errors have index null', () => {
    for (const body of [null, 'x', 42, [], [{ pixel_id: KEY, event_name: 'lead' }]]) {
      const r = parseConversions(body, facts());
      expect(r.ok).toBe(false);
      expect(!r.ok && r.errors).toEqual([{ index: null, error: 'body: not a JSON object' }]);
    }
    expect(parseConversions({ data: {} }, facts())).toEqual({ ok: false, errors: [{ index: null, error: 'data: not an array' }] });
    expect(parseConversions({ data: [] }, facts())).toEqual({ ok: false, errors: [{ index: null, error: 'data: no events' }] });
  });

  it('takes at most 1,000 events', () => {
    const event = { pixel_id: KEY, event_name: 'view' };
    expect(parseConversions({ data: Array(1000).fill(event) }, facts()).ok).toBe(true);
    expect(parseConversions({ data: Array(1001).fill(event) }, facts())).toEqual({
      ok: false,
      errors: [{ index: null, error: 'data: over 1000 events' }],
    });
  });

  it('is all or nothing: every unusable event is named by its index, no event is returned', () => {
    const r = parseConversions(
      { data: [{ pixel_id: KEY, event_name: 'view' }, { pixel_id: KEY, event_name: 'bogus' }, 'x', { event_name: 'view' }] },
      facts(),
    );
    expect(r.ok).toBe(false);
    expect(!r.ok && r.errors.map((e) => e.index)).toEqual([1, 2, 3]);
    expect(!r.ok && r.errors[1].error).toBe('not an object');
  });
});

describe('pixel_id and event_name', () => {
  it('needs a pixel_id', () => {
    expect(parseConversion({ event_name: 'view' }, facts())).toMatch(/^pixel_id:/);
    expect(parseConversion({ pixel_id: '  ', event_name: 'view' }, facts())).toMatch(/^pixel_id:/);
    expect(parseConversion({ pixel_id: 7, event_name: 'view' }, facts())).toMatch(/^pixel_id:/);
    expect(parseConversion({ pixel_id: 'k'.repeat(257), event_name: 'view' }, facts())).toMatch(/^pixel_id:/);
  });

  it('takes the tag event commands in any letter case, never alias or consent', () => {
    for (const name of ['PURCHASE', 'Purchase', 'addtocart', 'AddToCart', 'custom_event_3', 'SIGNUP', ' lead ']) {
      const e = parseConversion({ pixel_id: KEY, event_name: name }, facts());
      expect(typeof e == 'string' ? e : e.action).toBe(name.trim().toLowerCase());
    }
    for (const name of ['alias', 'ALIAS', 'consent', 'conf', 'add_to_cart', 'custom_event_6', '', 5, undefined]) {
      expect(parseConversion({ pixel_id: KEY, event_name: name }, facts())).toMatch(/^event_name:/);
    }
  });

  it('needs event_name in custom_data for a named custom event', () => {
    expect(parseConversion({ pixel_id: KEY, event_name: 'custom' }, facts())).toMatch(/^custom_data.event_name: required/);
    const e = parseConversion({ pixel_id: KEY, event_name: 'custom', custom_data: { event_name: 'quote' } }, facts());
    expect(typeof e != 'string' && e.body).toEqual({ event_name: 'quote' });
  });
});

describe('custom_data: the command props, validated by the tag rules', () => {
  it('normalises what the tag normalises and keeps the tag warning texts as problems', () => {
    const e = one({ custom_data: { value: '149.99', currency: 'usd', quantity: '2', order_id: 67890, is_new_customer: 'true' } });
    expect(e.body).toEqual({ value: 149.99, currency: 'USD', quantity: 2, order_id: '67890', is_new_customer: true });
    expect(e.problems).toEqual([]);
    const bad = one({ custom_data: { value: -1, currency: '£', colour: { x: 1 } } });
    expect(bad.body).toEqual({});
    expect(bad.problems).toEqual([
      'purchase custom_data.value: not a number ≥ 0',
      'purchase custom_data.currency: not a currency code',
      'purchase custom_data.colour: not a string/number/boolean',
    ]);
  });

  it('hashes email and phone_number props as the PII guard does, never keeping them raw', () => {
    const e = one({ custom_data: { email: '  Ann@Example.COM ', phone_number: '+1 (555) 010-9999' } });
    expect(e.body).toEqual({ hashed_email: sha('ann@example.com'), hashed_phone_number: sha('15550109999') });
    expect(JSON.stringify(e)).not.toMatch(/example\.com|555/i);
  });

  it('drops a free prop that holds an email address, as ingest does', () => {
    const e = one({ custom_data: { note: 'call Ann@Example.com', channel: 'phone' } });
    expect(e.body).toEqual({ channel: 'phone' });
    expect(e.problems).toEqual(['purchase custom_data.note: looks like an email']);
    expect(JSON.stringify(e)).not.toMatch(/example/i);
  });

  it('keeps the top-level event_id: one in custom_data is dropped with a problem', () => {
    const e = one({ event_id: 'top', custom_data: { event_id: 'inner' } });
    expect(e.event_id).toBe('top');
    expect(e.body).toEqual({});
    expect(e.problems).toEqual(['purchase custom_data.event_id: use the top-level event_id, dropped']);
  });

  it('refuses custom_data that is not an object', () => {
    expect(error({ custom_data: [1] })).toBe('custom_data: not an object');
    expect(error({ custom_data: 'x' })).toBe('custom_data: not an object');
  });
});

describe('user_data', () => {
  it('hashes raw em and ph on arrival (normalised as in §5) into the alias', () => {
    const e = one({ user_data: { em: ' Ann@Example.COM ', ph: '0044 20 7946 0958' } });
    expect(e.alias).toEqual({ hashed_email: sha('ann@example.com'), hashed_phone_number: sha('442079460958') });
    expect(JSON.stringify(e)).not.toMatch(/example|7946/i);
  });

  it('keeps an already hashed em or ph (64 hex), lower-cased, not hashed twice', () => {
    const h = sha('ann@example.com');
    const e = one({ user_data: { em: h.toUpperCase(), ph: h } });
    expect(e.alias).toEqual({ hashed_email: h, hashed_phone_number: h });
  });

  it('drops an em that is not a string, with a problem and no value in it', () => {
    const e = one({ user_data: { em: ['ann@example.com'] } });
    expect(e.alias).toBeUndefined();
    expect(e.problems).toEqual(['purchase user_data.em: not a string']);
    expect(JSON.stringify(e)).not.toContain('example');
  });

  it('has no alias without em or ph', () => {
    expect(one({}).alias).toBeUndefined();
    expect(one({ user_data: { em: '', ph: '  ' } }).alias).toBeUndefined();
  });

  it('stores client_ip_address as the ip, else the request ip', () => {
    expect(one({ user_data: { client_ip_address: '203.0.113.1' } }).ip).toBe('203.0.113.1');
    expect(one({ user_data: { client_ip_address: '2001:db8::7' } }).ip).toBe('2001:db8::7');
    expect(one({}).ip).toBe('198.51.100.20');
    expect(error({ user_data: { client_ip_address: '203.0.113' } })).toBe('user_data.client_ip_address: not an IP address');
    expect(error({ user_data: { client_ip_address: 3 } })).toBe('user_data.client_ip_address: not an IP address');
  });

  it('stores client_user_agent as the user_agent, else the request one', () => {
    expect(one({ user_data: { client_user_agent: 'Mozilla/5.0 (X11)' } }).user_agent).toBe('Mozilla/5.0 (X11)');
    expect(one({}).user_agent).toBe('crm-client/1.0');
    expect(one({}, facts({ userAgent: undefined })).user_agent).toBeUndefined();
  });

  it('stores device_id as the uid only when it is 32 hex', () => {
    expect(one({ user_data: { device_id: 'E80CB68AA08941C5937911DAEE4144EA' } }).uid).toBe('e80cb68aa08941c5937911daee4144ea');
    const e = one({ user_data: { device_id: 'e80cb68a-a089-41c5-9379-11daee4144ea' } });
    expect(e.uid).toBeUndefined();
    expect(e.problems).toEqual(['purchase user_data.device_id: not 32 hex, dropped']);
  });

  it('refuses user_data that is not an object', () => {
    expect(error({ user_data: 'ann@example.com' })).toBe('user_data: not an object');
  });
});

describe('event_time', () => {
  it('takes ISO 8601 with a zone, or a bare date (UTC)', () => {
    expect(one({ event_time: '2026-03-01T15:30:00Z' }).time).toBe(Date.UTC(2026, 2, 1, 15, 30));
    expect(one({ event_time: '2026-03-01T15:30:00.250+02:00' }).time).toBe(Date.UTC(2026, 2, 1, 13, 30, 0, 250));
    expect(one({ event_time: '2026-03-01' }).time).toBe(Date.UTC(2026, 2, 1));
  });

  it('takes epoch milliseconds; absent is now', () => {
    expect(one({ event_time: 1772379000123 }).time).toBe(1772379000123);
    expect(one({}).time).toBe(NOW);
  });

  it('refuses anything else', () => {
    for (const bad of ['yesterday', '2026-03-01T15:30:00', '2026-02-30', '2026-13-01', '2026-03-01T25:00Z', '', NaN, Infinity, true, {}]) {
      expect(error({ event_time: bad })).toMatch(/^event_time: not ISO 8601/);
    }
    expect(error({ event_time: 1772379000 })).toMatch(/^event_time: before 2000, epoch seconds/);
  });
});

describe('event_id and action_source', () => {
  it('keeps a given event_id and makes a UUID-like id when absent', () => {
    expect(one({ event_id: 'SP-ORD-67890' }).event_id).toBe('SP-ORD-67890');
    expect(one({}, facts({ newId: () => 'made-here' })).event_id).toBe('made-here');
  });

  it('refuses an event_id the pixel could not have sent', () => {
    for (const bad of ['', 'x'.repeat(129), 67890, {}]) expect(error({ event_id: bad })).toMatch(/^event_id:/);
    expect(one({ event_id: 'x'.repeat(128) }).event_id).toHaveLength(128);
  });

  it('takes WEB, APP or OFFLINE in any case, WEB by default', () => {
    expect(one({}).action_source).toBe('WEB');
    expect(one({ action_source: 'OFFLINE' }).action_source).toBe('OFFLINE');
    expect(one({ action_source: 'app' }).action_source).toBe('APP');
    expect(error({ action_source: 'STORE' })).toBe('action_source: not WEB, APP or OFFLINE');
    expect(error({ action_source: 1 })).toBe('action_source: not WEB, APP or OFFLINE');
  });
});

describe('the stored event', () => {
  it('is a server event received now, with the spec example mapped field by field', () => {
    const e = one({
      event_name: 'purchase',
      event_time: '2026-03-01T15:30:00Z',
      event_id: 'SP-ORD-67890',
      action_source: 'OFFLINE',
      user_data: { em: 'a@b.co', client_ip_address: '203.0.113.1', client_user_agent: 'Mozilla/5.0 …', device_id: 'e80cb68aa08941c5937911daee4144ea' },
      custom_data: { value: 149.99, currency: 'USD', order_id: 'SP-ORD-67890' },
    });
    expect(e).toEqual({
      key: KEY,
      action: 'purchase',
      event_id: 'SP-ORD-67890',
      time: Date.UTC(2026, 2, 1, 15, 30),
      received_at: NOW,
      uid: 'e80cb68aa08941c5937911daee4144ea',
      alias: { hashed_email: sha('a@b.co') },
      transport: 'server',
      action_source: 'OFFLINE',
      ip: '203.0.113.1',
      user_agent: 'Mozilla/5.0 …',
      body: { value: 149.99, currency: 'USD', order_id: 'SP-ORD-67890' },
      problems: [],
    });
  });

  it('names unknown fields in problems without their values, and never a hostile name', () => {
    const e = one({ test_code: 'ann@example.com', 'ann@example.com': 1, user_data: { fbp: 'x', 'bob@example.com': 'y' } });
    expect(e.problems).toEqual([
      'purchase test_code: unknown field, dropped',
      'purchase a field with an invalid name: unknown field, dropped',
      'purchase user_data.fbp: unknown field, dropped',
      'purchase user_data.a field with an invalid name: unknown field, dropped',
    ]);
    expect(JSON.stringify(e)).not.toContain('example.com');
  });
});
