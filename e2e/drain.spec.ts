/**
 * SPEC §6, issue 9: a backlog drains as fast as the browser admits requests, and page memory is
 * bounded while the browser refuses. The real tag in each engine against the reference collector;
 * exactly-once is checked on the requests the browser completed, call order on the beacons the
 * tag sent (and, in Chromium only, on what the collector stored: see recordBeacons), timing on the
 * collector's `received_at`.
 */
import type { Page, Request } from '@playwright/test';
import { test, expect, html, spotifySnippet, newKey, tagLoaded, watchPage, expectClean, type Site, type StoredEvent } from './fixtures';

declare global {
  interface Window {
    spdt: any;
  }
}

const BACKLOG = 3000;

/** Completed requests to /v1/ingest (Chromium reports a refused beacon as a request that never finishes). */
function ingestRequests(page: Page) {
  const list: Request[] = [];
  page.on('requestfinished', (r) => new URL(r.url()).pathname === '/v1/ingest' && list.push(r));
  return list;
}
const idsIn = (requests: Request[]) =>
  requests.flatMap((r) => JSON.parse(r.postData()!).batch.flatMap((item: any) => item.events.map((e: any) => e.event_id as string)));

/**
 * The bodies of the beacons the browser accepted, in the order the tag sent them: the tag's own
 * order, before the network. Firefox (no keepalive quota, unlike Chromium) has many beacons in
 * flight at once, and the collector stores them in arrival order, so only Chromium's stored
 * order is the call order; the send order must be in every engine.
 */
async function recordBeacons(page: Page): Promise<() => Promise<string[]>> {
  await page.addInitScript(() => {
    const send = Navigator.prototype.sendBeacon;
    const sent: string[] = ((window as any).__beacons = []);
    Navigator.prototype.sendBeacon = function (this: Navigator, ...args: Parameters<Navigator['sendBeacon']>) {
      const accepted = send.apply(this, args);
      if (accepted && new URL(args[0], location.href).pathname === '/v1/ingest') sent.push(String(args[1]));
      return accepted;
    };
  });
  return () => page.evaluate(() => (window as any).__beacons as string[]);
}
const orderIdsIn = (bodies: string[]): string[] =>
  bodies.flatMap((b) => JSON.parse(b).batch.flatMap((item: any) => item.events.map((e: any) => e.body.order_id ?? e.body.marker)));
/** Stored order is arrival order: the call order only where the browser sends one beacon after another (see recordBeacons). */
const storedInCallOrder = (browserName: string) => browserName === 'chromium';
const sorted = (ids: string[]) => [...ids].sort();

/** Waits until the collector holds `count` events for `key` (up to `ms`), and returns them. */
async function stored(site: Site, key: string, count: number, ms: number): Promise<StoredEvent[]> {
  let events: StoredEvent[] = [];
  await expect
    .poll(async () => (events = await site.events(key)).length, { message: `${count} events stored`, timeout: ms, intervals: [100, 250] })
    .toBeGreaterThanOrEqual(count);
  return events;
}

