/**
 * SPEC §1 (strict CSP and Trusted Types) and §7 (the npm ESM build, loaded in a browser as it is).
 */
import type { Page } from '@playwright/test';
import { test, expect, newKey, tagLoaded, watchPage, expectClean } from './fixtures';
import { snippet } from '../src/snippet';

const CSP =
  "default-src 'none'; script-src 'nonce-abc' 'strict-dynamic'; connect-src 'self'; img-src 'self'; " +
  "require-trusted-types-for 'script'; trusted-types 'none'";

/** A document without the harness's `data:` favicon, which `img-src 'self'` would refuse. */
const doc = (head: string, body = '<p>test page</p>') =>
  `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="/v1/img"><title>t</title>${head}</head><body>${body}</body></html>`;

/** Records every CSP violation the page reports, from before its first script runs. */
const recordViolations = (page: Page) =>
  page.addInitScript(() => {
    const w = window as any;
    w.__violations = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      w.__violations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sample}`),
    );
  });

const violations = (page: Page) => page.evaluate(() => (window as any).__violations as string[]);

test.describe('SPEC §1: strict CSP and Trusted Types', () => {
  test("the project's Trusted Types snippet works under a strict CSP without a single violation", async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    await recordViolations(page);
    const head =
      snippet({ key, src: '/ping.min.js', nonce: 'abc', trustedTypes: true }) +
      `<script nonce="abc">
        spdt('alias', { email: ' Jane@Example.com ' });
        spdt('purchase', { value: '19.99', currency: 'eur', order_id: 'CSP-1' });
      </script>`;
    await page.goto(site.page(doc(head), { headers: { 'Content-Security-Policy': CSP } }));
    await tagLoaded(page);
    await site.waitForEvents(key, 3);
    await page.evaluate(() => history.pushState({}, '', '/csp/next'));
    const events = await site.waitForEvents(key, 4);
    expect(events.map((e) => e.action)).toEqual(['view', 'alias', 'purchase', 'view']);
    expect(events[1].body.hashed_email).toMatch(/^[0-9a-f]{64}$/);
    expect(events[2].body).toMatchObject({ value: 19.99, currency: 'EUR', order_id: 'CSP-1' });
    expect(events[3].body.url).toMatch(/\/csp\/next$/);
    expect((await page.context().cookies()).map((c) => c.name)).toContain('__spdt');
    expect(await violations(page)).toEqual([]);
    expectClean(seen);

    // The policy is really enforced and the listener really listens: a string into a script sink
    // is refused and reported (provoked on purpose, so its console error is expected).
    const refused = await page.evaluate(() => {
      try {
        document.createElement('div').innerHTML = '<b>x</b>';
        return false;
      } catch {
        return true;
      }
    });
    expect(refused).toBe(true);
    await expect.poll(() => violations(page)).toHaveLength(1);
  });
});

test.describe('SPEC §7: the npm ESM build in a browser', () => {
  test('createPixel from dist/index.mjs sends a purchase to the page origin', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const module = `<script type="module">
      import { createPixel } from '/dist/index.mjs';
      const p = createPixel({ key: '${key}' });
      p.purchase({ value: 5, currency: 'EUR', order_id: 'N1' });
    </script>`;
    // A real-looking host (plain http, not a secure context): the page's own origin is the collector.
    const url = site.page(doc(module), { host: 'www.example.co.uk' });
    const beacon = page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/v1/ingest'));
    await page.goto(url);
    expect((await beacon).url()).toBe(`${new URL(url).origin}/v1/ingest`);
    const [purchase] = await site.waitForEvents(key, 1);
    expect(purchase).toMatchObject({ key, action: 'purchase', transport: 'beacon' });
    expect(purchase.body).toEqual({ url, value: 5, currency: 'EUR', order_id: 'N1' });
    expect(purchase.uid).toMatch(/^[0-9a-f]{32}$/);
    expectClean(seen);
  });

  test('the createPixel tracker is callable and reports sends through on()', async ({ page, site }) => {
    const key = newKey();
    const seen = watchPage(page);
    const module = `<script type="module">
      import { createPixel } from '/dist/index.mjs';
      const p = createPixel({ key: '${key}' });
      window.sends = [];
      p.on('send', (info) => window.sends.push(info));
      p('view');
      p('custom_event_1', { step: 2 });
    </script>`;
    await page.goto(site.page(doc(module)));
    const events = await site.waitForEvents(key, 2);
    expect(events.map((e) => e.action)).toEqual(['view', 'custom_event_1']);
    expect(events[1].body.step).toBe(2);
    await page.waitForFunction(() => (window as any).sends.length > 0);
    const sends = await page.evaluate(() => (window as any).sends);
    expect(sends).toHaveLength(1);
    expect(sends[0]).toMatchObject({ transport: 'beacon', url: `${site.origin}/v1/ingest` });
    expect(JSON.parse(sends[0].body).batch[0].events.map((e: any) => e.action)).toEqual(['view', 'custom_event_1']);
    expectClean(seen);
  });
});
