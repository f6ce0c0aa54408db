// @vitest-environment node
// Tests for the reference collector (examples/collector/server.mjs): the real server on a free
// port, a temporary data directory and a temporary static root, spoken to over HTTP.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../examples/collector/server.mjs';

const UID = 'e80cb68aa08941c5937911daee4144ea';
const SID = '0f6c9a3d2b1e4c5f8a7b6c5d4e3f2a1b';
const HASH = 'a'.repeat(64);
const PING = '/* fake ping.min.js */ window.spdtTest = 1;\n';
const SECRET = '{ "name": "secret-root-file" }\n';

type Json = Record<string, unknown>;
type Stored = Json & { key: string; action: string; event_id: string; body: Json };

let server: RunningServer;
let dataDir: string;
let root: string;
const tempDirs: string[] = [];

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spdt-collector-'));
  tempDirs.push(dir);
  return dir;
}

beforeEach(async () => {
  dataDir = tempDir();
  root = tempDir();
  fs.mkdirSync(path.join(root, 'dist'));
  fs.writeFileSync(path.join(root, 'dist', 'ping.min.js'), PING);
  fs.mkdirSync(path.join(root, 'examples', 'shop'), { recursive: true });
  fs.writeFileSync(path.join(root, 'examples', 'shop', 'index.html'), '<!doctype html><title>shop</title>');
  fs.writeFileSync(path.join(root, 'package.json'), SECRET); // must never be served
  server = await startServer({ port: 0, dataDir, root });
});

