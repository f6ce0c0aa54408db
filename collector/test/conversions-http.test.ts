import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { KEY, startAdminApp, UID, type AdminApp } from './support/admin-app.js';

const SERVER_TOKEN = 'server-t0ken-for-tests';
const RAW_EMAIL = 'Ann.Raw+crm@Example.org';
const RAW_PHONE = '+1 (555) 013-2468';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

let app: AdminApp | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

/** The answer's JSON, typed loosely: the tests check its shape themselves. */
const json = (res: Response): Promise<any> => res.json();
const send = (body: unknown, token: string | undefined = SERVER_TOKEN, raw?: string) =>
  fetch(app!.url + '/api/v1/conversion', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: raw ?? JSON.stringify(body),
  });

const conversion = (over: Record<string, unknown> = {}) => ({
  pixel_id: KEY,
  event_name: 'PURCHASE',
  event_time: '2026-03-01T15:30:00Z',
  event_id: 'SP-ORD-67890',
  action_source: 'OFFLINE',
  user_data: { em: RAW_EMAIL, ph: RAW_PHONE, client_ip_address: '203.0.113.1', client_user_agent: 'till/2.0' },
  custom_data: { value: 149.99, currency: 'usd', order_id: 'SP-ORD-67890' },
  ...over,
});

