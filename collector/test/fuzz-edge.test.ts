/**
 * The public HTTP edge under thousands of random and garbage bodies and query strings (seeded, so a
 * failure replays): every answer is a 2xx or 4xx (503 only when the store is down, which it is not
 * here), no raw email is stored, and the process is healthy after.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { post, startEdge, wireBody, type Edge } from './support/edge.js';

/** mulberry32: a small seeded PRNG. */
function prng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = Number(process.env.FUZZ_SEED ?? 20261201);
const rand = prng(SEED);
const int = (n: number) => Math.floor(rand() * n);
const pick = <T>(list: T[]): T => list[int(list.length)];

const ATOMS: unknown[] = [
  null, true, false, 0, -1, 1e308, -0, 79.99, '79.99', '', ' ', 'usd', '£', 'ann@example.com', 'ann%40example.com', '\u0000', '\ud800',
  '__proto__', 'x'.repeat(300), [], {}, [1, 2], { email: 'x' }, { phone_number: '1' }, { __proto__: { polluted: 1 } }, 'a'.repeat(64),
];
const KEYS = ['v', 'batch', 'pid', 'uid', 'sid', 'cid', 'alias', 'opt_out_targeting', 'events', 'action', 'event_id', 'time', 'body', 'url', 'referrer',
  'value', 'currency', 'quantity', 'line_items', 'hashed_email', 'trunc', 'event_name', 'constructor', '__proto__', 'prototype', 'free_1', 'bad name', 'email'];

function value(depth: number): unknown {
  if (depth > 3 || rand() < 0.4) return pick(ATOMS);
  if (rand() < 0.3) return Array.from({ length: int(4) }, () => value(depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = int(6); i > 0; i--) o[pick(KEYS)] = value(depth + 1);
  return o;
}

/** A valid body with one field mutated, a random structure, or bytes. */
function garbageBody(): string | Buffer {
  const kind = int(6);
  if (kind == 0) return Buffer.from(Array.from({ length: int(2000) }, () => int(256)));
  if (kind == 1) return JSON.stringify(value(0));
  if (kind == 2) {
    const text = wireBody(1 + int(5));
    const at = int(text.length);
    return text.slice(0, at) + pick(['"', '{', ']', ',', '\\', '\u0000', '', 'null', '1e999']) + text.slice(at + int(3));
  }
  const json = JSON.parse(wireBody(1 + int(3)));
  const item = json.batch[0];
  const target = pick([json, item, item.events[0], item.events[0].body]);
  target[pick(KEYS)] = value(1);
  if (rand() < 0.2) item.alias = value(1);
  return JSON.stringify(json);
}

/** encodeURIComponent, or a lone surrogate's raw bytes when it refuses (as a hostile client may send). */
function enc(text: string): string {
  try {
    return encodeURIComponent(text);
  } catch {
    return '%ED%A0%80';
  }
}

function garbageQuery(): string {
  const parts: string[] = [];
  for (let i = int(12); i > 0; i--) {
    const k = pick(['key', 'a', 'eid', 't', 'uid', 'url', 'ref', 'alias', 'line_items', 'ns', 'trunc', 'email', 'value', 'currency', '__proto__', 'x%zz', '%', 'k[]', '']);
    const v = pick([enc(String(pick(ATOMS))), enc(JSON.stringify(value(1))), '%E0%A4%A', '%', 'init', 'view', 'purchase', '1', '']);
    parts.push(`${k}=${v}`);
  }
  return parts.join(pick(['&', '&&', ';']));
}

/** A raw request (fetch refuses some of what a hostile client sends: any content type, bad lengths). */
function send(port: number, method: string, path: string, headers: Record<string, string>, body?: string | Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    // An explicit length: Node's client frames an OPTIONS body with neither length nor chunks.
    if (body !== undefined) headers = { ...headers, 'content-length': String(Buffer.byteLength(body)) };
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end(body);
  });
}

let edge: Edge;
beforeAll(async () => {
  edge = await startEdge();
});
afterAll(() => edge.close());

it(`answers thousands of garbage requests with 2xx/4xx only and stays healthy (seed ${SEED})`, async () => {
  const port = Number(new URL(edge.url).port);
  const statuses = new Map<number, number>();
  const N = 3000;
  let next = 0;
  const worker = async () => {
    while (next < N) {
      const i = next++;
      let status: number;
      if (i % 3 == 2) {
        status = await send(port, 'GET', `/v1/img?${garbageQuery()}`, {});
        expect(status, `image #${i}`).toBe(200);
      } else {
        const headers: Record<string, string> = { 'content-type': pick(['text/plain;charset=UTF-8', 'application/json', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'text/plain; charset=utf-16', '*/*', '']) };
        if (!headers['content-type']) delete headers['content-type'];
        status = await send(port, pick(['POST', 'POST', 'POST', 'PUT', 'OPTIONS']), pick(['/v1/ingest', '/v1/ingest', '/v1/ingest?x=1', '/v1/ingest/']), headers, garbageBody());
      }
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      expect(status >= 200 && status < 500, `request #${i}: ${status}`).toBe(true);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  expect([...statuses.keys()].every((s) => s < 500)).toBe(true);
  expect(statuses.get(400)).toBeGreaterThan(100); // the garbage really was refused…
  expect(statuses.get(204)).toBeGreaterThan(100); // …and the mutated-but-valid bodies really were stored

  expect((await fetch(`${edge.url}/healthz`)).status).toBe(200);
  expect((await post(edge.url, wireBody(['after-fuzz']))).status).toBe(204);
  const events = await edge.collector.ctx.store.events({ limit: 100_000 });
  expect(events.map((e) => e.event_id)).toContain('after-fuzz');
  const leaks = events.filter((e) => /ann@example\.com|ann%40example\.com/.test(JSON.stringify(e)));
  expect(leaks, JSON.stringify(leaks.slice(0, 3))).toEqual([]);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(edge.logs.filter((l) => l.includes('"level":"error"'))).toEqual([]);
}, 120_000);
