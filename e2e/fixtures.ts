/**
 * The e2e harness: the product collector (`spdt-collector`, built to collector/dist by `npm run
 * build`), one per worker in this process with its own SQLite data directory, serving the real
 * dist/ping.min.js; next to its routes, the pages each test mounts and the files of dist/ under
 * /dist/. It runs in its loopback dev mode (no admin token), so the harness reads /api/events from
 * here. Hostnames under example.co.uk resolve to this machine (see playwright.config.ts), so
 * cookie domains are real.
 */
import { expect, type Page } from '@playwright/test';
import { test as base } from './engines/harness';
import { isEngineNotice } from './engines/notices';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { createCollector, createLogger, loadConfig, type StoredEvent as CollectorEvent } from 'spdt-collector';

export { expect };

/** An event as the collector's /api/events shows it (SPEC §8), its body loosely typed for the specs. */
export type StoredEvent = Omit<CollectorEvent, 'body'> & { body: Record<string, any> };

interface MountedPage {
  html: string;
  headers: Record<string, string>;
}

export interface Site {
  /** http://localhost:PORT — the collector's origin, where the tag is served. */
  origin: string;
  port: number;
  /** Mounts a page; returns its URL on `host` (default localhost). */
  page(html: string, options?: { headers?: Record<string, string>; host?: string; path?: string }): string;
  /** Events the collector stored for `key`, oldest first. */
  events(key: string): Promise<StoredEvent[]>;
  /** Waits until the collector has stored `count` events for `key` and returns them. */
  waitForEvents(key: string, count: number): Promise<StoredEvent[]>;
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));
let pageCounter = 0;

export const newKey = (): string => Array.from({ length: 32 }, () => Math.floor(Math.random() * 16).toString(16)).join('');

/** Spotify's snippet (SPEC §1), unchanged but for `src` and the calls after conf. */
export function spotifySnippet(src: string, key: string, calls = "w.spdt('view');"): string {
  return `<script>
(function(w, d){
  var id='spdt-capture', n='script';
  if (!d.getElementById(id)) {
    w.spdt = w.spdt || function() { (w.spdt.q = w.spdt.q || []).push(arguments); };
    var e = d.createElement(n); e.id = id; e.async = 1;
    e.src = '${src}';
    var s = d.getElementsByTagName(n)[0]; s.parentNode.insertBefore(e, s);
  }
  w.spdt('conf', { key: '${key}' });
  ${calls}
})(window, document);
</script>`;
}

/** A minimal HTML document. */
export const html = (head: string, body = '<p>test page</p>') =>
  `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>t</title>${head}</head><body>${body}</body></html>`;

/**
 * Holds the page's requests for ping.min.js until `release()` (so calls queue up before the tag
 * loads, without any sleep).
 */
export async function holdTag(page: Page): Promise<{ release(): void }> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  await page.route(/\/ping\.min\.js(\?|$)/, async (route) => {
    await released;
    await route.continue();
  });
  return { release };
}

/** What a page did that a tag must never make it do: errors thrown, errors logged. */
export function watchPage(page: Page) {
  const seen = { pageErrors: [] as string[], consoleErrors: [] as string[], warnings: [] as string[], engineNotices: [] as string[] };
  page.on('pageerror', (e) => (isEngineNotice(String(e)) ? seen.engineNotices : seen.pageErrors).push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') (isEngineNotice(m.text()) ? seen.engineNotices : seen.consoleErrors).push(m.text());
    if (m.type() === 'warning') seen.warnings.push(m.text());
  });
  return seen;
}

/** Every request the page made (URL, method and body), to search for what must never leave it. */
export function recordRequests(page: Page) {
  const requests: { url: string; method: string; body: string }[] = [];
  page.on('request', (r) => requests.push({ url: r.url(), method: r.method(), body: r.postData() ?? '' }));
  return requests;
}

