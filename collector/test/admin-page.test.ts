/// <reference lib="dom" />
/**
 * The live view page in real Chromium against the real admin routes and SQLite store: events as
 * they are stored, rows updated in place as deliveries change, the key filter, and hostile event
 * contents shown as text, never as markup.
 */
import { chromium, type Browser, type Page } from '@playwright/test';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KEY, startAdminApp, type AdminApp } from './support/admin-app.js';

const TOKEN = 'page-admin-token';

let browser: Browser;
let app: AdminApp | undefined;
let page: Page | undefined;
let pageErrors: string[] = [];

beforeAll(async () => {
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
});
afterAll(async () => browser?.close());
afterEach(async () => {
  await page?.close();
  await app?.close();
  app = page = undefined;
});

async function openPage(query = '') {
  page = await browser.newPage();
  page.setDefaultTimeout(10_000);
  pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => m.type() == 'error' && pageErrors.push(m.text()));
  await page.goto(`${app!.url}/?token=${TOKEN}${query}`);
  await page.waitForFunction(() => document.getElementById('status')!.textContent == 'live');
  return page;
}

/** The text of each row, top to bottom. */
const rows = (p: Page) => p.$$eval('#events > li:not(.hidden)', (lis) => lis.map((li) => li.textContent ?? ''));

async function deliver(eventId: string) {
  const now = Date.now();
  const claimed = await app!.ctx.store.claim({ limit: 100, now: now + 1, leaseMs: 60_000, worker: 'page-test' });
  const mine = claimed.filter((c) => c.event.event_id == eventId);
  await app!.ctx.store.record(mine.map((c) => ({ id: c.id, state: 'delivered' as const, status: 200, at: now })));
  app!.ctx.changes.emit('change');
}

describe('the live view', () => {
  it('shows stored events newest on top, then new ones live, updating a row in place when its delivery changes', async () => {
    app = await startAdminApp({ adminToken: TOKEN });
    const base = Date.now() - 10_000;
    await app.ctx.store.insert([app.event('old-1', { received_at: base }), app.event('old-2', { received_at: base + 1000, problems: ['purchase currency: not a currency code'] })]);
    const p = await openPage();
    await p.waitForFunction(() => document.querySelectorAll('#events > li').length == 2);
    let shown = await rows(p);
    expect(shown[0]).toContain('old-2');
    expect(shown[0]).toContain('purchase currency: not a currency code');
    expect(shown[1]).toContain('old-1');
    expect(await p.$eval('#events > li:first-child', (li) => li.classList.contains('bad'))).toBe(true);

    await app.ctx.store.insert([app.event('new-1')]);
    app.ctx.changes.emit('change');
    await p.waitForFunction(() => document.querySelector('#events > li')?.textContent?.includes('new-1'));
    expect(await p.$eval('#events > li:first-child .delivery', (b) => b.textContent)).toMatch(/conn-1 pending/);

    await deliver('new-1');
    await p.waitForFunction(() => document.querySelector('#events > li .delivery')?.textContent?.includes('delivered'));
    shown = await rows(p);
    expect(shown).toHaveLength(3); // the same row, updated: no second one for the event
    expect(shown[0]).toMatch(/conn-1 delivered · 200/);
    expect(pageErrors).toEqual([]);
  });

  it('filters by key, from the box or the page URL', async () => {
    app = await startAdminApp({ adminToken: TOKEN });
    await app.ctx.store.insert([app.event('mine'), app.event('theirs', { key: 'other-key' })]);
    const p = await openPage();
    await p.waitForFunction(() => document.querySelectorAll('#events > li').length == 2);
    await p.fill('#filter', 'other-key');
    await p.waitForFunction(() => document.querySelectorAll('#events > li:not(.hidden)').length == 1);
    expect((await rows(p))[0]).toContain('theirs');
    await p.close();

    const q = await openPage(`&key=${KEY}`);
    await q.waitForFunction(() => document.querySelectorAll('#events > li:not(.hidden)').length == 1);
    expect(await q.inputValue('#filter')).toBe(KEY);
    expect(await rows(q)).toEqual([expect.stringContaining('mine')]);
  });

  it('shows hostile contents as text', async () => {
    app = await startAdminApp({ adminToken: TOKEN });
    const evil = '<img src=x onerror="window.__pwned=1">';
    await app.ctx.store.insert([app.event(evil, { action: evil, problems: [evil], body: { note: evil } })]);
    const p = await openPage();
    await p.waitForFunction(() => document.querySelectorAll('#events > li').length == 1);
    await p.click('#events > li summary');
    expect(await p.$eval('#events > li .action', (a) => a.textContent)).toBe(evil);
    expect(await p.$eval('#events > li .problems li', (a) => a.textContent)).toBe(evil);
    expect(await p.$$('#events img')).toHaveLength(0);
    expect(await p.evaluate(() => (window as { __pwned?: number }).__pwned)).toBeUndefined();
  });

  it('replays a dead delivery from its row', async () => {
    app = await startAdminApp({ adminToken: TOKEN });
    await app.ctx.store.insert([app.event('dead-1')]);
    const now = Date.now();
    const [claimed] = await app.ctx.store.claim({ limit: 10, now: now + 1, leaseMs: 60_000, worker: 'page-test' });
    await app.ctx.store.record([{ id: claimed.id, state: 'dead', status: 400, error: 'refused by Spotify', at: now }]);
    const p = await openPage();
    await p.waitForSelector('#events > li .delivery.dead');
    expect(await p.textContent('#events > li .delivery')).toMatch(/dead · 400 · after 1 attempt · refused by Spotify/);
    await p.click('#events > li .delivery button');
    await p.waitForSelector('#events > li .delivery.pending');
    expect(await app.ctx.store.deliveries({ state: 'dead', limit: 10 })).toEqual([]);
  });
});