describe('POST /api/v1/conversion', () => {
  it('does not exist without SPDT_SERVER_TOKEN', async () => {
    app = await startAdminApp();
    expect((await send(conversion(), 'anything')).status).toBe(404);
  });

  it('answers 401 for a missing or wrong token, storing nothing', async () => {
    app = await startAdminApp({ serverToken: SERVER_TOKEN });
    for (const token of ['', 'wrong', SERVER_TOKEN + 'x']) {
      const res = await send(conversion(), token);
      expect(res.status).toBe(401);
      expect(await res.text()).not.toContain(SERVER_TOKEN);
    }
    expect(await app.ctx.store.events({ limit: 10 })).toEqual([]);
  });

  it('stores a server event with hashed identifiers and a planned delivery, never the raw email or phone', async () => {
    app = await startAdminApp({ serverToken: SERVER_TOKEN });
    const res = await send(conversion());
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ received: 1, event_ids: ['SP-ORD-67890'] });

    const [event] = await app.ctx.store.events({ limit: 10 });
    expect(event).toMatchObject({
      key: KEY,
      action: 'purchase',
      event_id: 'SP-ORD-67890',
      time: Date.UTC(2026, 2, 1, 15, 30),
      transport: 'server',
      action_source: 'OFFLINE',
      ip: '203.0.113.1',
      user_agent: 'till/2.0',
      alias: { hashed_email: sha(RAW_EMAIL.toLowerCase()), hashed_phone_number: sha('15550132468') },
      body: { value: 149.99, currency: 'USD', order_id: 'SP-ORD-67890' },
    });
    expect(event.deliveries.map((d) => [d.connection_id, d.state])).toEqual([['conn-1', 'pending']]);

    // Nowhere in the database files, in any letter case, nor in the logs.
    const files = ['spdt.sqlite', 'spdt.sqlite-wal'].map((f) => join(app!.dir, f)).filter(existsSync);
    expect(files.length).toBeGreaterThan(0);
    const bytes = files.map((f) => readFileSync(f).toString('latin1').toLowerCase()).join('\n');
    expect(bytes).toContain(sha(RAW_EMAIL.toLowerCase())); // the search does see what is stored
    for (const raw of [RAW_EMAIL.toLowerCase(), 'example.org', '5550132468', '013-2468']) expect(bytes).not.toContain(raw);
    expect(app.logs.join('\n').toLowerCase()).not.toContain('example.org');
  });

  it('takes {data: [...]}, makes missing ids, and counts duplicates as received', async () => {
    app = await startAdminApp({ serverToken: SERVER_TOKEN });
    const res = await send({ data: [conversion({ event_id: 'a' }), conversion({ event_id: undefined }), conversion({ event_id: 'a' })] });
    expect(res.status).toBe(200);
    const answer = await json(res);
    expect(answer.received).toBe(3);
    expect(answer.event_ids[0]).toBe('a');
    expect(answer.event_ids[1]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(answer.event_ids[2]).toBe('a');
    const stored = await app.ctx.store.events({ limit: 10 });
    expect(stored.map((e) => e.event_id).sort()).toEqual([answer.event_ids[1], 'a'].sort());
  });

  it('is the same event as a pixel event with its key and event_id: stored and delivered once', async () => {
    app = await startAdminApp({ serverToken: SERVER_TOKEN });
    // What the tag sent first, through the real ingest endpoint.
    const beacon = {
      v: 1,
      sent_at: Date.now(),
      batch: [{ pid: KEY, uid: UID, events: [{ action: 'purchase', event_id: 'SP-ORD-67890', time: Date.now() - 1000, body: { url: 'https://shop.example/thanks', value: 149.99, currency: 'USD' } }] }],
    };
    expect((await fetch(app.url + '/v1/ingest', { method: 'POST', body: JSON.stringify(beacon) })).status).toBe(204);
    const res = await send(conversion());
    expect(await json(res)).toEqual({ received: 1, event_ids: ['SP-ORD-67890'] });
    const stored = await app.ctx.store.events({ limit: 10 });
    expect(stored).toHaveLength(1);
    expect(stored[0].transport).toBe('beacon');
    expect(stored[0].deliveries).toHaveLength(1);
    const metrics = await (await fetch(app.url + '/metrics')).text();
    expect(metrics).toMatch(/^spdt_events_received_total\{transport="server"\} 1$/m);
    expect(metrics).not.toMatch(/^spdt_events_stored_total\{transport="server"\}/m); // received, never stored twice
    expect(metrics).toMatch(/^spdt_events_stored_total\{transport="beacon"\} 1$/m);
    // A pixel event under another key is another event.
    await send(conversion({ pixel_id: 'another-key' }));
    expect(await app.ctx.store.events({ limit: 10 })).toHaveLength(2);
  });

  it('answers 400 with every unusable event and stores nothing of the request', async () => {
    app = await startAdminApp({ serverToken: SERVER_TOKEN });
    const res = await send({ data: [conversion({ event_id: 'good' }), conversion({ event_name: 'alias' }), conversion({ event_time: 'soon' })] });
    expect(res.status).toBe(400);
    const { errors } = await json(res);
    expect(errors.map((e: { index: number }) => e.index)).toEqual([1, 2]);
    expect(errors[0].error).toMatch(/^event_name:/);
    expect(errors[1].error).toMatch(/^event_time:/);
    expect(JSON.stringify(errors)).not.toMatch(/example/i);
    expect(await app.ctx.store.events({ limit: 10 })).toEqual([]);
  });

  it('answers 400 for no event or a body that is not JSON', async () => {
    app = await startAdminApp({ serverToken: SERVER_TOKEN });
    for (const raw of ['{"data": []}', 'not json', '', '[1]']) {
      const res = await send(undefined, SERVER_TOKEN, raw);
      expect(res.status, raw).toBe(400);
      expect((await json(res)).errors[0].index).toBeNull();
    }
    expect(await app.ctx.store.events({ limit: 10 })).toEqual([]);
  });

  it('answers 413 over 1 MiB', async () => {
    app = await startAdminApp({ serverToken: SERVER_TOKEN });
    const padding = 'x'.repeat(1024 * 1024);
    const res = await send(conversion({ custom_data: { note: padding } }));
    expect(res.status).toBe(413);
    expect((await json(res)).errors[0].error).toMatch(/1 MiB/);
    expect(await app.ctx.store.events({ limit: 10 })).toEqual([]);
    // Just under the limit is read (and this one is a valid event).
    const fits = JSON.stringify(conversion({ custom_data: { note: 'x'.repeat(1024 * 1024 - 1000) } }));
    expect((await send(undefined, SERVER_TOKEN, fits)).status).toBe(200);
  });

  it('wakes the live streams and the relay', async () => {
    app = await startAdminApp({ serverToken: SERVER_TOKEN });
    const woken = new Promise((resolve) => app!.ctx.changes.once('change', resolve));
    await send(conversion());
    await woken;
  });
});