/** The page threw nothing and logged no error. */
export function expectClean(seen: ReturnType<typeof watchPage>): void {
  expect(seen.pageErrors).toEqual([]);
  expect(seen.consoleErrors).toEqual([]);
}

/** Waits until an event matching `match` is stored for `key`; returns every event stored so far. */
export async function waitForMatch(site: Site, key: string, match: (e: StoredEvent) => boolean): Promise<StoredEvent[]> {
  let events: StoredEvent[] = [];
  await expect.poll(async () => (events = await site.events(key)).some(match), { intervals: [50, 100, 200] }).toBe(true);
  return events;
}

/**
 * Sends a marker event after everything before it and resolves once it is stored: what the page
 * did before the marker has happened by then, so its absence can be asserted without a sleep.
 */
export async function sendMarker(page: Page, site: Site, key: string): Promise<StoredEvent[]> {
  const marker = 'm' + Math.random().toString(36).slice(2);
  await page.evaluate((m) => (window as any).spdt('custom_event_5', { marker: m }), marker);
  return waitForMatch(site, key, (e) => e.body.marker === marker);
}

/** Resolves once the tag has installed itself on the page. */
export const tagLoaded = (page: Page) => page.waitForFunction(() => (window as any).spdt && (window as any).spdt.version);

/**
 * The mounted pages (any method, so a page can also stand in for an endpoint) and dist/ under
 * /dist/, in a scope of their own that takes any body: none of it collides with the collector's
 * routes (/, /live.*, /api/*, /v1/*, /ping.min.js, /healthz, /metrics), which win over `/*`.
 */
function mountPages(app: FastifyInstance, pages: Map<string, MountedPage>): void {
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    await scope.register(fastifyStatic, { root: path.join(ROOT, 'dist'), serve: false, cacheControl: false });
    scope.route({
      method: ['GET', 'HEAD', 'POST'],
      url: '/*',
      handler: async (request, reply) => {
        const p = request.url.split('?')[0];
        const mounted = pages.get(p);
        if (mounted) {
          return reply
            .code(200)
            .headers({ 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...mounted.headers })
            .send(mounted.html);
        }
        if (p.startsWith('/dist/') && request.method != 'POST') {
          return reply.header('cache-control', 'no-cache').sendFile(decodeURIComponent(p.slice('/dist/'.length)));
        }
        return reply.code(404).send({ error: 'not found' });
      },
    });
  });
}

export const test = base.extend<{ site: Site }, { server: { site: Site; close(): Promise<void> } }>({
  server: [
    async ({}, use) => {
      const pages = new Map<string, MountedPage>();
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'spdt-e2e-'));
      // Only what the harness sets: no admin token, database or Spotify connection from the shell.
      const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', SPDT_DATA_DIR: dataDir });
      const collector = await createCollector(config, { relay: false, log: createLogger({ level: 'warn' }) });
      mountPages(collector.app, pages);
      const { port } = await collector.listen();
      const origin = `http://localhost:${port}`;
      const site: Site = {
        origin,
        port,
        page(body, options = {}) {
          const p = options.path ?? `/t/${process.pid}-${++pageCounter}.html`;
          pages.set(p, { html: body, headers: options.headers ?? {} });
          return `http://${options.host ?? 'localhost'}:${port}${p}`;
        },
        async events(key) {
          const res = await fetch(`${origin}/api/events?key=${encodeURIComponent(key)}&limit=10000`);
          if (!res.ok) throw new Error(`/api/events answered ${res.status}: ${await res.text()}`);
          return (await res.json()) as StoredEvent[];
        },
        async waitForEvents(key, count) {
          let events: StoredEvent[] = [];
          await expect
            .poll(async () => (events = await site.events(key)).length, { message: `${count} events for ${key}`, intervals: [50, 100, 200] })
            .toBeGreaterThanOrEqual(count);
          return events;
        },
      };
      await use({ site, close: () => collector.close() });
      await collector.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
    { scope: 'worker' },
  ],
  site: async ({ server }, use) => use(server.site),
});