afterEach(async () => {
  await server.close();
  for (const dir of tempDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function event(overrides: Json = {}): Json {
  return {
    action: 'purchase',
    event_id: 'evt-1',
    time: 1763776000100,
    body: { url: 'https://shop.example/thanks', value: 79.99, currency: 'USD', order_id: 'SP-1' },
    ...overrides,
  };
}

function batch(itemOverrides: Json = {}, events: Json[] = [event()]): Json {
  return {
    v: 1,
    sent_at: 1763776000123,
    batch: [{ pid: 'key-a', uid: UID, sid: SID, events, ...itemOverrides }],
  };
}

/** Sends like navigator.sendBeacon does: a string body, text/plain. */
function ingest(body: unknown): Promise<Response> {
  return fetch(`${server.url}v1/ingest`, {
    method: 'POST',
    headers: { 'Content-Type': 'text/plain;charset=UTF-8' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function stored(query = ''): Promise<Stored[]> {
  const res = await fetch(`${server.url}api/events${query}`);
  expect(res.status).toBe(200);
  return res.json();
}

function fileLines(): Json[] {
  const file = path.join(dataDir, 'events.jsonl');
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line));
}

/** A GET that sends the path exactly as written (fetch would normalise "..").*/
function rawGet(p: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: server.port, path: p, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

async function expectGif(res: Response): Promise<void> {
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('image/gif');
  expect(res.headers.get('cache-control')).toBe('no-store');
  const bytes = new Uint8Array(await res.arrayBuffer());
  expect(new TextDecoder().decode(bytes.subarray(0, 6))).toBe('GIF89a');
  expect([...bytes.subarray(6, 10)]).toEqual([1, 0, 1, 0]); // 1x1
}

describe('POST /v1/ingest', () => {
  it('answers 204 with CORS and stores every event of the batch', async () => {
    const body = batch({ cid: 'click-1', alias: { hashed_email: HASH, id: 'u-42' }, opt_out_targeting: true }, [
      event(),
      event({ action: 'view', event_id: 'evt-2', body: { url: 'https://shop.example/' } }),
    ]);
    const res = await ingest(body);
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');

    const events = await stored();
    expect(events).toHaveLength(2);
    expect(events[0]).toMatchObject({
      key: 'key-a',
      action: 'purchase',
      event_id: 'evt-1',
      time: 1763776000100,
      uid: UID,
      sid: SID,
      cid: 'click-1',
      alias: { hashed_email: HASH, id: 'u-42' },
      opt_out_targeting: true,
      transport: 'beacon',
      ns: false,
      body: { url: 'https://shop.example/thanks', value: 79.99, currency: 'USD', order_id: 'SP-1' },
    });
    expect(typeof events[0].received_at).toBe('number');
    expect(events[1]).toMatchObject({ action: 'view', event_id: 'evt-2' });
    expect(fileLines().map((e) => e.event_id)).toEqual(['evt-1', 'evt-2']);
  });

  it('stores absent optional fields as null / false', async () => {
    const res = await ingest({ v: 1, sent_at: 1, batch: [{ pid: 'k', events: [event()] }] });
    expect(res.status).toBe(204);
    const [e] = await stored();
    expect(e).toMatchObject({ uid: null, sid: null, cid: null, alias: null, opt_out_targeting: false });
  });

  it('answers a CORS preflight with 204 and permissive headers', async () => {
    const res = await fetch(`${server.url}v1/ingest`, {
      method: 'OPTIONS',
      headers: { Origin: 'https://shop.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
    expect(res.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('content-type');
  });

  it('answers 400 with a JSON reason for malformed JSON', async () => {
    const res = await ingest('{"v":1,"batch":[');
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    const { error } = await res.json();
    expect(error).toMatch(/malformed JSON/);
    expect(await stored()).toEqual([]);
  });

  const long = 'x'.repeat(129);
  it.each([
    ['a non-object body', [1, 2], /JSON object/],
    ['v other than 1', { ...batch(), v: 2 }, /\bv must be 1/],
    ['sent_at missing', { ...batch(), sent_at: undefined }, /sent_at/],
    ['an empty batch', { ...batch(), batch: [] }, /batch must be a non-empty array/],
    ['an empty pid', batch({ pid: '' }), /batch\[0\]\.pid/],
    ['an upper-case uid', batch({ uid: UID.toUpperCase() }), /batch\[0\]\.uid/],
    ['a short sid', batch({ sid: 'abc' }), /batch\[0\]\.sid/],
    ['a numeric cid', batch({ cid: 42 }), /batch\[0\]\.cid/],
    ['an alias that is not an object', batch({ alias: 'me' }), /batch\[0\]\.alias must be an object/],
    ['a hashed_email that is not a hash', batch({ alias: { hashed_email: 'abc' } }), /alias\.hashed_email/],
    ['opt_out_targeting false', batch({ opt_out_targeting: false }), /opt_out_targeting/],
    ['no events', batch({}, []), /batch\[0\]\.events must be a non-empty array/],
    ['a numeric action', batch({}, [event({ action: 7 })]), /events\[0\]\.action/],
    ['an event_id over 128 chars', batch({}, [event(), event({ event_id: long })]), /events\[1\]\.event_id/],
    ['a string time', batch({}, [event({ time: '1763776000100' })]), /events\[0\]\.time/],
    ['an array body', batch({}, [event({ body: [] })]), /events\[0\]\.body must be an object/],
    [
      'a body hashed_phone_number that is not a hash',
      batch({}, [event({ action: 'alias', body: { hashed_phone_number: '+15551234567' } })]),
      /body\.hashed_phone_number/,
    ],
  ])('answers 400 naming the problem for %s', async (_name, body, reason) => {
    const res = await ingest(body);
    expect(res.status).toBe(400);
    const { error } = await res.json();
    expect(error).toMatch(reason);
    expect(await stored()).toEqual([]);
  });

  it.each([
    ['an event body', batch({}, [event({ body: { email: 'jane@example.com' } })])],
    ['the alias', batch({ alias: { phone_number: '+15551234567' } })],
    ['a line item', batch({}, [event({ body: { line_items: [{ product_id: 'p', email: 'jane@example.com' }] } })])],
  ])('rejects raw PII in %s with 400 and stores nothing', async (_name, body) => {
    const res = await ingest(body);
    expect(res.status).toBe(400);
    expect((await res.json()).error).toMatch(/^raw PII/);
    expect(await stored()).toEqual([]);
    expect(fileLines()).toEqual([]);
  });

  it('accepts a body of exactly 64 KiB', async () => {
    const json = JSON.stringify(batch({}, [event({ body: { pad: 'x'.repeat(65000) } })]));
    const body = json + ' '.repeat(65536 - Buffer.byteLength(json)); // JSON allows trailing spaces
    expect(Buffer.byteLength(body)).toBe(65536);
    expect((await ingest(body)).status).toBe(204);
    expect(await stored()).toHaveLength(1);
  });

  it('answers 413 for a 70 KB body', async () => {
    const res = await ingest(batch({}, [event({ body: { pad: 'x'.repeat(70_000) } })]));
    expect(res.status).toBe(413);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(await stored()).toEqual([]);
  });

  it('answers 413 for an oversized chunked body without Content-Length', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: server.port, path: '/v1/ingest', method: 'POST', agent: false },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.write('{"pad":"');
      req.write('x'.repeat(40_000));
      req.write('x'.repeat(40_000)); // now over the limit
      req.end('"}');
    });
    expect(status).toBe(413);
    expect(await stored()).toEqual([]);
  });
});

describe('GET /v1/img', () => {
  it('answers a GIF and records an image-fallback event with its props', async () => {
    const q = new URLSearchParams({
      key: 'key-img',
      a: 'purchase',
      eid: 'img-1',
      t: '1763776000100',
      uid: UID,
      sid: SID,
      cid: 'click-9',
      url: 'https://shop.example/thanks',
      ref: 'https://shop.example/cart',
      alias: JSON.stringify({ hashed_email: HASH, email: 'jane@example.com' }),
      opt_out_targeting: '1',
      value: '79.99',
      quantity: '2',
      currency: 'USD',
      line_items: JSON.stringify([{ product_id: 'p1', quantity: 2 }]),
      email: 'jane@example.com',
      phone_number: '5551234567',
      trunc: '1',
      color: 'red',
    });
    await expectGif(await fetch(`${server.url}v1/img?${q}`));

    const [e, ...rest] = await stored();
    expect(rest).toEqual([]);
    expect(e).toMatchObject({
      key: 'key-img',
      action: 'purchase',
      event_id: 'img-1',
      time: 1763776000100,
      uid: UID,
      sid: SID,
      cid: 'click-9',
      alias: { hashed_email: HASH },
      opt_out_targeting: true,
      transport: 'image',
      ns: false,
    });
    expect(e.body).toEqual({
      url: 'https://shop.example/thanks',
      referrer: 'https://shop.example/cart',
      value: 79.99,
      quantity: 2,
      currency: 'USD',
      line_items: [{ product_id: 'p1', quantity: 2 }],
      trunc: 1,
      color: 'red',
    });
    const file = fs.readFileSync(path.join(dataDir, 'events.jsonl'), 'utf8');
    expect(file).not.toContain('jane@example.com');
    expect(file).not.toContain('5551234567');
  });

  it('records the noscript hit as a view with ns and a generated event_id', async () => {
    await expectGif(await fetch(`${server.url}v1/img?key=key-ns&a=view&ns=1`));
    await expectGif(await fetch(`${server.url}v1/img?key=key-ns&a=view&ns=1`));
    const events = await stored();
    expect(events).toHaveLength(2); // two page loads, two views: ids are generated per hit
    for (const e of events) {
      expect(e).toMatchObject({ key: 'key-ns', action: 'view', transport: 'image', ns: true });
      expect(e.event_id).toMatch(/\S/);
    }
    expect(events[0].event_id).not.toBe(events[1].event_id);
  });

  it('records a=init as view', async () => {
    await expectGif(await fetch(`${server.url}v1/img?key=key-init&a=init&eid=init-1`));
    const events = await stored();
    expect(events.map((e) => [e.action, e.event_id])).toEqual([['view', 'init-1']]);
  });

  it.each(['', '?key=only-key', '?a=view', '?key=&a=view', '?key=k&a=view&t=soon&alias=%7Bbroken&uid=nope'])(
    'always answers a GIF, even for %j',
    async (query) => {
      await expectGif(await fetch(`${server.url}v1/img${query}`));
    },
  );

  it('records nothing without key or a, and survives bad optional params', async () => {
    for (const q of ['', '?key=only-key', '?a=view']) await fetch(`${server.url}v1/img${q}`);
    expect(await stored()).toEqual([]);
    await fetch(`${server.url}v1/img?key=k&a=view&t=soon&alias=%7Bbroken&uid=nope`);
    const [e] = await stored();
    expect(e).toMatchObject({ key: 'k', action: 'view', uid: null, alias: null });
    expect(typeof e.time).toBe('number');
  });
});

describe('storage', () => {
  it('stores an event once per (key, event_id)', async () => {
    expect((await ingest(batch())).status).toBe(204);
    expect((await ingest(batch())).status).toBe(204); // a duplicate is still acknowledged
    expect(await stored()).toHaveLength(1);

    expect((await ingest(batch({ pid: 'key-b' }))).status).toBe(204);
    await fetch(`${server.url}v1/img?key=key-b&a=purchase&eid=evt-1`); // same id, other transport
    const events = await stored();
    expect(events.map((e) => [e.key, e.event_id])).toEqual([
      ['key-a', 'evt-1'],
      ['key-b', 'evt-1'],
    ]);
    expect(fileLines()).toHaveLength(2);
  });

  it('drops a duplicate inside one batch', async () => {
    await ingest(batch({}, [event(), event({ action: 'view' })]));
    const events = await stored();
    expect(events).toHaveLength(1);
    expect(events[0].action).toBe('purchase'); // the first one wins
  });

  it('keeps events and the dedup index across a restart', async () => {
    await ingest(batch());
    await fetch(`${server.url}v1/img?key=key-img&a=view&eid=img-1`);
    await server.close();

    server = await startServer({ port: 0, dataDir, root });
    const before = await stored();
    expect(before.map((e) => [e.key, e.event_id, e.transport])).toEqual([
      ['key-a', 'evt-1', 'beacon'],
      ['key-img', 'img-1', 'image'],
    ]);

    expect((await ingest(batch())).status).toBe(204); // re-sent after the restart
    await ingest(batch({}, [event({ event_id: 'evt-new' })]));
    expect((await stored()).map((e) => e.event_id)).toEqual(['evt-1', 'img-1', 'evt-new']);
    expect(fileLines()).toHaveLength(3);
  });

  it('tolerates a truncated last line left by a crash', async () => {
    await ingest(batch());
    await server.close();
    const file = path.join(dataDir, 'events.jsonl');
    fs.appendFileSync(file, '{"key":"key-a","action":"view","event_id":"half');

    server = await startServer({ port: 0, dataDir, root });
    expect((await stored()).map((e) => e.event_id)).toEqual(['evt-1']);
    await ingest(batch({}, [event({ event_id: 'evt-after' })]));
    expect(fileLines().map((e) => e.event_id)).toEqual(['evt-1', 'evt-after']); // every line parses
  });

  it('filters /api/events by key, oldest first', async () => {
    await ingest(batch({}, [event({ event_id: 'a1' })]));
    await ingest(batch({ pid: 'key-b' }, [event({ event_id: 'b1' })]));
    await ingest(batch({}, [event({ event_id: 'a2' })]));
    expect((await stored()).map((e) => e.event_id)).toEqual(['a1', 'b1', 'a2']);
    expect((await stored('?key=key-a')).map((e) => e.event_id)).toEqual(['a1', 'a2']);
    expect((await stored('?key=key-b')).map((e) => e.event_id)).toEqual(['b1']);
    expect(await stored('?key=nobody')).toEqual([]);
  });

  it('clears the store with DELETE /api/events, also across a restart', async () => {
    await ingest(batch());
    const res = await fetch(`${server.url}api/events`, { method: 'DELETE' });
    expect(res.status).toBe(204);
    expect(await stored()).toEqual([]);
    expect(fileLines()).toEqual([]);

    expect((await ingest(batch())).status).toBe(204); // the index was cleared too
    expect(await stored()).toHaveLength(1);
    await server.close();
    server = await startServer({ port: 0, dataDir, root });
    expect(await stored()).toHaveLength(1);
  });
});

describe('GET /api/stream', () => {
  /** Reads server-sent events: each call returns the next `data:` payload, skipping comments. */
  function sse(body: ReadableStream<Uint8Array>): () => Promise<Json> {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    return async function nextData() {
      for (;;) {
        const end = buffer.indexOf('\n\n');
        if (end !== -1) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = frame.split('\n').find((line) => line.startsWith('data: '));
          if (data) return JSON.parse(data.slice('data: '.length));
          continue;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended; unread: ${JSON.stringify(buffer)}`);
        buffer += decoder.decode(value, { stream: true });
      }
    };
  }

  it('delivers each newly stored event as a data frame', async () => {
    const abort = new AbortController();
    try {
      const res = await fetch(`${server.url}api/stream`, { signal: abort.signal });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const nextData = sse(res.body!);

      await ingest(batch({}, [event({ event_id: 'live-1' })]));
      expect(await nextData()).toMatchObject({ key: 'key-a', event_id: 'live-1', transport: 'beacon' });

      // A duplicate is not stored, so it is not streamed: the next frame is the image event.
      await ingest(batch({}, [event({ event_id: 'live-1' })]));
      await fetch(`${server.url}v1/img?key=key-a&a=view&eid=live-2`);
      expect(await nextData()).toMatchObject({ key: 'key-a', event_id: 'live-2', transport: 'image' });
    } finally {
      abort.abort();
    }
  });

  it('ends open streams when the server closes', async () => {
    const other = await startServer({ port: 0, dataDir: tempDir(), root });
    const res = await fetch(`${other.url}api/stream`);
    const reader = res.body!.getReader();
    await other.close();
    let done = false;
    while (!done) ({ done } = await reader.read()); // hangs (test timeout) if the stream stays open
    expect(done).toBe(true);
  });
});

describe('static files and the live page', () => {
  it('serves dist/ping.min.js at /dist/ and at /ping.min.js', async () => {
    for (const p of ['dist/ping.min.js', 'ping.min.js']) {
      const res = await fetch(server.url + p);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
      expect(res.headers.get('cache-control')).toBe('no-cache');
      expect(await res.text()).toBe(PING);
    }
  });

  it('serves /examples/ files with their content type', async () => {
    const res = await fetch(`${server.url}examples/shop/index.html`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    expect(await res.text()).toContain('<title>shop</title>');
  });

  it('serves the live page and its script under a strict CSP', async () => {
    const page = await fetch(`${server.url}live`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    const html = await page.text();
    expect(html).toContain('<script src="/live.js"');
    expect(html).not.toMatch(/<script>|\son[a-z]+=/i); // no inline script, no inline handlers

    const script = await fetch(`${server.url}live.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(await script.text()).toContain("new EventSource('/api/stream')");
  });

  it('answers 404 for unknown paths and missing files', async () => {
    for (const p of ['nope', 'dist/missing.js', 'examples/shop/missing.html', 'api/nothing']) {
      expect((await fetch(server.url + p)).status).toBe(404);
    }
  });

  it.each(['/examples/../package.json', '/examples/%2e%2e/package.json', '/dist/..%2fpackage.json', '/dist/..%5cpackage.json'])(
    'refuses directory traversal: %s',
    async (p) => {
      const { status, body } = await rawGet(p);
      expect([400, 404]).toContain(status);
      expect(body).not.toContain('secret-root-file');
    },
  );
});
