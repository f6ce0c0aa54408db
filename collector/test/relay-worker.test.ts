/** The relay worker against the real SQLite store and the strict stand-in for Spotify (SPEC §9). */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runReplay } from '../src/relay/replay-cli.js';
import { relayHarness, UID, type Harness } from './support/relay-harness.js';

let h: Harness;
afterEach(() => h?.close());

const sink = () => {
  let text = '';
  const stream = new Writable({ write: (chunk, _enc, done) => ((text += chunk), done()) });
  return { stream, text: () => text };
};

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const found = (await h.ctx.registry.getMetricsAsJSON()).find((m) => m.name == name);
  const value = found?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] == l));
  return value?.value ?? 0;
}

describe('every stored relayable event reaches Spotify once, with its own event_id', () => {
  it('a mixed backlog of 180 events', async () => {
    h = await relayHarness();
    const events = [];
    for (let i = 0; i < 30; i++) {
      events.push(h.event(`p-${i}`), h.event(`v-${i}`, { action: 'view', body: { url: 'https://shop.example/p' } }));
      events.push(h.event(`a-${i}`, { action: 'alias', body: { hashed_email: 'a'.repeat(64) } }));
      events.push(h.event(`c-${i}`, { action: 'custom', body: { event_name: 'quiz_done' } }));
      events.push(h.event(`n-${i}`, { action: 'custom', body: { event_name: 'no_slot' } }));
      events.push(h.event(`u-${i}`, { action: 'refund', body: {} }));
    }
    await h.add(...events.slice(0, 90));
    h.start();
    await h.add(...events.slice(90));
    const relayable = events.filter((e) => /^[pvc]-/.test(e.event_id)).map((e) => e.event_id);
    await h.standin.waitFor((s) => s.accepted.length >= relayable.length);
    await vi.waitFor(async () => expect((await h.ctx.store.deliveries({ state: 'delivered', limit: 1000 })).length).toBe(relayable.length));

    expect(h.standin.acceptedIds().sort()).toEqual(relayable.sort());
    expect(h.standin.received.every((r) => r.status == 200 && r.eventIds.length <= 50)).toBe(true);
    const stored = await h.ctx.store.events({ limit: 1000 });
    for (const e of stored) {
      if (/^[pvc]-/.test(e.event_id)) expect(e.deliveries).toMatchObject([{ state: 'delivered', attempts: 1, last_status: 200 }]);
      if (/^[au]-/.test(e.event_id)) expect(e.deliveries).toEqual([]);
      if (/^n-/.test(e.event_id)) expect(e.deliveries).toMatchObject([{ state: 'skipped', last_error: expect.stringContaining('no_slot') }]);
    }
    // What arrived is what the mapping promises, from the stored event.
    const purchase = h.standin.accepted.find((e) => e.event_id == 'p-7');
    expect(purchase).toMatchObject({
      event_name: 'PURCHASE',
      user_data: { ip_address: '203.0.113.7', device_id: UID },
      event_details: { amount: 79.99, currency: 'USD' },
      event_source_url: 'https://shop.example/thanks',
      action_source: 'WEB',
    });
    expect(h.standin.accepted.find((e) => e.event_id == 'c-3')?.event_name).toBe('CUSTOM_EVENT_2');
    // Every event delivered: the full IP is no longer needed and is shortened.
    expect(stored.find((e) => e.event_id == 'p-7')?.ip).toBe('203.0.113.0');
    expect(await metric('spdt_relay_requests_total', { status_class: '2xx' })).toBe(h.standin.received.length);
    expect(await metric('spdt_relay_delivery_outcomes_total', { outcome: 'delivered' })).toBe(relayable.length);
  });
});