test.describe('SPEC §6: a backlog', () => {
  test('3,000 purchases of about 4 MB called at once arrive whole, once each, in call order, within 10 s; a later event follows', async ({ page, site, browserName }) => {
    test.setTimeout(60_000);
    const key = newKey();
    const seen = watchPage(page);
    const ingest = ingestRequests(page);
    const beacons = await recordBeacons(page);
    await page.goto(site.page(html(spotifySnippet('/ping.min.js', key))));
    await tagLoaded(page);
    await stored(site, key, 1, 5000); // the page view

    // Five long free props each (200 characters, the validated maximum is 256): ~1.3 KB per event.
    const calledAt = await page.evaluate((n) => {
      const note = (i: number, k: number) => `${i}:${k} ` + 'lorem ipsum '.repeat(17).slice(0, 195);
      const at = Date.now();
      for (let i = 0; i < n; i++)
        window.spdt('purchase', { value: 79.99, currency: 'USD', order_id: 'B-' + i, note_1: note(i, 1), note_2: note(i, 2), note_3: note(i, 3), note_4: note(i, 4), note_5: note(i, 5) });
      return at;
    }, BACKLOG);
    // Called in a later task, after the backlog: it must not wait for the backlog to trickle out.
    await page.evaluate(() => window.spdt('custom_event_1', { marker: 'after' }));

    const events = await stored(site, key, 1 + BACKLOG + 1, 30_000);
    const backlog = Array.from({ length: BACKLOG }, (_, i) => 'B-' + i);
    // Sent in call order (within each request and from one request to the next), in every engine.
    expect((await beacons()).length).toBeGreaterThan(1);
    expect(orderIdsIn(await beacons()).filter((id) => id !== undefined)).toEqual([...backlog, 'after']);
    // Stored exactly once each; in call order where the browser delivers in send order.
    const purchases = events.filter((e) => e.action === 'purchase').map((e) => e.body.order_id as string);
    if (storedInCallOrder(browserName)) {
      expect(purchases).toEqual(backlog);
      expect(events.at(-1)).toMatchObject({ action: 'custom_event_1', body: { marker: 'after' } });
    } else expect(sorted(purchases)).toEqual(sorted(backlog));
    expect(events.filter((e) => e.action === 'custom_event_1').map((e) => e.body.marker)).toEqual(['after']);
    const bytes = ingest.reduce((n, r) => n + Buffer.byteLength(r.postData()!), 0);
    expect(bytes).toBeGreaterThan(3.5e6);
    // SPEC §6: a backlog of 4 MB reaches a local collector within 10 s.
    const last = Math.max(...events.map((e) => (e as any).received_at as number));
    expect(last - calledAt).toBeLessThan(10_000);

    // Exactly once on the wire: every event in exactly one completed request, none over 64 KiB.
    await expect.poll(() => idsIn(ingest).length).toBe(events.length);
    expect(new Set(idsIn(ingest)).size).toBe(events.length);
    expect(ingest.every((r) => Buffer.byteLength(r.postData()!) <= 65536)).toBe(true);
    expectClean(seen);
  });
});

test.describe('SPEC §6: page memory while the browser refuses', () => {
  test('refused for good: at most 5,000 events wait, the oldest go, with one [spdt] warning', async ({ page, site, browserName }) => {
    test.setTimeout(60_000);
    const key = newKey();
    const seen = watchPage(page);
    const beacons = await recordBeacons(page); // under the refusal below: only what reaches the browser
    // The browser refuses every beacon (as a full quota or a blocking extension would) until told not to.
    await page.addInitScript(() => {
      const send = Navigator.prototype.sendBeacon;
      (window as any).__refuse = true;
      (window as any).__refused = 0;
      Navigator.prototype.sendBeacon = function (this: Navigator, ...args: Parameters<Navigator['sendBeacon']>) {
        if ((window as any).__refuse) return !++(window as any).__refused;
        return send.apply(this, args);
      };
    });
    const warned: string[] = [];
    await page.goto(site.page(html(spotifySnippet('/ping.min.js', key))));
    await tagLoaded(page);
    await page.evaluate(() => {
      (window as any).__warnings = [];
      window.spdt.on('warn', (text: string) => (window as any).__warnings.push(text));
    });
    await page.evaluate(() => {
      for (let i = 0; i < 6000; i++) window.spdt('purchase', { value: 1, currency: 'EUR', order_id: 'M-' + i });
    });
    // Refusals continue (the retry waits grow); then more calls, still refused.
    await expect.poll(() => page.evaluate(() => (window as any).__refused)).toBeGreaterThanOrEqual(3);
    await page.evaluate(() => {
      for (let i = 6000; i < 6100; i++) window.spdt('purchase', { value: 1, currency: 'EUR', order_id: 'M-' + i });
    });
    warned.push(...(await page.evaluate(() => (window as any).__warnings)));
    expect(warned).toEqual(['[spdt] outbox events: over 5000 or 4 MB, oldest dropped']);
    expect(seen.warnings.filter((w) => w.includes('[spdt]'))).toEqual(warned);

    // What stayed in memory is what goes once the browser takes requests again: the newest 5,000.
    await page.evaluate(() => ((window as any).__refuse = false));
    const events = await stored(site, key, 5000, 30_000);
    const newest = Array.from({ length: 5000 }, (_, i) => 'M-' + (1100 + i));
    await expect.poll(async () => orderIdsIn(await beacons()).length).toBeGreaterThanOrEqual(5000);
    expect(orderIdsIn(await beacons())).toEqual(newest); // sent in call order, in every engine
    const ids = events.map((e) => e.body.order_id as string);
    expect(storedInCallOrder(browserName) ? ids : sorted(ids)).toEqual(storedInCallOrder(browserName) ? newest : sorted(newest));
    await page.evaluate(() => window.spdt('custom_event_1', { marker: 'end' }));
    const all = await stored(site, key, 5001, 10_000);
    expect(all).toHaveLength(5001);
    expect(all.at(-1)!.body.marker).toBe('end');
    expectClean(seen);
  });
});
