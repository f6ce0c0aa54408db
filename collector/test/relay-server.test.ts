/**
 * The relay inside the real collector (createCollector, SQLite, SPDT_CONFIG with two connections):
 * what the tag sends reaches the stand-in as SPEC §9 maps it; a dead delivery shows in the admin API
 * and comes back with a replay; a refused token shows in /metrics and the deliveries; the token is
 * never in an answer, a log line or the database.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { createCollector, type Collector } from '../src/server.js';
import { startStandin, type Standin } from './support/spotify-standin.js';

const UID = 'e80cb68aa08941c5937911daee4144ea';
const EMAIL = 'a'.repeat(64);
const ADMIN = 'admin-token-for-relay-test';
const SERVER = 'server-token-for-relay-test';
const REVOKED = 'revoked-token-of-conn-bad';

let dir: string;
let standin: Standin;
let collector: Collector;
let url: string;
const logs: string[] = [];
const answers: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'spdt-relay-server-'));
  standin = await startStandin({ connectionId: 'conn-good' });
  const configFile = join(dir, 'spdt.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      spotify: [
        { connection_id: 'conn-good', token: standin.token, url: standin.url, custom: { quiz_done: 'CUSTOM_EVENT_4' } },
        { connection_id: 'conn-bad', token: REVOKED, url: standin.url, keys: ['key-2'] },
      ],
    }),
  );
  const config = loadConfig({ PORT: '0', SPDT_DATA_DIR: dir, SPDT_CONFIG: configFile, SPDT_ADMIN_TOKEN: ADMIN, SPDT_SERVER_TOKEN: SERVER, SPDT_RELAY_RETRY_MS: '20' });
  // No secrets handed to the logger: the relay itself must never log a token, not the logger's safety net.
  collector = await createCollector(config, { log: createLogger({ write: (line) => logs.push(line) }) });
  ({ url } = await collector.listen());
});

afterAll(async () => {
  await collector?.close();
  await standin?.close();
  rmSync(dir, { recursive: true, force: true });
});

const admin = async (path: string, init: RequestInit = {}) => {
  const res = await fetch(url + path, { ...init, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json', ...init.headers } });
  const text = await res.text();
  answers.push(text);
  return { status: res.status, text, json: () => JSON.parse(text) };
};
const events = async () => (await admin('/api/events?limit=1000')).json() as Promise<any[]>;
const deliveryOf = async (eventId: string, connection = 'conn-good') =>
  (await events()).find((e) => e.event_id == eventId)?.deliveries.find((d: any) => d.connection_id == connection);

function wire(pid: string, evs: { action: string; event_id: string; body?: Record<string, unknown> }[], item: Record<string, unknown> = {}) {
  return JSON.stringify({
    v: 1,
    sent_at: Date.now(),
    batch: [{ pid, uid: UID, sid: '0f6c9a3d2b1e4c5f8a7b6c5d4e3f2a1b', ...item, events: evs.map((e) => ({ time: Date.now() - 100, body: { url: 'https://shop.example/p' }, ...e })) }],
  });
}
const ingest = (body: string) => fetch(`${url}/v1/ingest`, { method: 'POST', body, headers: { 'content-type': 'text/plain;charset=UTF-8' } });

it('what the tag sends reaches Spotify as SPEC §9 maps it, each relayable event once', async () => {
  const body = wire(
    'key-1',
    [
      { action: 'purchase', event_id: 'srv-p1', body: { url: 'https://shop.example/thanks', value: 79.99, currency: 'USD', product_name: 'Listener Tee', order_id: 'SP-1' } },
      { action: 'view', event_id: 'srv-v1' },
      { action: 'custom', event_id: 'srv-c1', body: { url: 'https://shop.example/quiz', event_name: 'quiz_done' } },
      { action: 'custom', event_id: 'srv-c2', body: { url: 'https://shop.example/quiz', event_name: 'unmapped' } },
    ],
    { alias: { hashed_email: EMAIL, id: 'u-42' }, opt_out_targeting: true },
  );
  expect((await ingest(body)).status).toBe(204);
  expect((await ingest(body)).status).toBe(204); // a duplicate: stored and relayed no second time
  const conversion = await fetch(`${url}/api/v1/conversion`, {
    method: 'POST',
    headers: { authorization: `Bearer ${SERVER}`, 'content-type': 'application/json' },
    body: JSON.stringify({ pixel_id: 'key-1', event_name: 'lead', event_id: 'srv-l1', action_source: 'OFFLINE', user_data: { em: 'Ann@Example.com', client_ip_address: '198.51.100.20' }, custom_data: { value: 10, currency: 'eur' } }),
  });
  expect(conversion.status).toBe(200);

  await standin.waitFor((s) => s.accepted.length >= 4);
  await vi.waitFor(async () => expect((await deliveryOf('srv-l1'))?.state).toBe('delivered'), { timeout: 10_000 });
  expect(standin.acceptedIds().sort()).toEqual(['srv-c1', 'srv-l1', 'srv-p1', 'srv-v1']);
  const got = (id: string) => standin.accepted.find((e) => e.event_id == id);
  expect(got('srv-p1')).toEqual({
    event_name: 'PURCHASE',
    event_id: 'srv-p1',
    event_time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    user_data: { ip_address: expect.stringMatching(/^(127\.0\.0\.1|::1)$/), device_id: UID, hashed_emails: [EMAIL] },
    event_details: { amount: 79.99, currency: 'USD', content_name: 'Listener Tee' },
    event_source_url: 'https://shop.example/thanks',
    action_source: 'WEB',
    opt_out_targeting: true,
  });
  expect(got('srv-c1')?.event_name).toBe('CUSTOM_EVENT_4');
  expect(got('srv-l1')).toMatchObject({ event_name: 'LEAD', action_source: 'OFFLINE', user_data: { ip_address: '198.51.100.20', hashed_emails: [expect.stringMatching(/^[0-9a-f]{64}$/)] }, event_details: { amount: 10, currency: 'EUR' } });
  expect(await deliveryOf('srv-c2')).toMatchObject({ state: 'skipped', last_error: expect.stringContaining('"unmapped"') });
  // key-1 is not on conn-bad's keys: nothing planned there.
  expect((await events()).find((e) => e.event_id == 'srv-p1').deliveries).toHaveLength(1);
});

it('a dead delivery shows in /api/deliveries?state=dead with status and answer, and a replay delivers it', async () => {
  standin.refuseEvent('srv-bad', '{"error":"event refused by test","sp_trace_id":"t-1"}');
  expect((await ingest(wire('key-1', [{ action: 'purchase', event_id: 'srv-bad' }, { action: 'view', event_id: 'srv-ok' }]))).status).toBe(204);
  await vi.waitFor(async () => expect((await deliveryOf('srv-bad'))?.state).toBe('dead'), { timeout: 10_000 });
  expect(await deliveryOf('srv-ok')).toMatchObject({ state: 'delivered' });
  const dead = (await admin('/api/deliveries?state=dead')).json();
  expect(dead).toEqual([expect.objectContaining({ event_id: 'srv-bad', connection_id: 'conn-good', state: 'dead', last_status: 400, last_error: '{"error":"event refused by test","sp_trace_id":"t-1"}' })]);

  standin.allowEvent('srv-bad');
  const replay = await admin('/api/deliveries/replay', { method: 'POST', body: JSON.stringify({ event_ids: ['srv-bad'] }) });
  expect(replay.json()).toEqual({ replayed: 1 });
  await vi.waitFor(async () => expect((await deliveryOf('srv-bad'))?.state).toBe('delivered'), { timeout: 10_000 });
  expect(standin.acceptedIds().filter((id) => id == 'srv-bad')).toHaveLength(1);
});

it('a refused token: the deliveries wait, /metrics and the live view show the connection failing', async () => {
  expect((await ingest(wire('key-2', [{ action: 'purchase', event_id: 'srv-k2' }]))).status).toBe(204);
  await vi.waitFor(async () => expect((await deliveryOf('srv-k2', 'conn-bad'))?.attempts).toBe(1), { timeout: 10_000 });
  const waiting = await deliveryOf('srv-k2', 'conn-bad');
  expect(waiting).toMatchObject({ state: 'pending', last_status: 401, last_error: expect.stringMatching(/^401 from Spotify: token refused/) });
  expect(waiting.next_attempt_at - Date.now()).toBeGreaterThan(4 * 60_000);
  // The key is relayed on conn-good as well, which takes it.
  await vi.waitFor(async () => expect((await deliveryOf('srv-k2'))?.state).toBe('delivered'), { timeout: 10_000 });
  const metrics = (await admin('/metrics')).text;
  expect(metrics).toMatch(/spdt_relay_connection_failing\{connection_id="conn-bad"\} 1/);
  expect(metrics).toMatch(/spdt_relay_connection_failing\{connection_id="conn-good"\} 0/);
  expect(metrics).toMatch(/spdt_relay_requests_total\{connection_id="conn-bad",status_class="4xx"\} 1/);
  expect(metrics).toMatch(/spdt_relay_request_duration_seconds_count\{connection_id="conn-good"\} \d+/);
});

it('no token in any answer, log line or database file', async () => {
  await admin('/api/events?limit=1000');
  await admin('/api/deliveries?state=pending');
  await admin('/api/deliveries?state=delivered');
  await admin('/metrics');
  await admin('/');
  const all = answers.join('\n');
  expect(all).toContain('conn-bad');
  for (const token of [standin.token, REVOKED]) {
    expect(all).not.toContain(token);
    expect(logs.join('\n')).not.toContain(token);
    for (const file of readdirSync(dir).filter((f) => f != 'spdt.json')) expect(readFileSync(join(dir, file)).includes(token)).toBe(false);
  }
  expect(logs.some((line) => line.includes('token refused'))).toBe(true);
});
