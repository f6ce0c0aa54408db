/**
 * WebKit for the e2e suite: Debian's WebKitGTK (MiniBrowser) driven over classic WebDriver
 * (WebKitWebDriver; this build has no BiDi and Playwright's own WebKit is not available), behind
 * the small part of Playwright's Browser / BrowserContext / Page API the specs use, so the same
 * specs run here unchanged. A context is a WebDriver session (its own browser process and cookie
 * jar), each of its pages a window of it, with its own recording proxy (./proxy.ts), which
 * provides what WebDriver cannot: request events, routes, init scripts, console messages and page
 * errors (those the page's scripts make: the browser's own console messages, such as a failed
 * request's, are out of its sight).
 *
 * Offline emulation, which WebDriver lacks, is the context's own network namespace (./offline.ts).
 * What WebDriver cannot do at all — CDP sessions — throws a clear error here, and the tests that
 * need it carry a tag the webkit project leaves out (see playwright.config.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { Builder, By, Origin, type WebDriver, type WebElement } from 'selenium-webdriver';
import { startProxy, type Proxy, type ProxiedRequest } from './proxy';
import { hostNetwork, openNetwork, type ContextNetwork } from './offline';
import { ENGINE_PATHS } from './paths';

const POLL_MS = 50;
const WAIT_MS = 25_000;
const SESSION_MS = 15_000;
const SCRIPT_MS = 8_000;
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts a helper process that ends with this worker, however the worker ends. */
function child(command: string, args: string[], options: Parameters<typeof spawn>[2]): ChildProcess {
  const started = spawn(command, args, options);
  const stop = () => started.kill();
  process.once('exit', stop);
  started.once('exit', () => process.off('exit', stop));
  return started;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** An X display for the browser windows: the caller's, or a private Xvfb (without one a session hangs). */
async function display(): Promise<{ name: string; stop(): void }> {
  if (process.env.DISPLAY) return { name: process.env.DISPLAY, stop() {} };
  const xvfb = child('Xvfb', ['-displayfd', '3', '-screen', '0', '1280x800x24', '-nolisten', 'tcp'], { stdio: ['ignore', 'ignore', 'ignore', 'pipe'] });
  const number = await new Promise<string>((resolve, reject) => {
    xvfb.once('error', reject);
    xvfb.stdio[3]!.once('data', (d) => resolve(String(d).trim()));
  });
  return { name: ':' + number, stop: () => xvfb.kill() };
}

/** The driver (and so the browser it starts) inside the context's network, reached at the same port here. */
async function startDriver(env: NodeJS.ProcessEnv, network: ContextNetwork): Promise<{ url: string; process: ChildProcess }> {
  const port = await freePort();
  await network.expose(port);
  const driver = child(...network.inside(ENGINE_PATHS.webkitDriver, [`--port=${port}`, '--host=127.0.0.1']), { env, stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    if (await fetch(`${url}/status`).then((r) => r.ok, () => false)) return { url, process: driver };
    await pause(POLL_MS);
  }
  driver.kill();
  throw new Error(`WebKitWebDriver did not start at ${url}`);
}

/**
 * The WebDriver script that runs `fn(arg)` (or the script `fn`) in the page and brings back its
 * value with the page's URL, keeping `undefined` (WebDriver turns it into null). The function's
 * source is part of the script itself: no eval in the page, which a strict CSP would refuse.
 */
function evaluateScript(fn: string | Function, expression: boolean, truthy = false): string {
  const called = expression ? `(0, eval)(${JSON.stringify(fn)})` : `(${fn})(arguments[0])`;
  // waitForFunction asks only whether the value is truthy (a function, say, has no JSON form).
  const run = truthy ? `Promise.resolve(${called}).then(function (v) { return !!v; })` : called;
  // WebDriver's execute awaits a returned promise (its execute-async hangs in this build).
  return `
  var pack = function (r) {
    return JSON.stringify(r, function (k, v) { return v === undefined ? '\\u0000undefined' : v; });
  };
  var fail = function (e) { return pack({ href: location.href, error: String(e) + (e && e.stack ? '\\n' + e.stack : '') }); };
  try {
    return Promise.resolve(${run}).then(function (v) { return pack({ href: location.href, value: v }); }, fail);
  } catch (e) {
    return fail(e);
  }`;
}

type WaitUntil = 'load' | 'domcontentloaded' | 'commit' | 'networkidle';
type PageFunction = string | ((arg: any) => unknown);

class ConsoleMessage {
  constructor(private readonly message: { type: string; text: string }) {}
  type() {
    return this.message.type;
  }
  text() {
    return this.message.text;
  }
}

/** A WebDriver command, run with the session switched to the window it belongs to. */
type Command<T> = (driver: WebDriver) => Promise<T>;

/** A locator's chain: a CSS selector, an ARIA role (with its accessible name), the nth match. */
type Step = { css: string } | { role: string; name?: string; exact?: boolean } | { nth: number };
/** An element a locator found, with what its methods read of it (one round trip). */
type Found = { element: WebElement; visible: boolean; text: string };

/**
 * Runs in the page (its source is the script): what `steps` select, as Playwright's locators do for
 * the specs' uses — a role matches its implicit elements too; a name is a case-insensitive substring
 * of the accessible name (or, with `exact`, all of it); getByRole leaves out what is hidden.
 */
function selectElements(steps: Step[]) {
  const implicit: Record<string, string> = {
    button: 'button, input[type=button], input[type=submit], input[type=reset], input[type=image]',
    link: 'a[href], area[href]',
  };
  const squash = (s: string | null) => (s ?? '').replace(/\s+/g, ' ').trim();
  const visible = (el: Element) => el.getClientRects().length > 0 && getComputedStyle(el).visibility == 'visible';
  const accessibleName = (el: Element) => {
    const labelledBy = el.getAttribute('aria-labelledby');
    if (el.getAttribute('aria-label')) return squash(el.getAttribute('aria-label'));
    if (labelledBy) return squash(labelledBy.split(/\s+/).map((id) => document.getElementById(id)?.textContent ?? '').join(' '));
    if (el instanceof HTMLInputElement) return squash(el.value || el.alt);
    return squash(el.textContent) || squash(el.getAttribute('title'));
  };
  const named = (el: Element, name: string, exact?: boolean) =>
    exact ? accessibleName(el) === name : accessibleName(el).toLowerCase().includes(name.toLowerCase());
  let found: Element[] = [document.documentElement];
  for (const step of steps) {
    if ('nth' in step) {
      found = found.slice(step.nth, step.nth + 1);
      continue;
    }
    const selector = 'css' in step ? step.css : [`[role=${step.role}]`, implicit[step.role]].filter(Boolean).join(', ');
    const within = found.flatMap((root) => Array.from(root.querySelectorAll(selector)));
    found = within.filter((el, i) => within.indexOf(el) === i);
    if ('role' in step)
      found = found.filter((el) => !el.closest('[aria-hidden=true]') && visible(el) && (step.name == null || named(el, step.name, step.exact)));
  }
  return found.map((element) => ({ element, visible: visible(element), text: element.textContent ?? '' }));
}

/** Runs in the page: the element scrolled into view, and the middle of its box if the element itself is there. */
function clickPoint(element: Element) {
  element.scrollIntoView({ block: 'nearest', inline: 'nearest' });
  const box = element.getBoundingClientRect();
  const [x, y] = [Math.round(box.left + box.width / 2), Math.round(box.top + box.height / 2)];
  const hit = document.elementFromPoint(x, y);
  return hit && element.contains(hit) ? { x, y } : null;
}

/**
 * The part of Playwright's Locator the specs use. As there, elements are looked up afresh at every
 * call, an action waits until exactly one visible element matches, and more than one is an error.
 */
class WebKitLocator {
  constructor(
    private readonly page: WebKitPage,
    private readonly steps: Step[],
  ) {}

  locator(selector: string) {
    return new WebKitLocator(this.page, [...this.steps, { css: selector }]);
  }

  getByRole(role: string, options: { name?: string; exact?: boolean } = {}) {
    return new WebKitLocator(this.page, [...this.steps, { role, ...options }]);
  }

  first() {
    return this.nth(0);
  }

  nth(index: number) {
    return new WebKitLocator(this.page, [...this.steps, { nth: index }]);
  }

  async count() {
    return (await this.find()).length;
  }

  async isVisible() {
    const [element] = this.strict(await this.find());
    return !!element?.visible;
  }

  async textContent() {
    return this.one((found) => found.text, () => true);
  }

  /**
   * A pointer click at the middle of the element's box, as Playwright clicks (WebDriver's element
   * click aims at its first line box instead, which a link wrapping blocks does not have), once
   * nothing covers that point. It does not wait for a navigation it starts.
   */
  async click() {
    await this.one(
      async (found, driver) => {
        const point = await driver.executeScript<{ x: number; y: number } | null>(`return (${clickPoint})(arguments[0])`, found.element);
        if (!point) throw new Error('another element covers its middle');
        await driver.actions().move({ x: point.x, y: point.y, origin: Origin.VIEWPORT }).click().perform();
      },
      (found) => found.visible,
    );
  }

  toString() {
    return this.steps
      .map((s) => ('css' in s ? `locator(${JSON.stringify(s.css)})` : 'role' in s ? `getByRole(${JSON.stringify(s.role)}, ${JSON.stringify({ name: s.name, exact: s.exact })})` : `nth(${s.nth})`))
      .join('.');
  }

  private find() {
    return this.page.command((driver) => driver.executeScript<Found[]>(`return (${selectElements})(arguments[0])`, this.steps));
  }

  private strict(found: Found[]) {
    if (found.length > 1) throw new Error(`${this}: strict mode violation, ${found.length} elements match`);
    return found;
  }

  /** Waits until one element matches and is `ready`, then acts on it in the same command (its window). */
  private async one<T>(act: (found: Found, driver: WebDriver) => T | Promise<T>, ready: (found: Found) => boolean): Promise<T> {
    const until = Date.now() + WAIT_MS;
    let last: unknown;
    for (;;) {
      const outcome = await this.page
        .command(async (driver) => {
          const found = this.strict(await driver.executeScript<Found[]>(`return (${selectElements})(arguments[0])`, this.steps));
          return found.length && ready(found[0]) ? { value: await act(found[0], driver) } : undefined;
        })
        .catch((e) => {
          if (String(e).includes('strict mode violation')) throw e;
          last = e; // a navigation under way replaced the document, or the element is covered: again
        });
      if (outcome) return outcome.value;
      if (Date.now() > until) throw new Error(`${this}: no single ready element after ${WAIT_MS} ms${last ? `: ${last}` : ''}`);
      await pause(POLL_MS);
    }
  }
}

/**
 * A page is a window of its context's WebDriver session: its own document, history and visibility,
 * the context's cookies and storage. Its network view is its context's (one proxy per session cannot
 * tell windows apart): requests, routes, init scripts and console messages of every page in the
 * context reach every page's listeners.
 */
export class WebKitPage extends EventEmitter {
  private href = 'about:blank';
  private readonly initScripts: string[];
  private readonly detach: () => void;

  constructor(
    private readonly proxy: Proxy,
    private readonly owner: WebKitContext,
    /** @internal Its window's WebDriver handle. */
    readonly handle: string,
  ) {
    super();
    this.initScripts = proxy.initScripts;
    const listeners: Record<string, (value: any) => void> = {
      request: (r) => this.emit('request', r),
      requestfinished: (r) => this.emit('requestfinished', r),
      requestfailed: (r) => this.emit('requestfailed', r),
      response: (r) => this.emit('response', r),
      console: (m) => (m.type === 'pageerror' ? this.emit('pageerror', new Error(m.text)) : this.emit('console', new ConsoleMessage(m))),
    };
    for (const [event, listener] of Object.entries(listeners)) proxy.on(event, listener);
    this.detach = () => Object.entries(listeners).forEach(([event, listener]) => proxy.off(event, listener));
  }

  /** @internal Runs a WebDriver command in this page's window (commands of all pages take turns). */
  command<T>(run: Command<T>): Promise<T> {
    return this.owner.command(this.handle, run);
  }

  context() {
    return this.owner;
  }

  /** Synchronous, as in Playwright: the URL as of the last call (every call brings it back). */
  url() {
    return this.href;
  }

  async goto(url: string, options: { waitUntil?: WaitUntil } = {}) {
    await this.navigate((d) => d.get(url), options.waitUntil);
    return null;
  }

  async reload(options: { waitUntil?: WaitUntil } = {}) {
    await this.navigate((d) => d.navigate().refresh(), options.waitUntil);
    return null;
  }

  async goBack(options: { waitUntil?: WaitUntil } = {}) {
    await this.navigate((d) => d.navigate().back(), options.waitUntil);
    return null;
  }

  /**
   * The session's page load strategy is 'none' (this build's 'eager' never lets a later command
   * run, and 'normal' would wait for scripts a test holds): the document being left is marked,
   * and the navigation is over once another document (new, or restored from the back/forward
   * cache) has reached `waitUntil`.
   */
  private async navigate(start: Command<unknown>, waitUntil: WaitUntil = 'load') {
    const left = Math.random().toString(36).slice(2);
    await this.command(async (d) => {
      await d.executeScript(`window.__e2eLeft = '${left}'`).catch(() => {});
      await start(d);
    });
    const ready = waitUntil === 'commit' ? ['loading', 'interactive', 'complete'] : waitUntil === 'domcontentloaded' ? ['interactive', 'complete'] : ['complete'];
    await this.waitForFunction(
      ([left, ready]: [string, string[]]) => (window as any).__e2eLeft !== left && ready.includes(document.readyState),
      [left, ready],
    );
  }

  async evaluate<R>(fn: PageFunction, arg?: unknown, truthy = false): Promise<R> {
    const script = evaluateScript(fn, typeof fn === 'string', truthy);
    const packed = await this.command((d) => d.executeScript<string>(script, arg ?? null));
    const answer = JSON.parse(packed, (k, v) => (v === '\u0000undefined' ? undefined : v));
    this.href = answer.href;
    if ('error' in answer) throw new Error(`page.evaluate: ${answer.error}`);
    return answer.value as R;
  }

  async waitForFunction(fn: PageFunction, arg?: unknown) {
    const until = Date.now() + WAIT_MS;
    for (;;) {
      try {
        const value = await this.evaluate(fn, arg, true);
        if (value) return value;
      } catch (e) {
        // A navigation under way replaces the document the script was sent to: try again.
        if (Date.now() > until) throw e;
      }
      if (Date.now() > until) throw new Error(`page.waitForFunction: still false after ${WAIT_MS} ms: ${String(fn).slice(0, 200)}`);
      await pause(POLL_MS);
    }
  }

  async waitForURL(url: string | RegExp) {
    const until = Date.now() + WAIT_MS;
    const wanted = (u: string) => (typeof url === 'string' ? u === url : url.test(u));
    // WebDriver's click does not wait for the navigation it starts: poll for the new document.
    while (!wanted((this.href = await this.command((d) => d.getCurrentUrl()).catch(() => this.href)))) {
      if (Date.now() > until) throw new Error(`page.waitForURL: ${url} not reached; at ${this.href}`);
      await pause(POLL_MS);
    }
    await this.waitForFunction(() => document.readyState === 'complete');
  }

  async click(selector: string) {
    await this.command(async (d) => d.findElement(By.css(selector)).click());
  }

  locator(selector: string) {
    return new WebKitLocator(this, [{ css: selector }]);
  }

  getByRole(role: string, options: { name?: string; exact?: boolean } = {}) {
    return new WebKitLocator(this, [{ role, ...options }]);
  }

  async addInitScript(script: PageFunction | { content: string }, arg?: unknown) {
    const source =
      typeof script === 'function' ? `(${script})(${JSON.stringify(arg)});` : typeof script === 'string' ? script : script.content;
    this.initScripts.push(source);
  }

  async route(url: string | RegExp, handler: (route: any, request: ProxiedRequest) => unknown) {
    this.proxy.route(url, handler);
  }

  async unroute(url: string | RegExp, handler?: (route: any, request: ProxiedRequest) => unknown) {
    this.proxy.unroute(url, handler);
  }

  waitForEvent<T>(event: string, predicate: (value: T) => boolean = () => true): Promise<T> {
    return new Promise((resolve) => {
      const listener = (value: T) => {
        if (!predicate(value)) return;
        this.off(event, listener);
        resolve(value);
      };
      this.on(event, listener);
    });
  }

  waitForRequest(predicate: (r: ProxiedRequest) => boolean) {
    return this.waitForEvent('request', predicate);
  }

  waitForResponse(predicate: (r: any) => boolean) {
    return this.waitForEvent('response', predicate);
  }

  /** Closes the window (its pagehide runs, its beacons leave); the session ends with the context. */
  async close() {
    this.detach();
    await this.owner.closePage(this);
  }
}

export class WebKitContext {
  private readonly open: WebKitPage[] = [];
  /** Windows no page holds: the session's first until a page takes it, the one kept when the last page closes. */
  private readonly spare: string[] = [];
  /** The window the session's commands go to, as far as this side knows (none after a close). */
  private current?: string;
  private queue: Promise<unknown> = Promise.resolve();
  private started = false;
  private closed = false;

  constructor(
    private readonly driver: WebDriver,
    private readonly proxy: Proxy,
    private readonly driverProcess: ChildProcess,
    private readonly network: ContextNetwork,
  ) {}

  /**
   * A WebKitWebDriver holds one session at a time: each context has its own. Now and then (on a
   * busy machine) a new session never answers: it gets a few seconds, then a fresh driver.
   */
  static async open(env: NodeJS.ProcessEnv, options: { javaScriptEnabled?: boolean } = {}) {
    const network = await openNetwork().catch(hostNetwork);
    const proxy = await startProxy();
    try {
      await network.reach(proxy.port);
    } catch (error) {
      await proxy.close();
      network.close();
      throw error;
    }
    const args = ['--automation', '--enable-page-cache=true'];
    if (options.javaScriptEnabled === false) args.push('--enable-javascript-markup=false');
    const capabilities = {
      browserName: 'MiniBrowser',
      pageLoadStrategy: 'none',
      // Every request goes through the proxy, localhost included.
      proxy: { proxyType: 'manual', httpProxy: `127.0.0.1:${proxy.port}`, noProxy: [] },
      'webkitgtk:browserOptions': { binary: ENGINE_PATHS.webkitBrowser, args },
    };
    for (let attempt = 1; ; attempt++) {
      const { url, process: driverProcess } = await startDriver(env, network).catch(async (error) => {
        await proxy.close();
        network.close();
        throw error;
      });
      const session = new Builder().usingServer(url).withCapabilities(capabilities).build();
      const driver = await Promise.race([session, pause(SESSION_MS).then(() => undefined)]).catch(() => undefined);
      if (driver) {
        // A script sent while a page is restored from the back/forward cache can hang: it fails
        // after SCRIPT_MS, and waitForFunction's polling sends the next one.
        await driver.manage().setTimeouts({ script: SCRIPT_MS, pageLoad: WAIT_MS });
        return new WebKitContext(driver, proxy, driverProcess, network);
      }
      session.then((d) => d.quit(), () => {}).finally(() => driverProcess.kill());
      if (attempt == 3) {
        await proxy.close();
        network.close();
        throw new Error(`WebKit harness: no WebDriver session after ${attempt} tries of ${SESSION_MS} ms`);
      }
    }
  }

  /**
   * Runs `run` with the session in the window `handle` (without one: the window last used), one
   * command at a time, so that one page's switch and command never interleave with another's.
   * (A command must not wait for another: it would wait for itself.)
   */
  command<T>(handle: string | undefined, run: Command<T>): Promise<T> {
    const result = this.queue.then(async () => {
      if (!this.started) {
        this.started = true;
        this.spare.push((this.current = await this.driver.getWindowHandle()));
      }
      const target = handle ?? this.current ?? this.open[0]?.handle ?? this.spare[0];
      if (target !== this.current) {
        await this.driver.switchTo().window(target);
        this.current = target;
      }
      return run(this.driver);
    });
    this.queue = result.catch(() => {});
    return result;
  }

  /** In a command: opens a window and makes it the current one. */
  private async openWindow(driver: WebDriver) {
    await driver.switchTo().newWindow('window');
    return (this.current = await driver.getWindowHandle());
  }

  /** In a command: closes the current window and goes back to `back`. */
  private async closeWindow(driver: WebDriver, back?: string) {
    await driver.close();
    this.current = undefined;
    if (back) await driver.switchTo().window((this.current = back));
  }

  /**
   * A page in a window of its own, with the session's cookies and storage. A window, not a tab:
   * WebKitGTK keeps a background tab's document hidden, and Playwright's pages are all visible.
   */
  async newPage() {
    const handle = await this.command(undefined, (d) => (this.spare.length ? Promise.resolve(this.spare.shift()!) : this.openWindow(d)));
    const page = new WebKitPage(this.proxy, this, handle);
    this.open.push(page);
    return page;
  }

  pages() {
    return [...this.open];
  }

  /** @internal Closes a page's window, the last one's after opening a blank one: WebDriver ends a session with its last window. */
  async closePage(page: WebKitPage) {
    if (!this.open.includes(page)) return;
    this.open.splice(this.open.indexOf(page), 1);
    await this.command(page.handle, async (d) => {
      if (!this.open.length && !this.spare.length) {
        this.spare.push(await this.openWindow(d));
        await d.switchTo().window((this.current = page.handle));
      }
      await this.closeWindow(d);
    }).catch(() => {});
  }

  /** The cookies the document in the window last used can see (WebDriver has no view of the whole jar). */
  async cookies() {
    const jar = await this.command(undefined, (d) => d.manage().getCookies());
    return jar.map((c) => ({
      name: c.name,
      value: c.value,
      domain: c.domain ?? '',
      path: c.path ?? '/',
      expires: typeof c.expiry === 'number' ? c.expiry : c.expiry instanceof Date ? c.expiry.getTime() / 1000 : -1,
      httpOnly: !!c.httpOnly,
      secure: !!c.secure,
      sameSite: (c.sameSite ?? 'None') as 'Strict' | 'Lax' | 'None',
    }));
  }

  /**
   * WebDriver adds a cookie only from a document of its host (host-only, given by `url`) or
   * domain: where the window last used shows none, the cookie is added from a blank page of that
   * host in a helper window, so that, as in Playwright, no page is navigated.
   */
  async addCookies(cookies: { name: string; value: string; url?: string; domain?: string; path?: string; expires?: number; sameSite?: string }[]) {
    for (const c of cookies) {
      const host = c.url ? new URL(c.url).hostname : c.domain!.replace(/^\./, '');
      const fits = (here: string) => here === host || (!c.url && here.endsWith('.' + host));
      const cookie = {
        name: c.name,
        value: c.value,
        path: c.path ?? '/',
        ...(c.url ? {} : { domain: c.domain }),
        ...(c.expires && c.expires > 0 ? { expiry: Math.round(c.expires) } : {}),
        ...(c.sameSite ? { sameSite: c.sameSite } : {}),
      };
      await this.command(undefined, async (d) => {
        const here = await d.getCurrentUrl();
        if (here.startsWith('http') && fits(new URL(here).hostname)) return d.manage().addCookie(cookie);
        const back = this.current;
        await this.openWindow(d);
        try {
          await d.get(`http://${host}/__e2e/blank`);
          for (const until = Date.now() + WAIT_MS; !(await d.executeScript('return location.hostname == arguments[0] && document.readyState == "complete"', host)); ) {
            if (Date.now() > until) throw new Error(`WebKit harness: no blank page at ${host} to add a cookie from`);
            await pause(POLL_MS);
          }
          await d.manage().addCookie(cookie);
        } finally {
          await this.closeWindow(d, back);
        }
      });
    }
  }

  /** Deletes the cookies (all, or those of one name) that the document in the window last used can see. */
  async clearCookies(filter: { name?: string } = {}) {
    await this.command(undefined, (d) => (filter.name ? d.manage().deleteCookie(filter.name) : d.manage().deleteAllCookies()));
  }

  /**
   * As in the other engines: requests fail at once (the proxy), and navigator.onLine follows the
   * namespace's route, which WebKit hears of a moment later (GLib's network monitor, then WebKit's
   * own debounce of about 2 s): this resolves once the window last used sees it.
   */
  async setOffline(offline: boolean) {
    this.proxy.offline = offline;
    await this.network.setOnline(!offline);
    const onLine = () => this.command(undefined, (d) => d.executeScript('return navigator.onLine')).catch(() => undefined);
    const until = Date.now() + WAIT_MS;
    while ((await onLine()) !== !offline) {
      if (Date.now() > until) throw new Error(`WebKit harness: navigator.onLine not ${!offline} ${WAIT_MS} ms after the route changed`);
      await pause(POLL_MS);
    }
  }

  async newCDPSession(): Promise<never> {
    throw new Error('WebKit harness: CDP is Chromium only');
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    await this.driver.quit().catch(() => {});
    this.driverProcess.kill();
    this.network.close();
    await this.proxy.close();
  }
}

/** The worker's WebKit: one X display; each context is a WebDriver session with its own browser. */
export class WebKitBrowser {
  /** Read by Playwright's context fixture. */
  readonly _connection = { headers: undefined };
  private readonly contexts = new Set<WebKitContext>();

  private constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly stop: () => void,
  ) {}

  static async launch() {
    const screen = await display();
    return new WebKitBrowser({ ...process.env, DISPLAY: screen.name }, screen.stop);
  }

  async newContext(options: { javaScriptEnabled?: boolean } = {}) {
    const context = await WebKitContext.open(this.env, options);
    this.contexts.add(context);
    return context;
  }

  async newPage() {
    return (await this.newContext()).newPage();
  }

  version() {
    return 'WebKitGTK';
  }

  async close() {
    await Promise.all([...this.contexts].map((c) => c.close()));
    this.stop();
  }
}
