/**
 * The public HTTP edge (SPEC §8) against the real server on port 0 and a real SQLite store.
 */
import { connect } from 'node:net';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../src/store/sqlite.js';
import type { InsertResult, NewEvent, Store } from '../src/store/types.js';
import { post, startEdge, UID, wireBody, type Edge } from './support/edge.js';

const storedIds = (edge: Edge) => edge.collector.ctx.store.events({ limit: 10_000 }).then((events) => events.map((e) => e.event_id));

describe('POST /v1/ingest', () => {
  let edge: Edge;
  beforeAll(async () => {
    edge = await startEdge();
  });
  afterAll(() => edge.close());

  it('stores the events of a text/plain body and answers 204 with CORS', async () => {
    const answer = await post(edge.url, wireBody(['a-1', 'a-2']), { 'user-agent': 'TestAgent/1' });
    expect(answer.status).toBe(204);
    expect(answer.headers.get('access-control-allow-origin')).toBe('*');
    const [first] = await edge.collector.ctx.store.events({ key: 'key-1', limit: 10 });
    expect(first).toMatchObject({ event_id: 'a-1', transport: 'beacon', action_source: 'WEB', user_agent: 'TestAgent/1', uid: UID });
    expect(first.ip).toMatch(/^127\.0\.0\.|^::1$/);
    expect(first.body).toEqual({ url: 'https://shop.example/thanks', value: 79.99, currency: 'USD', order_id: 'SP-1' });
  });

  it('reads the body whatever the content type (application/json, none)', async () => {
    expect((await post(edge.url, wireBody(['ct-1']), { 'content-type': 'application/json' })).status).toBe(204);
    expect((await fetch(`${edge.url}/v1/ingest`, { method: 'POST', body: new Blob([wireBody(['ct-2'])]) })).status).toBe(204);
    expect(await storedIds(edge)).toEqual(expect.arrayContaining(['ct-1', 'ct-2']));
  });

  it('stores each (key, event_id) once, whichever transport brought it', async () => {
    expect((await post(edge.url, wireBody(['dup-1']))).status).toBe(204);
    expect((await post(edge.url, wireBody(['dup-1']))).status).toBe(204);
    const gif = await fetch(`${edge.url}/v1/img?key=key-1&a=purchase&eid=dup-1&value=5&currency=EUR`);
    expect(gif.status).toBe(200);
    const image = await fetch(`${edge.url}/v1/img?key=key-1&a=view&eid=img-only`);
    expect(image.status).toBe(200);
    await fetch(`${edge.url}/v1/ingest`, { method: 'POST', body: wireBody(['img-only']) });
    const events = await edge.collector.ctx.store.events({ limit: 10_000 });
    expect(events.filter((e) => e.event_id == 'dup-1')).toEqual([expect.objectContaining({ transport: 'beacon', body: expect.objectContaining({ value: 79.99 }) })]);
    expect(events.filter((e) => e.event_id == 'img-only')).toEqual([expect.objectContaining({ transport: 'image', action: 'view' })]);
    const metrics = await (await fetch(`${edge.url}/metrics`)).text();
    expect(metrics).toMatch(/spdt_events_received_total\{transport="image"\} 2/);
    expect(metrics).toMatch(/spdt_events_stored_total\{transport="image"\} 1/);
  });

  it.each([
    ['{"v":1,', 'body: not valid JSON', 'malformed_json'],
    ['{"v":1,"batch":[{"pid":"k","events":[{"event_id":"x","time":1}]}]}', 'batch[0].events[0].action: missing', 'shape'],
    ['{"v":1,"batch":[{"pid":"k","events":[{"action":"view","event_id":"x","time":"now"}]}]}', 'batch[0].events[0].time: not a number', 'shape'],
    [wireBody(['pii-1'], { alias: { email: 'ann@example.com' } }), 'body.batch[0].alias.email: raw email or phone number', 'pii'],
  ])('answers 400 naming the problem: %s', async (body, error, reason) => {
    const answer = await post(edge.url, body);
    expect(answer.status).toBe(400);
    expect(answer.headers.get('access-control-allow-origin')).toBe('*');
    expect((await answer.json()).error).toContain(error);
    expect(await storedIds(edge)).not.toContain('pii-1');
    expect(await (await fetch(`${edge.url}/metrics`)).text()).toMatch(new RegExp(`spdt_ingest_rejected_total\\{reason="${reason}"\\} [1-9]`));
  });

  it('takes a body of exactly 64 KiB and refuses 64 KiB + 1 with 413', async () => {
    const base = wireBody(['limit-1']);
    const exact = base + ' '.repeat(64 * 1024 - Buffer.byteLength(base));
    expect((await post(edge.url, exact)).status).toBe(204);
    const over = await post(edge.url, wireBody(['limit-2']) + ' '.repeat(64 * 1024 + 1 - Buffer.byteLength(wireBody(['limit-2']))));
    expect(over.status).toBe(413);
    expect(await over.json()).toEqual({ error: 'body: over 64 KiB' });
    const ids = await storedIds(edge);
    expect(ids).toContain('limit-1');
    expect(ids).not.toContain('limit-2');
  });

  it('refuses a chunked body past 64 KiB without a Content-Length', async () => {
    const chunks = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 70; i++) controller.enqueue(new TextEncoder().encode(' '.repeat(1024)));
        controller.close();
      },
    });
    const answer = await fetch(`${edge.url}/v1/ingest`, { method: 'POST', body: chunks, duplex: 'half' } as RequestInit);
    expect(answer.status).toBe(413);
  });

  it('answers CORS preflights', async () => {
    const answer = await fetch(`${edge.url}/v1/ingest`, {
      method: 'OPTIONS',
      headers: { origin: 'https://shop.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(answer.status).toBe(204);
    expect(answer.headers.get('access-control-allow-origin')).toBe('*');
    expect(answer.headers.get('access-control-allow-methods')).toContain('POST');
    expect(answer.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('content-type');
  });
});

describe('204 only after the commit', () => {
  it('holds the answer until insert() resolves, and the events are in the file when it comes', async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let real!: Store;
    let calls = 0;
    const gated: Store = new Proxy({} as Store, {
      get: (_t, name: keyof Store) =>
        name == 'insert'
          ? async (events: NewEvent[]): Promise<InsertResult> => {
              calls++;
              await gate;
              return real.insert(events);
            }
          : (real[name] as (...a: unknown[]) => unknown).bind(real),
    });
    const edge = await startEdge({}, { store: gated });
    real = openSqliteStore(edge.dataDir);
    try {
      let answered = false;
      const answer = post(edge.url, wireBody(['commit-1'])).then((a) => ((answered = true), a));
      await expect.poll(() => calls).toBe(1);
      // The request reached the store; give the server every chance to answer early.
      await new Promise((resolve) => setImmediate(resolve));
      expect(answered).toBe(false);
      open();
      expect((await answer).status).toBe(204);
      const reader = new Database(join(edge.dataDir, 'spdt.sqlite'), { readonly: true });
      expect(reader.prepare("SELECT count(*) AS n FROM events WHERE event_id = 'commit-1'").get()).toEqual({ n: 1 });
      reader.close();
    } finally {
      await edge.close();
      await real.close();
    }
  });
});

describe('when the store cannot be written', () => {
  it('answers 503 to ingest, still the GIF to images (counted as lost), and /healthz 503', async () => {
    const edge = await startEdge();
    try {
      expect((await fetch(`${edge.url}/healthz`)).status).toBe(200);
      await edge.collector.ctx.store.close(); // the store goes away under the running server
      const answer = await post(edge.url, wireBody(1));
      expect(answer.status).toBe(503);
      expect((await answer.json()).error).toMatch(/store/);
      const gif = await fetch(`${edge.url}/v1/img?key=k&a=view`);
      expect(gif.status).toBe(200);
      expect(gif.headers.get('content-type')).toBe('image/gif');
      const health = await fetch(`${edge.url}/healthz`);
      expect(health.status).toBe(503);
      expect(await health.json()).toEqual({ ok: false });
      const metrics = await (await fetch(`${edge.url}/metrics`)).text();
      expect(metrics).toMatch(/spdt_image_hits_lost_total 1/);
      expect(metrics).toMatch(/spdt_ingest_rejected_total\{reason="store_unavailable"\} 1/);
      expect(edge.logs.filter((l) => l.includes('store write failed'))).toHaveLength(1); // once, not per request
    } finally {
      await edge.close();
    }
  });
});

describe('GET /v1/img', () => {
  let edge: Edge;
  beforeAll(async () => {
    edge = await startEdge();
  });
  afterAll(() => edge.close());

  it.each(['', '?key=k', '?a=view', '?key=k&a=view&alias=%7B', '?key=k&a=view&t=%ZZ&url=%E0%A4%A', '?' + 'x'.repeat(7000), '?key[]=a&a[b]=c'])(
    'answers 200 and the GIF, not cached, for query #%#',
    async (query) => {
      const answer = await fetch(`${edge.url}/v1/img${query}`);
      expect(answer.status).toBe(200);
      expect(answer.headers.get('content-type')).toBe('image/gif');
      expect(answer.headers.get('cache-control')).toBe('no-store');
      const bytes = Buffer.from(await answer.arrayBuffer());
      expect(bytes.subarray(0, 6).toString()).toBe('GIF89a');
    },
  );

  it('records a noscript hit with the Referer as its url, and drops raw PII', async () => {
    await fetch(`${edge.url}/v1/img?key=ns-key&a=init&ns=1&email=ann%40example.com&note=bob%40example.org`, { headers: { referer: 'https://shop.example/landing' } });
    const [event] = await edge.collector.ctx.store.events({ key: 'ns-key', limit: 10 });
    expect(event).toMatchObject({ action: 'view', transport: 'noscript', body: { url: 'https://shop.example/landing' } });
    expect(JSON.stringify(event)).not.toMatch(/ann|bob/);
  });
});

describe('client IP, scheme and the device cookie', () => {
  let edge: Edge;
  beforeAll(async () => {
    // A connection (never contacted: the relay is off here) keeps each event's full IP while its delivery is pending.
    edge = await startEdge({ SPDT_TRUST_PROXY: '1', SPDT_COOKIE_DOMAIN: 'example.com', SPDT_COOKIE_DAYS: '30', SPDT_SPOTIFY_CONNECTION_ID: 'c1', SPDT_SPOTIFY_TOKEN: 'tok-1' });
  });
  afterAll(() => edge.close());

  it('stores the left-most X-Forwarded-For entry and re-sets __spdt, Secure behind https', async () => {
    const answer = await post(edge.url, wireBody(['ip-1']), { 'x-forwarded-for': '203.0.113.7, 10.0.0.1', 'x-forwarded-proto': 'https', origin: 'https://shop.example.com' });
    expect(answer.status).toBe(204);
    expect(answer.headers.get('set-cookie')).toBe(`__spdt=${UID}; Domain=example.com; Path=/; Max-Age=2592000; SameSite=Lax; Secure`);
    const [event] = await edge.collector.ctx.store.events({ limit: 1 });
    expect(event.event_id).toBe('ip-1');
    expect(event.ip).toBe('203.0.113.7');
    expect(event.deliveries).toEqual([expect.objectContaining({ connection_id: 'c1', state: 'pending' })]);
  });

  it('sets it on images too, by the Referer, without Secure over http', async () => {
    const answer = await fetch(`${edge.url}/v1/img?key=k&a=view&uid=${UID}`, { headers: { referer: 'http://www.example.com/p' } });
    expect(answer.headers.get('set-cookie')).toBe(`__spdt=${UID}; Domain=example.com; Path=/; Max-Age=2592000; SameSite=Lax`);
  });

  it('never for another site or a bad uid', async () => {
    expect((await post(edge.url, wireBody(1), { origin: 'https://example.com.evil.net' })).headers.get('set-cookie')).toBeNull();
    expect((await post(edge.url, wireBody(1, { uid: 'not-a-uid' }), { origin: 'https://example.com' })).headers.get('set-cookie')).toBeNull();
  });

  it('ignores X-Forwarded-For without SPDT_TRUST_PROXY', async () => {
    const plain = await startEdge();
    try {
      await post(plain.url, wireBody(['ip-2']), { 'x-forwarded-for': '203.0.113.9' });
      const [event] = await plain.collector.ctx.store.events({ limit: 1 });
      expect(event.ip).not.toBe('203.0.113.9');
      expect((await post(plain.url, wireBody(1), { origin: 'https://example.com' })).headers.get('set-cookie')).toBeNull();
    } finally {
      await plain.close();
    }
  });
});

describe('GET /ping.min.js and /healthz', () => {
  let edge: Edge;
  beforeAll(async () => {
    edge = await startEdge();
  });
  afterAll(() => edge.close());

  it('serves the built tag with caching headers, an ETag and 304', async () => {
    const answer = await fetch(`${edge.url}/ping.min.js`);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toMatch(/javascript/);
    expect(answer.headers.get('cache-control')).toMatch(/max-age=\d+/);
    const etag = answer.headers.get('etag')!;
    expect(etag).toMatch(/^"[\w-]+"$/);
    const { readFileSync } = await import('node:fs');
    const { createRequire } = await import('node:module');
    expect(await answer.text()).toBe(readFileSync(createRequire(import.meta.url).resolve('spdt-pixel/ping.min.js'), 'utf8'));
    expect((await fetch(`${edge.url}/ping.min.js`, { headers: { 'if-none-match': etag } })).status).toBe(304);
  });

  it('answers /healthz {"ok":true}', async () => {
    const answer = await fetch(`${edge.url}/healthz`);
    expect(answer.status).toBe(200);
    expect(await answer.json()).toEqual({ ok: true });
  });

  it('answers an unknown path 404 without echoing its URL (which may carry ?token=)', async () => {
    const answer = await fetch(`${edge.url}/api/nope?token=SECRET-TOKEN-123`);
    expect(answer.status).toBe(404);
    const text = await answer.text();
    expect(text).not.toContain('SECRET-TOKEN-123');
    expect(JSON.parse(text)).toEqual({ error: 'not found' });
  });
});

describe('SPDT_ROLE=relay', () => {
  it('answers only /healthz and /metrics', async () => {
    const edge = await startEdge({ SPDT_ROLE: 'relay' });
    try {
      expect((await fetch(`${edge.url}/healthz`)).status).toBe(200);
      expect((await fetch(`${edge.url}/metrics`)).status).toBe(200);
      expect((await post(edge.url, wireBody(1))).status).toBe(404);
      expect((await fetch(`${edge.url}/v1/img?key=k&a=view`)).status).toBe(404);
      expect((await fetch(`${edge.url}/ping.min.js`)).status).toBe(404);
      expect((await fetch(`${edge.url}/api/events`)).status).toBe(404);
    } finally {
      await edge.close();
    }
  });
});

describe('slow clients', () => {
  it('closes a connection whose headers never finish', async () => {
    const edge = await startEdge({}, { limits: { headersTimeoutMs: 300, requestTimeoutMs: 300, checkIntervalMs: 50 } });
    try {
      const port = Number(new URL(edge.url).port);
      const socket = connect(port, '127.0.0.1');
      socket.on('error', () => undefined);
      socket.write('POST /v1/ingest HTTP/1.1\r\nHost: x\r\n'); // and nothing more
      const answer: string[] = [];
      socket.on('data', (d) => answer.push(String(d)));
      await new Promise((resolve) => socket.once('close', resolve));
      expect(answer.join('')).toMatch(/^HTTP\/1\.1 408|^$/);
      expect((await fetch(`${edge.url}/healthz`)).status).toBe(200);
    } finally {
      await edge.close();
    }
  });

  it('uses the configured server limits', async () => {
    const edge = await startEdge({}, { limits: { maxConnections: 123 } });
    try {
      const server = edge.collector.app.server;
      expect(server.maxConnections).toBe(123);
      expect(server.headersTimeout).toBe(10_000);
      expect(server.requestTimeout).toBe(15_000);
      expect(server.keepAliveTimeout).toBe(5_000);
      expect(server.maxRequestsPerSocket).toBe(10_000);
    } finally {
      await edge.close();
    }
  });
});

describe('embedding', () => {
  it('serves routes a caller adds to app before listen(), next to its own', async () => {
    const { createCollector, loadConfig } = await import('../src/index.js');
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'spdt-embed-'));
    const collector = await createCollector(loadConfig({ PORT: '0', SPDT_DATA_DIR: dir }), { relay: false });
    collector.app.get('/shop', async (_request, reply) => reply.type('text/html').send('<h1>shop</h1>'));
    try {
      const { url } = await collector.listen();
      expect(await (await fetch(`${url}/shop`)).text()).toBe('<h1>shop</h1>');
      expect((await post(url, wireBody(1))).status).toBe(204);
    } finally {
      await collector.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