describe('the failure matrix', () => {
  it('503s, then success: retried with backoff until delivered', async () => {
    h = await relayHarness();
    h.standin.failNext(3, 503);
    h.start();
    await h.add(h.event('e-1'), h.event('e-2'));
    const d = await h.until('e-1', (d) => d.state == 'delivered');
    expect(d).toMatchObject({ attempts: 4, last_status: 200 });
    expect(h.standin.received.map((r) => r.status)).toEqual([503, 503, 503, 200]);
    expect(h.standin.acceptedIds().sort()).toEqual(['e-1', 'e-2']);
    // Doubling from retryMs (20 ms): gaps of at least 20, 40, 80 ms.
    const at = h.standin.received.map((r) => r.at);
    for (let i = 1; i < at.length; i++) expect(at[i] - at[i - 1]).toBeGreaterThanOrEqual(20 * 2 ** (i - 1) - 5);
    expect(await metric('spdt_relay_requests_total', { status_class: '5xx' })).toBe(3);
  });

  it('429 with Retry-After: not tried again before it says', async () => {
    h = await relayHarness();
    h.standin.failNext(1, 429, { 'retry-after': '1' });
    h.start();
    await h.add(h.event('e-1'));
    const waiting = await h.until('e-1', (d) => d.attempts == 1);
    expect(waiting).toMatchObject({ state: 'pending', last_status: 429 });
    await h.until('e-1', (d) => d.state == 'delivered');
    const [first, second] = h.standin.received;
    expect(second.at - first.at).toBeGreaterThanOrEqual(1000 - 5);
  });

  it('400 for one event of a batch: split, that one dead with status and answer, the others delivered', async () => {
    h = await relayHarness();
    const ids = ['e-1', 'e-2', 'e-3', 'e-4', 'e-5'];
    h.standin.refuseEvent('e-3', '{"error":"event_time out of range","trace":"sp_trace_id=abc"}');
    await h.add(...ids.map((id) => h.event(id)));
    h.start();
    await h.until('e-3', (d) => d.state == 'dead');
    for (const id of ids.filter((id) => id != 'e-3')) await h.until(id, (d) => d.state == 'delivered');
    expect(await h.delivery('e-3')).toMatchObject({ state: 'dead', last_status: 400, last_error: '{"error":"event_time out of range","trace":"sp_trace_id=abc"}' });
    // One request of five, then each alone, once.
    expect(h.standin.received[0].eventIds).toEqual(ids);
    const alone = h.standin.received.slice(1);
    expect(alone.map((r) => r.eventIds).flat().sort()).toEqual(ids);
    expect(alone.every((r) => r.eventIds.length == 1)).toBe(true);
    expect(h.standin.acceptedIds().sort()).toEqual(['e-1', 'e-2', 'e-4', 'e-5']);
  });

  it('an answer echoing the token keeps none of it', async () => {
    h = await relayHarness();
    h.standin.refuseEvent('e-1', `refused request with Authorization: Bearer ${h.standin.token}`);
    await h.add(h.event('e-1'));
    h.start();
    const dead = await h.until('e-1', (d) => d.state == 'dead');
    expect(dead.last_error).toBe('refused request with Authorization: Bearer [token]');
  });

  it('a slow answer times out and is retried with the same event_id', async () => {
    h = await relayHarness();
    h.standin.slowNext(1, 1500);
    h.start({ timeoutMs: 300 });
    await h.add(h.event('e-1'));
    const waiting = await h.until('e-1', (d) => d.attempts == 1);
    expect(waiting).toMatchObject({ state: 'pending', last_error: 'no answer within 0.3 s' });
    await h.until('e-1', (d) => d.state == 'delivered');
    expect(h.standin.received.length).toBeGreaterThanOrEqual(2);
    expect(h.standin.received.every((r) => r.eventIds.join() == 'e-1')).toBe(true);
    expect(await metric('spdt_relay_requests_total', { status_class: 'timeout' })).toBe(1);
  });

  it('a refused connection is retried until Spotify answers', async () => {
    h = await relayHarness();
    await h.standin.stopListening();
    h.start();
    await h.add(h.event('e-1'));
    const waiting = await h.until('e-1', (d) => d.attempts >= 2);
    expect(waiting).toMatchObject({ state: 'pending', last_error: 'network error: ECONNREFUSED' });
    await h.standin.reopen();
    await h.until('e-1', (d) => d.state == 'delivered');
    expect(h.standin.acceptedIds()).toEqual(['e-1']);
    expect(await metric('spdt_relay_requests_total', { status_class: 'network' })).toBeGreaterThanOrEqual(2);
  });

  it('401: the deliveries wait at the longest delay, nothing split or given up, the connection shown failing', async () => {
    h = await relayHarness({ connection: { token: 'a-revoked-token' } });
    const before = Date.now();
    await h.add(h.event('e-1'), h.event('e-2'), h.event('e-3'));
    h.start();
    const waiting = await h.until('e-2', (d) => d.attempts == 1);
    expect(waiting).toMatchObject({ state: 'pending', last_status: 401, last_error: expect.stringMatching(/^401 from Spotify: token refused/) });
    expect(waiting.next_attempt_at! - before).toBeGreaterThanOrEqual(5 * 60_000);
    expect(h.standin.received).toHaveLength(1);
    expect(h.standin.received[0].eventIds).toHaveLength(3);
    expect(await metric('spdt_relay_connection_failing', { connection_id: 'conn-1' })).toBe(1);
    expect(h.logs.join('\n')).not.toContain('a-revoked-token');
  });

  it('a working answer clears the failing gauge', async () => {
    h = await relayHarness();
    h.standin.failNext(1, 403);
    h.start();
    await h.add(h.event('e-1'));
    await h.until('e-1', (d) => d.attempts == 1);
    expect(await metric('spdt_relay_connection_failing', { connection_id: 'conn-1' })).toBe(1);
    // e-1 now waits 5 minutes; the next event is sent at once, and Spotify takes the token again.
    await h.add(h.event('e-2'));
    await h.until('e-2', (d) => d.state == 'delivered');
    expect(await metric('spdt_relay_connection_failing', { connection_id: 'conn-1' })).toBe(0);
  });
});

