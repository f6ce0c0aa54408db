import { networkInterfaces } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { connection, KEY, openStream, startAdminApp, type AdminApp } from './support/admin-app.js';

const EVENT_FIELDS = [
  'key', 'action', 'event_id', 'time', 'received_at', 'uid', 'sid', 'cid', 'alias', 'opt_out_targeting',
  'transport', 'action_source', 'ip', 'user_agent', 'body', 'problems', 'deliveries',
];
const DELIVERY_FIELDS = ['destination', 'connection_id', 'state', 'attempts', 'last_status', 'last_error', 'next_attempt_at', 'delivered_at'];
const ADMIN_TOKEN = 'admin-t0ken-for-tests';

let app: AdminApp | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

/** The answer's JSON, typed loosely: the tests check its shape themselves. */
const json = (res: Response): Promise<any> => res.json();
const get = (path: string, headers: Record<string, string> = {}) => fetch(app!.url + path, { headers });
const post = (path: string, body: string, headers: Record<string, string> = {}) =>
  fetch(app!.url + path, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });

type Settled = { state: 'delivered'; status: number } | { state: 'dead'; status: number; error: string };
const DEAD: Settled = { state: 'dead', status: 400, error: 'bad event' };
const DELIVERED: Settled = { state: 'delivered', status: 200 };

/** Claims the pending deliveries of one connection and records these outcomes, as the relay would. */
async function settle(outcomes: Record<string, Settled>, connection_id = 'conn-1') {
  const now = Date.now();
  const claimed = await app!.ctx.store.claim({ connection_id, limit: 100, now: now + 1, leaseMs: 60_000, worker: 'test' });
  const records = Object.entries(outcomes).map(([eventId, outcome]) => {
    const mine = claimed.find((c) => c.event.event_id == eventId);
    if (!mine) throw new Error('no pending delivery for ' + eventId);
    return { id: mine.id, at: now, ...outcome };
  });
  await app!.ctx.store.record(records);
}

describe('admin auth over HTTP, without SPDT_ADMIN_TOKEN', () => {
  const paths = ['/', '/api/events', '/api/stream', '/api/deliveries?state=dead', '/metrics'];

  it('answers a loopback client', async () => {
    app = await startAdminApp();
    for (const path of paths.filter((p) => p != '/api/stream')) expect((await get(path)).status, path).toBe(200);
  });

  it('answers 401 JSON to a request a proxy forwarded (X-Forwarded-For or Forwarded), even from loopback', async () => {
    app = await startAdminApp();
    for (const headers of [{ 'x-forwarded-for': '203.0.113.9' }, { forwarded: 'for=203.0.113.9' }] as Record<string, string>[]) {
      for (const path of paths) {
        const res = await get(path, headers);
        expect(res.status, path).toBe(401);
        expect(res.headers.get('content-type')).toMatch(/^application\/json/);
        expect((await json(res)).error).toMatch(/loopback/);
      }
      expect((await post('/api/deliveries/replay', '{}', headers)).status).toBe(401);
    }
  });
});

describe('admin auth over HTTP, from a client that is not on loopback', () => {
  /** This machine's own non-loopback address: a socket from it is a remote client to the collector. */
  function outsideAddress(): string {
    const address = Object.values(networkInterfaces()).flat().find((a) => a && !a.internal && a.family == 'IPv4');
    if (!address) throw new Error('this test needs a non-loopback IPv4 address on the machine');
    return address.address;
  }

  it('answers 401 without SPDT_ADMIN_TOKEN, and lets the token in', async () => {
    const host = outsideAddress();
    app = await startAdminApp({ host });
    expect(app.url).toContain(host);
    for (const path of ['/', '/api/events', '/api/stream', '/api/deliveries?state=dead', '/metrics']) expect((await get(path)).status, path).toBe(401);
    await app.close();

    app = await startAdminApp({ host, adminToken: ADMIN_TOKEN });
    expect((await get('/api/events')).status).toBe(401);
    expect((await get('/api/events', { authorization: `Bearer ${ADMIN_TOKEN}` })).status).toBe(200);
  });
});

