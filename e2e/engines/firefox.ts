/**
 * Firefox for the e2e suite: Playwright's own Firefox (Debian's ESR over WebDriver BiDi), with one
 * gap filled. Playwright's BiDi requests carry no body (`postData()` is always null), and the specs
 * read every beacon's body; so each context sends its traffic through its own recording proxy
 * (./proxy.ts), and its pages report requests, answers and failures — and take routes — from
 * there, with bodies. Everything else is Playwright's Firefox page, unchanged.
 *
 * Requests are seen per context, not per page: a context with two pages reports each request to
 * both (the one spec that needs per-tab attribution says so).
 */
import type { Browser, BrowserContext, Page } from '@playwright/test';
import { startProxy, type Proxy } from './proxy';

const NETWORK_EVENTS = new Set(['request', 'requestfinished', 'requestfailed', 'response']);

/** `target`'s members, with `overrides` in front; methods stay bound to `target`. */
function overlay<T extends object>(target: T, overrides: Record<string, unknown>): T {
  return new Proxy(target, {
    get(t, name, receiver) {
      if (typeof name === 'string' && name in overrides) return overrides[name];
      const value = Reflect.get(t, name, t);
      return typeof value === 'function' ? value.bind(t) : value;
    },
  });
}

function networkPage(page: Page, proxy: Proxy, context: BrowserContext): Page {
  const listen = (method: 'on' | 'once' | 'off' | 'addListener' | 'removeListener') =>
    function (this: unknown, event: string, listener: (...args: any[]) => void) {
      if (NETWORK_EVENTS.has(event)) proxy[method === 'addListener' ? 'on' : method === 'removeListener' ? 'off' : method](event, listener);
      else (page as any)[method](event, listener);
      return wrapped;
    };
  const waitFor = (event: string, predicate: (value: any) => boolean = () => true) =>
    new Promise((resolve) => {
      const listener = (value: unknown) => {
        if (!predicate(value)) return;
        proxy.off(event, listener);
        resolve(value);
      };
      proxy.on(event, listener);
    });
  const wrapped: Page = overlay(page, {
    on: listen('on'),
    once: listen('once'),
    off: listen('off'),
    addListener: listen('addListener'),
    removeListener: listen('removeListener'),
    waitForRequest: (predicate: (r: any) => boolean) => waitFor('request', predicate),
    waitForResponse: (predicate: (r: any) => boolean) => waitFor('response', predicate),
    waitForEvent: (event: string, predicate?: (value: any) => boolean) =>
      NETWORK_EVENTS.has(event) ? waitFor(event, predicate) : page.waitForEvent(event as any, predicate as any),
    route: async (url: any, handler: any) => proxy.route(url, handler),
    unroute: async (url: any, handler?: any) => proxy.unroute(url, handler),
    context: () => context,
    // Playwright's BiDi goBack waits for a commit that Firefox never reports when it restores the
    // page from the back/forward cache: the page goes back itself, the caller waits for the result.
    goBack: async () => {
      await page.evaluate(() => void setTimeout(() => history.back()));
      return null;
    },
  });
  return wrapped;
}

async function recordingContext(context: BrowserContext, proxy: Proxy): Promise<BrowserContext> {
  const pages = new Map<Page, Page>();
  const wrap = (page: Page) => pages.get(page) ?? pages.set(page, networkPage(page, proxy, wrapped)).get(page)!;
  const wrapped: BrowserContext = overlay(context, {
    newPage: async () => wrap(await context.newPage()),
    pages: () => context.pages().map(wrap),
    close: async (options?: { reason?: string }) => {
      await context.close(options);
      await proxy.close();
    },
  });
  return wrapped;
}

/** Context options the harness adds: a browser setting the engine has (Firefox: GPC). */
export interface EngineContextOptions {
  /** The browser's own Global Privacy Control setting, on. Only Firefox ships one. */
  globalPrivacyControl?: boolean;
}

/**
 * The Firefox browser whose contexts each record their network through a proxy. Some context
 * options are browser-wide preferences in Firefox (Playwright's BiDi Firefox ignores
 * `javaScriptEnabled: false`; GPC is a preference): such a context gets a browser of its own,
 * launched by `launchWith(prefs)`.
 */
export function withRecordingProxy(browser: Browser, launchWith: (prefs: Record<string, unknown>) => Promise<Browser>): Browser {
  const wrapped: Browser = overlay(browser, {
    newContext: async ({ globalPrivacyControl, ...options }: Parameters<Browser['newContext']>[0] & EngineContextOptions = {}) => {
      const prefs = {
        ...(options.javaScriptEnabled === false ? { 'javascript.enabled': false } : {}),
        ...(globalPrivacyControl ? { 'privacy.globalprivacycontrol.enabled': true, 'privacy.globalprivacycontrol.functionality.enabled': true } : {}),
      };
      const proxy = await startProxy();
      const own = Object.keys(prefs).length ? await launchWith(prefs) : undefined;
      // The proxy answers every host from this machine, as the test hostnames need.
      const context = await (own ?? browser).newContext({ ...options, proxy: { server: `http://127.0.0.1:${proxy.port}`, bypass: '' } });
      if (own) context.on('close', () => void own.close());
      return recordingContext(context, proxy);
    },
    newPage: async (options?: Parameters<Browser['newPage']>[0]) => (await wrapped.newContext(options)).newPage(),
  });
  return wrapped;
}