describe('the store failing', () => {
  it('a claim that fails is logged once and tried again; nothing is lost', async () => {
    h = await relayHarness();
    await h.add(h.event('e-1'));
    const claim = vi.spyOn(h.ctx.store, 'claim');
    for (let i = 0; i < 3; i++) claim.mockRejectedValueOnce(new Error('SQLITE_IOERR: disk I/O error'));
    h.start({ concurrency: 1, pollMs: 10 });
    await h.until('e-1', (d) => d.state == 'delivered');
    expect(claim.mock.calls.length).toBeGreaterThan(3);
    expect(h.logs.filter((l) => l.includes('cannot claim'))).toHaveLength(1);
    expect(h.standin.acceptedIds()).toEqual(['e-1']);
  });
});

describe('max age, replay', () => {
  it('dead once SPDT_RELAY_MAX_AGE has passed since the first try', async () => {
    h = await relayHarness({ relay: { maxAgeSeconds: 1 } });
    h.standin.failNext(10_000, 503);
    h.start();
    await h.add(h.event('e-1'));
    const dead = await h.until('e-1', (d) => d.state == 'dead');
    expect(dead.last_status).toBe(503);
    expect(dead.last_error).toMatch(/^given up after SPDT_RELAY_MAX_AGE \(1 s\); last: 503 from Spotify/);
    const tries = h.standin.received.map((r) => r.at);
    expect(tries.at(-1)! - tries[0]).toBeGreaterThanOrEqual(1000 - 5);
    expect(tries.length).toBeGreaterThan(2);
  });

  it('a replayed dead delivery is delivered, without the IP that was shortened meanwhile', async () => {
    h = await relayHarness();
    h.standin.refuseEvent('e-1');
    await h.add(h.event('e-1'), h.event('e-2'));
    h.start();
    await h.until('e-1', (d) => d.state == 'dead');
    await h.until('e-2', (d) => d.state == 'delivered');
    const [stored] = (await h.ctx.store.events({ limit: 10 })).filter((e) => e.event_id == 'e-1');
    expect(stored.ip).toBe('203.0.113.0');

    h.standin.allowEvent('e-1');
    const out = sink();
    expect(await runReplay(['--event-id', 'e-1'], h.ctx.config, out.stream)).toBe(0);
    expect(JSON.parse(out.text())).toEqual({ replayed: 1 });
    h.ctx.changes.emit('change');
    const delivered = await h.until('e-1', (d) => d.state == 'delivered');
    expect(delivered.attempts).toBe(1);
    const copy = h.standin.accepted.find((e) => e.event_id == 'e-1')!;
    expect(copy.user_data).toEqual({ device_id: UID });
    expect(h.standin.acceptedIds().sort()).toEqual(['e-1', 'e-2']);
  });

  it('replay CLI: bad arguments are refused', async () => {
    h = await relayHarness();
    const err = sink();
    expect(await runReplay(['--evnt-id', 'x'], h.ctx.config, sink().stream, err.stream)).toBe(2);
    expect(err.text()).toMatch(/unknown argument "--evnt-id"/);
    expect(await runReplay(['--event-id'], h.ctx.config, sink().stream, err.stream)).toBe(2);
    const out = sink();
    expect(await runReplay([], h.ctx.config, out.stream)).toBe(0);
    expect(JSON.parse(out.text())).toEqual({ replayed: 0 });
  });
});

