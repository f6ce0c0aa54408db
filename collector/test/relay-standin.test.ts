/** The stand-in's own checks: it must refuse what Spotify would, or the relay tests prove nothing. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkEvent, checkPayload, startStandin, type Standin } from './support/spotify-standin.js';

const H = 'a'.repeat(64);
const good = () => ({
  event_name: 'PURCHASE',
  event_id: '9b1d-1',
  event_time: '2026-01-23T12:34:56.100Z',
  user_data: { ip_address: '203.0.113.7', device_id: 'e80cb68aa08941c5937911daee4144ea', hashed_emails: [H], hashed_phone_number: H },
  event_details: { amount: 79.99, currency: 'USD', content_name: 'Listener Tee' },
  event_source_url: 'https://shop.example/thanks',
  action_source: 'WEB',
  opt_out_targeting: true,
});
const now = Date.parse('2026-02-01T00:00:00Z');
const envelope = (events: unknown[], id = 'conn') => ({ conversion_events: { capi_connection_id: id, events } });

describe('the stand-in’s contract checks', () => {
  it('takes SPEC §9’s example', () => {
    expect(checkPayload(envelope([good()]), 'conn', now)).toBeUndefined();
    expect(checkEvent({ event_name: 'VIEW', event_id: 'x', event_time: '2026-01-01T00:00:00.000Z', user_data: { device_id: 'd' }, action_source: 'APP' }, now)).toBeUndefined();
  });

  const bad: [string, (e: Record<string, any>) => void, RegExp][] = [
    ['a diagnostics spelling', (e) => (e.event_name = 'CHECKOUT'), /event_name/],
    ['a lower-case name', (e) => (e.event_name = 'purchase'), /event_name/],
    ['CUSTOM_EVENT_6', (e) => (e.event_name = 'CUSTOM_EVENT_6'), /event_name/],
    ['an empty event_id', (e) => (e.event_id = ''), /event_id/],
    ['a numeric event_id', (e) => (e.event_id = 5), /event_id/],
    ['a time without ms', (e) => (e.event_time = '2026-01-23T12:34:56Z'), /event_time/],
    ['an epoch time', (e) => (e.event_time = 1769171696100), /event_time/],
    ['a future time', (e) => (e.event_time = '2027-01-01T00:00:00.000Z'), /future/],
    ['no identifier', (e) => (e.user_data = {}), /identifier/],
    ['an unknown user_data key', (e) => (e.user_data.client_user_agent = 'Mozilla'), /unknown user_data key/],
    ['a bad IP', (e) => (e.user_data.ip_address = '203.0.113'), /ip_address/],
    ['hashed_emails as a string', (e) => (e.user_data.hashed_emails = H), /hashed_emails/],
    ['an unhashed email', (e) => (e.user_data.hashed_emails = ['ann@example.com']), /hashed_emails/],
    ['an empty hashed_emails list', (e) => (e.user_data.hashed_emails = []), /hashed_emails/],
    ['a phone as a list', (e) => (e.user_data.hashed_phone_number = [H]), /hashed_phone_number/],
    ['an upper-case hash', (e) => (e.user_data.hashed_phone_number = H.toUpperCase()), /hashed_phone_number/],
    ['a string amount', (e) => (e.event_details.amount = '79.99'), /amount/],
    ['an amount without currency', (e) => delete e.event_details.currency, /currency/],
    ['a lower-case currency', (e) => (e.event_details.currency = 'usd'), /currency/],
    ['content_category', (e) => (e.event_details.content_category = 'shirts'), /unknown event_details key/],
    ['empty event_details', (e) => (e.event_details = {}), /event_details/],
    ['a non-http source url', (e) => (e.event_source_url = 'ftp://shop.example/'), /event_source_url/],
    ['no action_source', (e) => delete e.action_source, /action_source/],
    ['a lower-case action_source', (e) => (e.action_source = 'web'), /action_source/],
    ['opt_out_targeting false', (e) => (e.opt_out_targeting = false), /opt_out_targeting/],
    ['an unknown event key', (e) => (e.order_id = 'SP-1'), /unknown event key/],
  ];
  it.each(bad)('refuses %s', (_, spoil, reason) => {
    const event = good();
    spoil(event);
    expect(checkPayload(envelope([good(), event]), 'conn', now)).toMatch(reason);
  });

  it('refuses a broken envelope', () => {
    expect(checkPayload(envelope([good()], 'other'), 'conn', now)).toMatch(/capi_connection_id/);
    expect(checkPayload(envelope([]), 'conn', now)).toMatch(/non-empty/);
    expect(checkPayload({ events: [good()] }, 'conn', now)).toMatch(/conversion_events/);
    expect(checkPayload({ ...envelope([good()]), extra: 1 }, 'conn', now)).toMatch(/conversion_events/);
    expect(checkPayload({ conversion_events: { capi_connection_id: 'conn', events: [good()], test: true } }, 'conn', now)).toMatch(/unknown conversion_events key/);
    expect(checkPayload([good()], 'conn', now)).toMatch(/object/);
  });
});

describe('the stand-in over HTTP', () => {
  let standin: Standin;
  beforeAll(async () => {
    standin = await startStandin({ connectionId: 'conn' });
  });
  afterAll(() => standin.close());

  const post = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(standin.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${standin.token}`, 'content-type': 'application/json', ...headers },
      body: typeof body == 'string' ? body : JSON.stringify(body),
    });
  const fresh = () => ({ ...good(), event_time: new Date(Date.now() - 1000).toISOString() });

  it('answers 200 SUCCESS to a good request and records it', async () => {
    const res = await post(envelope([fresh()]));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ message: 'SUCCESS' });
    expect(standin.acceptedIds()).toEqual(['9b1d-1']);
  });

  it('401 for a wrong or missing token, 400 for a wrong content type or bad JSON', async () => {
    expect((await post(envelope([fresh()]), { authorization: 'Bearer nope' })).status).toBe(401);
    expect((await post(envelope([fresh()]), { authorization: standin.token })).status).toBe(401);
    expect((await post(envelope([fresh()]), { 'content-type': 'text/plain' })).status).toBe(400);
    const res = await post('{"conversion_events":');
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'body is not JSON' });
  });

  it('400 with the reason for a bad payload', async () => {
    const res = await post(envelope([{ ...fresh(), event_name: 'Purchase' }]));
    expect(res.status).toBe(400);
    expect((await res.json()).error).toMatch(/event_name/);
  });

  it('plays scripted failures', async () => {
    standin.failNext(1, 429, { 'retry-after': '3' });
    const limited = await post(envelope([fresh()]));
    expect([limited.status, limited.headers.get('retry-after')]).toEqual([429, '3']);
    standin.refuseEvent('bad-one', 'no thanks');
    const refused = await post(envelope([fresh(), { ...fresh(), event_id: 'bad-one' }]));
    expect([refused.status, await refused.text()]).toEqual([400, 'no thanks']);
    expect((await post(envelope([fresh()]))).status).toBe(200);
  });

  it('holds a request until released', async () => {
    const held = standin.holdNext();
    const pending = post(envelope([{ ...fresh(), event_id: 'held-1' }]));
    await held;
    expect(standin.acceptedIds()).not.toContain('held-1');
    standin.release();
    expect((await pending).status).toBe(200);
    expect(standin.acceptedIds()).toContain('held-1');
  });

  it('refuses connections while not listening', async () => {
    await standin.stopListening();
    await expect(post(envelope([fresh()]))).rejects.toThrow();
    await standin.reopen();
    expect((await post(envelope([fresh()]))).status).toBe(200);
  });
});
