/**
 * WebKit for the e2e suite: Debian's WebKitGTK (MiniBrowser) driven over classic WebDriver
 * (WebKitWebDriver; this build has no BiDi and Playwright's own WebKit is not available), behind
 * the small part of Playwright's Browser / BrowserContext / Page API the specs use, so the same
 * specs run here unchanged. A context is a WebDriver session (its own browser process and cookie
 * jar) with its own recording proxy (./proxy.ts), which provides what WebDriver cannot: request
 * events, routes, init scripts, console messages and page errors (those the page's scripts make:
 * the browser's own console messages, such as a failed request's, are out of its sight).
 *
 * Offline emulation, which WebDriver lacks, is the context's own network namespace (./offline.ts).
 * What WebDriver cannot do at all — CDP sessions — throws a clear error here, and the tests that
 * need it carry a tag the webkit project leaves out (see playwright.config.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { Builder, By, type WebDriver } from 'selenium-webdriver';
import { startProxy, type Proxy, type ProxiedRequest } from './proxy';
import { openNetwork, type ContextNetwork } from './offline';
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

export class WebKitPage extends EventEmitter {
  private href = 'about:blank';
  private readonly initScripts: string[];

  constructor(
    private readonly driver: WebDriver,
    private readonly proxy: Proxy,
    private readonly owner: WebKitContext,
  ) {
    super();
    this.initScripts = proxy.initScripts;
    proxy.on('request', (r) => this.emit('request', r));
    proxy.on('requestfinished', (r) => this.emit('requestfinished', r));
    proxy.on('requestfailed', (r) => this.emit('requestfailed', r));
    proxy.on('response', (r) => this.emit('response', r));
    proxy.on('console', (m) => (m.type === 'pageerror' ? this.emit('pageerror', new Error(m.text)) : this.emit('console', new ConsoleMessage(m))));
  }

  context() {
    return this.owner;
  }

  /** Synchronous, as in Playwright: the URL as of the last call (every call brings it back). */
  url() {
    return this.href;
  }

  async goto(url: string, options: { waitUntil?: WaitUntil } = {}) {
    await this.navigate(() => this.driver.get(url), options.waitUntil);
    return null;
  }

  async reload(options: { waitUntil?: WaitUntil } = {}) {
    await this.navigate(() => this.driver.navigate().refresh(), options.waitUntil);
    return null;
  }

  async goBack(options: { waitUntil?: WaitUntil } = {}) {
    await this.navigate(() => this.driver.navigate().back(), options.waitUntil);
    return null;
  }

  /**
   * The session's page load strategy is 'none' (this build's 'eager' never lets a later command
   * run, and 'normal' would wait for scripts a test holds): the document being left is marked,
   * and the navigation is over once another document (new, or restored from the back/forward
   * cache) has reached `waitUntil`.
   */
  private async navigate(start: () => Promise<unknown>, waitUntil: WaitUntil = 'load') {
    const left = Math.random().toString(36).slice(2);
    await this.driver.executeScript(`window.__e2eLeft = '${left}'`).catch(() => {});
    await start();
    const ready = waitUntil === 'commit' ? ['loading', 'interactive', 'complete'] : waitUntil === 'domcontentloaded' ? ['interactive', 'complete'] : ['complete'];
    await this.waitForFunction(
      ([left, ready]: [string, string[]]) => (window as any).__e2eLeft !== left && ready.includes(document.readyState),
      [left, ready],
    );
  }

  async evaluate<R>(fn: PageFunction, arg?: unknown, truthy = false): Promise<R> {
    const script = evaluateScript(fn, typeof fn === 'string', truthy);
    const answer = JSON.parse(await this.driver.executeScript<string>(script, arg ?? null), (k, v) => (v === '\u0000undefined' ? undefined : v));
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
    while (!wanted((this.href = await this.driver.getCurrentUrl().catch(() => this.href)))) {
      if (Date.now() > until) throw new Error(`page.waitForURL: ${url} not reached; at ${this.href}`);
      await pause(POLL_MS);
    }
    await this.waitForFunction(() => document.readyState === 'complete');
  }

  async click(selector: string) {
    await this.driver.findElement(By.css(selector)).click();
  }

  locator(selector: string) {
    return { count: () => this.evaluate<number>((s) => document.querySelectorAll(s as string).length, selector) };
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
    await this.driver.close().catch(() => {});
  }
}

export class WebKitContext {
  private page?: WebKitPage;
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
    const network = await openNetwork();
    const proxy = await startProxy();
    await network.reach(proxy.port);
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
      const { url, process: driverProcess } = await startDriver(env, network);
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

  async newPage() {
    if (this.page) throw new Error('WebKit harness: one page per context (WebDriver cannot tell tabs apart in the network)');
    return (this.page = new WebKitPage(this.driver, this.proxy, this));
  }

  pages() {
    return this.page ? [this.page] : [];
  }

  /** The cookies the current document's host can see (WebDriver has no view of the whole jar). */
  async cookies() {
    const jar = await this.driver.manage().getCookies();
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

  /** WebDriver adds cookies only for the current document's host: a blank page there first. */
  async addCookies(cookies: { name: string; value: string; url?: string; domain?: string; path?: string; expires?: number; sameSite?: string }[]) {
    for (const c of cookies) {
      const host = c.url ? new URL(c.url).hostname : c.domain!.replace(/^\./, '');
      const current = await this.driver.getCurrentUrl();
      if (!current.startsWith('http') || new URL(current).hostname !== host) await this.driver.get(`http://${host}/__e2e/blank`);
      await this.driver.manage().addCookie({
        name: c.name,
        value: c.value,
        path: c.path ?? '/',
        ...(c.url ? {} : { domain: c.domain }),
        ...(c.expires && c.expires > 0 ? { expiry: Math.round(c.expires) } : {}),
        ...(c.sameSite ? { sameSite: c.sameSite } : {}),
      });
    }
  }

  /**
   * As in the other engines: requests fail at once (the proxy), and navigator.onLine follows the
   * namespace's route, which WebKit hears of a moment later (GLib's network monitor, then WebKit's
   * own debounce of about 2 s): this resolves once the page sees it.
   */
  async setOffline(offline: boolean) {
    this.proxy.offline = offline;
    await this.network.setOnline(!offline);
    if (!(await this.driver.getAllWindowHandles().catch(() => [])).length) return;
    const until = Date.now() + WAIT_MS;
    while ((await this.driver.executeScript('return navigator.onLine').catch(() => undefined)) !== !offline) {
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