describe('stopping', () => {
  it('stop() waits for the request in flight, and its outcome is recorded', async () => {
    h = await relayHarness();
    const held = h.standin.holdNext();
    const relay = h.start();
    await h.add(h.event('e-1'));
    await held;
    let stopped = false;
    const stopping = relay.stop().then(() => (stopped = true));
    await new Promise((r) => setImmediate(r));
    expect(stopped).toBe(false);
    h.standin.release();
    await stopping;
    expect(await h.delivery('e-1')).toMatchObject({ state: 'delivered' });
  });

  it('stop() is bounded: a request that never answers is cut short and left pending', async () => {
    h = await relayHarness();
    const held = h.standin.holdNext();
    const relay = h.start({ stopGraceMs: 200 });
    await h.add(h.event('e-1'));
    await held;
    await relay.stop();
    expect(await h.delivery('e-1')).toMatchObject({ state: 'pending', attempts: 1, last_error: expect.stringMatching(/cut short/) });
  });

  it('stop() sends nothing more once it has cut requests short: the batches claimed ahead stay pending', async () => {
    h = await relayHarness({ relay: { batch: 1 } });
    await h.add(h.event('e-1'), h.event('e-2'), h.event('e-3'), h.event('e-4'));
    const held = h.standin.holdNext(2);
    const relay = h.start({ stopGraceMs: 200 });
    await held;
    await h.standin.waitFor((s) => s.heldRequests.length == 2);
    await relay.stop();
    expect(h.standin.received).toHaveLength(2); // each lane's request in flight; none after the cut
    for (const id of ['e-1', 'e-2', 'e-3', 'e-4']) expect(await h.delivery(id), id).toMatchObject({ state: 'pending' });
  });
});

describe('the token never appears', () => {
  it('not in logs, the SQLite files or what the store answers, whatever failed', async () => {
    h = await relayHarness();
    const token = h.standin.token;
    h.standin.failNext(1, 503, {}, `upstream said: Bearer ${token}`);
    h.standin.refuseEvent('e-2', `bad event; you sent ${token}`);
    await h.add(h.event('e-1'), h.event('e-2'), h.event('e-3'));
    h.start();
    await h.until('e-2', (d) => d.state == 'dead');
    await h.until('e-3', (d) => d.state == 'delivered');
    h.standin.failNext(1, 401, {}, `token ${token} refused`);
    await h.add(h.event('e-4'));
    await h.until('e-4', (d) => d.last_status == 401);
    const answers = JSON.stringify([await h.ctx.store.events({ limit: 100 }), await h.ctx.store.deliveries({ limit: 100 }), await h.ctx.registry.metrics()]);
    expect(answers).toContain('[token]');
    expect(answers).not.toContain(token);
    expect(h.logs.length).toBeGreaterThan(0);
    expect(h.logs.join('\n')).not.toContain(token);
    for (const file of readdirSync(h.dir)) expect(readFileSync(join(h.dir, file)).includes(token)).toBe(false);
  });
});