describe('admin auth over HTTP, with SPDT_ADMIN_TOKEN', () => {
  it('takes the token as a Bearer header or ?token=, and 401s without it or with a wrong one', async () => {
    app = await startAdminApp({ adminToken: ADMIN_TOKEN });
    expect((await get('/api/events')).status).toBe(401);
    expect((await get('/api/events', { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await get('/api/events?token=wrong')).status).toBe(401);
    expect((await get('/api/events', { authorization: `Bearer ${ADMIN_TOKEN}` })).status).toBe(200);
    expect((await get(`/api/events?token=${ADMIN_TOKEN}`)).status).toBe(200);
    expect((await get(`/?token=${ADMIN_TOKEN}`)).status).toBe(200);
    expect((await get('/metrics', { authorization: `Bearer ${ADMIN_TOKEN}` })).status).toBe(200);
    // A token lets a forwarded request in: the proxy case is what the token is for.
    expect((await get('/api/events', { authorization: `Bearer ${ADMIN_TOKEN}`, 'x-forwarded-for': '203.0.113.9' })).status).toBe(200);
  });

  it('never echoes the token, not in answers and not in logs', async () => {
    app = await startAdminApp({ adminToken: ADMIN_TOKEN });
    const answers = await Promise.all([
      get('/api/events?token=' + ADMIN_TOKEN + 'x'),
      get('/api/events?limit=0&token=' + ADMIN_TOKEN),
      post('/api/deliveries/replay?token=' + ADMIN_TOKEN, 'not json'),
    ]);
    expect(answers.map((a) => a.status)).toEqual([401, 400, 400]);
    for (const a of answers) expect(await a.text()).not.toContain(ADMIN_TOKEN);
    expect(app.logs.join('\n')).not.toContain(ADMIN_TOKEN);
  });
});

describe('the live view page', () => {
  it('is served with a CSP that allows only its own script, and with no referrer', async () => {
    app = await startAdminApp({ adminToken: ADMIN_TOKEN });
    const res = await get(`/?token=${ADMIN_TOKEN}`);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    const html = await res.text();
    expect(html).toContain('src="/live.js"');
    expect(html).not.toMatch(/<script>|style=/);
    // Its script and stylesheet hold no data: public, so the page's <script src> needs no token.
    const js = await get('/live.js');
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(await js.text()).not.toContain('innerHTML');
    expect((await get('/live.css')).status).toBe(200);
  });
});

describe('GET /api/events', () => {
  async function stored(count: number) {
    const base = Date.now() - 100_000;
    const events = Array.from({ length: count }, (_, i) => app!.event('e' + i, { received_at: base + i * 1000, time: base + i * 1000 - 10 }));
    await app!.ctx.store.insert(events);
    return { base, events };
  }

  it('shows exactly the SPEC fields of each event and delivery', async () => {
    app = await startAdminApp();
    await app.ctx.store.insert([
      app.event('full', { sid: '0f6c9a3d2b1e4c5f8a7b6c5d4e3f2a1b', cid: 'click', alias: { hashed_email: 'a'.repeat(64) }, opt_out_targeting: true, problems: ['purchase currency: not a currency code'] }),
    ]);
    const [event] = await json(await get('/api/events'));
    expect(Object.keys(event)).toEqual(EVENT_FIELDS);
    expect(event.deliveries).toHaveLength(1);
    for (const d of event.deliveries) expect(DELIVERY_FIELDS).toEqual(expect.arrayContaining(Object.keys(d)));
    expect(event.deliveries[0]).toMatchObject({ destination: 'spotify', connection_id: 'conn-1', state: 'pending', attempts: 0 });
    expect(event.problems).toEqual(['purchase currency: not a currency code']);
  });

  it('without since: the newest limit (default 1000), oldest first', async () => {
    app = await startAdminApp();
    await stored(5);
    const all = await json(await get('/api/events'));
    expect(all.map((e: { event_id: string }) => e.event_id)).toEqual(['e0', 'e1', 'e2', 'e3', 'e4']);
    const newest = await json(await get('/api/events?limit=2'));
    expect(newest.map((e: { event_id: string }) => e.event_id)).toEqual(['e3', 'e4']);
  });

  it('with since: the oldest limit from there (inclusive), for paging forward', async () => {
    app = await startAdminApp();
    const { base } = await stored(5);
    const page1 = await json(await get(`/api/events?since=${base + 1000}&limit=2`));
    expect(page1.map((e: { event_id: string }) => e.event_id)).toEqual(['e1', 'e2']);
    const page2 = await json(await get(`/api/events?since=${page1[1].received_at + 1}&limit=2`));
    expect(page2.map((e: { event_id: string }) => e.event_id)).toEqual(['e3', 'e4']);
  });

  it('filters by key', async () => {
    app = await startAdminApp();
    await app.ctx.store.insert([app.event('a'), app.event('b', { key: 'other' })]);
    const events = await json(await get('/api/events?key=other'));
    expect(events.map((e: { event_id: string }) => e.event_id)).toEqual(['b']);
  });

  it('answers 400 JSON naming a bad parameter', async () => {
    app = await startAdminApp();
    for (const [query, name] of [
      ['limit=0', 'limit'],
      ['limit=10001', 'limit'],
      ['limit=2.5', 'limit'],
      ['since=yesterday', 'since'],
      ['since=-1', 'since'],
      ['key=', 'key'],
      ['key=a&key=b', 'key'],
    ]) {
      const res = await get('/api/events?' + query);
      expect(res.status, query).toBe(400);
      expect((await json(res)).error, query).toMatch(new RegExp('^' + name + ':'));
    }
  });
});

describe('GET /api/stream', () => {
  it('sends a stored event, then the same event again when its delivery changes', async () => {
    app = await startAdminApp({ pollMs: 60_000 }); // only this node's change signal can wake it
    const stream = await openStream(app.url + '/api/stream');
    expect(stream.response.headers['content-type']).toMatch(/^text\/event-stream/);
    await app.ctx.store.insert([app.event('live-1')]);
    app.ctx.changes.emit('change');
    const first = await stream.next((e) => e.event_id == 'live-1');
    expect(first.deliveries[0].state).toBe('pending');
    expect(EVENT_FIELDS).toEqual(expect.arrayContaining(Object.keys(first)));

    await settle({ 'live-1': DELIVERED });
    app.ctx.changes.emit('change');
    const second = await stream.next((e) => e.event_id == 'live-1' && e.deliveries[0].state == 'delivered');
    expect(second.deliveries[0]).toMatchObject({ state: 'delivered', last_status: 200, attempts: 1 });
    stream.close();
  });

  it('sees what another node stored, by polling the store', async () => {
    app = await startAdminApp();
    const stream = await openStream(app.url + '/api/stream');
    await app.ctx.store.insert([app.event('from-elsewhere')]); // no change signal: another process wrote it
    expect((await stream.next((e) => e.event_id == 'from-elsewhere')).key).toBe(KEY);
    stream.close();
  });

  it('resumes after Last-Event-ID, and takes ?token=', async () => {
    app = await startAdminApp({ adminToken: ADMIN_TOKEN });
    const first = await openStream(`${app.url}/api/stream?token=${ADMIN_TOKEN}`);
    await app.ctx.store.insert([app.event('r1')]);
    await first.next((e) => e.event_id == 'r1');
    const lastId = first.messages.at(-1)!.id!;
    expect(lastId).toMatch(/^\d+$/);
    first.close();
    await app.ctx.store.insert([app.event('r2')]); // while nobody listens
    const again = await openStream(`${app.url}/api/stream?token=${ADMIN_TOKEN}`, { 'last-event-id': lastId });
    await again.next((e) => e.event_id == 'r2');
    expect(again.messages.map((m) => m.data.event_id)).not.toContain('r1');
    again.close();
  });

  it('does not hold the server open on close', async () => {
    app = await startAdminApp();
    const stream = await openStream(app.url + '/api/stream');
    const ended = new Promise((resolve) => stream.response.on('end', resolve));
    await app.close();
    await ended;
    app = undefined;
  });

  it('refuses a forwarded request', async () => {
    app = await startAdminApp();
    expect((await get('/api/stream', { 'x-forwarded-for': '203.0.113.9' })).status).toBe(401);
  });
});

describe('dead deliveries and replay', () => {
  it('lists dead deliveries and replays them back to pending, answering the count', async () => {
    app = await startAdminApp();
    await app.ctx.store.insert([app.event('d1'), app.event('d2'), app.event('ok')]);
    await settle({ d1: DEAD, d2: DEAD, ok: DELIVERED });

    const dead = await json(await get('/api/deliveries?state=dead'));
    expect(dead.map((d: { event_id: string }) => d.event_id).sort()).toEqual(['d1', 'd2']);
    expect(dead[0]).toMatchObject({ state: 'dead', last_status: 400, last_error: 'bad event', key: KEY });
    expect(['event_id', 'key', ...DELIVERY_FIELDS]).toEqual(expect.arrayContaining(Object.keys(dead[0])));

    expect(await (await post('/api/deliveries/replay', JSON.stringify({ event_ids: ['d1', 'ok', 'unknown'] }))).json()).toEqual({ replayed: 1 });
    expect(await (await post('/api/deliveries/replay', '{}')).json()).toEqual({ replayed: 1 });
    expect(await (await post('/api/deliveries/replay', '{}')).json()).toEqual({ replayed: 0 });
    expect(await (await get('/api/deliveries?state=dead')).json()).toEqual([]);
    const pending = await json(await get('/api/deliveries?state=pending'));
    expect(pending.map((d: { event_id: string }) => d.event_id).sort()).toEqual(['d1', 'd2']);
  });

  it('answers 400 for a bad body, replaying nothing', async () => {
    app = await startAdminApp();
    await app.ctx.store.insert([app.event('d1')]);
    await settle({ d1: DEAD });
    for (const body of ['', 'not json', '[]', 'null', '{"eventIds": ["d1"]}', '{"event_ids": "d1"}', '{"event_ids": [1]}']) {
      const res = await post('/api/deliveries/replay', body);
      expect(res.status, body).toBe(400);
      expect(typeof (await json(res)).error).toBe('string');
    }
    expect(await (await get('/api/deliveries?state=dead')).json()).toHaveLength(1);
    expect((await get('/api/deliveries?state=gone')).status).toBe(400);
  });
});

describe('GET /metrics', () => {
  it('is Prometheus text with deliveries by connection and state, counted from the store', async () => {
    app = await startAdminApp({ connections: [connection('conn-1'), connection('conn-2')] });
    await app.ctx.store.insert([app.event('m1'), app.event('m2')]);
    await settle({ m1: DEAD }, 'conn-1');
    await settle({ m1: DEAD, m2: DELIVERED }, 'conn-2');

    const res = await get('/metrics');
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const samples = parsePrometheus(await res.text());
    const deliveries = (connection_id: string, state: string) =>
      samples.get(`spdt_deliveries{destination="spotify",connection_id="${connection_id}",state="${state}"}`);
    expect(deliveries('conn-1', 'dead')).toBe(1);
    expect(deliveries('conn-1', 'pending')).toBe(1);
    expect(deliveries('conn-1', 'delivered')).toBe(0);
    expect(deliveries('conn-2', 'dead')).toBe(1);
    expect(deliveries('conn-2', 'pending')).toBe(0);
    expect(deliveries('conn-2', 'delivered')).toBe(1);
    expect(deliveries('conn-2', 'skipped')).toBe(0);
    expect(samples.get('spdt_live_streams')).toBe(0);
  });
});

describe('a relay-only node (SPDT_ROLE=relay)', () => {
  it('answers /metrics (with auth) and no other admin or conversion endpoint', async () => {
    app = await startAdminApp({ role: 'relay', serverToken: 'server-token' });
    expect((await get('/metrics')).status).toBe(200);
    expect((await get('/metrics', { 'x-forwarded-for': '203.0.113.9' })).status).toBe(401);
    for (const path of ['/', '/api/events', '/api/stream', '/api/deliveries?state=dead']) expect((await get(path)).status, path).toBe(404);
    expect((await post('/api/deliveries/replay', '{}')).status).toBe(404);
    expect((await post('/api/v1/conversion', '{}', { authorization: 'Bearer server-token' })).status).toBe(404);
  });
});

/**
 * Every sample line of a Prometheus text exposition, by series; throws on a line that is not one.
 * Values as Prometheus reads them (Go's ParseFloat: NaN and Inf in any letter case; prom-client writes `Nan`).
 */
function parsePrometheus(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})?) (-?[0-9.e+-]+|nan|[+-]inf)$/i.exec(line);
    if (!match) throw new Error('not a Prometheus sample line: ' + line);
    samples.set(match[1], Number(match[3]));
  }
  return samples;
}
