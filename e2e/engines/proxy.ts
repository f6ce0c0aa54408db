/**
 * The network view of a WebDriver-driven browser (WebKit), which offers no request events, no
 * request interception and no init scripts: the browser is pointed at this HTTP proxy (one per
 * browser session, so every request it sees belongs to one of that session's pages), which
 *  - forwards every request to this machine (so the test hostnames resolve here, as in the other engines),
 *  - reports each request, its answer and its failure as Playwright-shaped events,
 *  - lets tests hold, answer or refuse requests (page.route),
 *  - puts the page's init scripts (page.addInitScript) at the top of every HTML document it serves,
 *  - answers `/__e2e/*` itself: the console/error recorder's reports and a blank page per host,
 *  - while `offline` (context.setOffline), fails what would go to the network, as an offline
 *    browser does: a route's answer still comes, as a service worker's would.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';

export class ProxiedRequest {
  private answer?: { status: number; headers: Record<string, string> };
  failureText?: string;
  constructor(
    private readonly _url: string,
    private readonly _method: string,
    private readonly _headers: Record<string, string>,
    private readonly body: Buffer,
    private readonly answered: Promise<void>,
  ) {}
  url() {
    return this._url;
  }
  method() {
    return this._method;
  }
  postData(): string | null {
    return this.body.length ? this.body.toString('utf8') : null;
  }
  headers() {
    return this._headers;
  }
  async allHeaders() {
    return this._headers;
  }
  failure() {
    return this.failureText ? { errorText: this.failureText } : null;
  }
  async response() {
    await this.answered.catch(() => {});
    const answer = this.answer;
    return answer ? { status: () => answer.status, headers: () => answer.headers, url: () => this._url, request: () => this } : null;
  }
  /** @internal */
  answeredWith(status: number, headers: Record<string, string>) {
    this.answer = { status, headers };
  }
}

export class ProxiedRoute {
  handled = false;
  constructor(
    private readonly req: ProxiedRequest,
    private readonly forward: () => Promise<void>,
    private readonly respond: (status: number, headers: Record<string, string>, body: Buffer) => void,
    private readonly refuse: (reason: string) => void,
  ) {}
  request() {
    return this.req;
  }
  async continue() {
    this.handled = true;
    await this.forward();
  }
  async fallback() {
    return this.continue();
  }
  async fulfill(o: { status?: number; contentType?: string; body?: string | Buffer; headers?: Record<string, string> }) {
    this.handled = true;
    const headers = { ...(o.headers ?? {}), ...(o.contentType ? { 'content-type': o.contentType } : {}) };
    this.respond(o.status ?? 200, headers, Buffer.from(o.body ?? ''));
  }
  async abort(errorCode = 'failed') {
    this.handled = true;
    this.refuse(errorCode);
  }
}

type RouteMatcher = string | RegExp | ((url: URL) => boolean);
type RouteHandler = (route: ProxiedRoute, request: ProxiedRequest) => unknown;

/** Playwright's URL glob: `**` any characters, `*` any but `/`. */
function matches(matcher: RouteMatcher, url: string): boolean {
  if (typeof matcher === 'function') return matcher(new URL(url));
  if (matcher instanceof RegExp) return matcher.test(url);
  if (!matcher.includes('*')) return matcher === url;
  const re = matcher.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*\*/g, '\u0000').replace(/\*/g, '[^/]*').replace(/\u0000/g, '.*');
  return new RegExp(`^${re}$`).test(url);
}

/** The recorder every served document starts with: console calls and uncaught errors, reported synchronously. */
const RECORDER = `(function () {
  var send = function (type, text) {
    try {
      var x = new XMLHttpRequest();
      x.open('POST', '/__e2e/console?type=' + type, false);
      x.send(text);
    } catch (e) {}
  };
  var show = function (a) { try { return typeof a === 'string' ? a : a instanceof Error ? String(a) : JSON.stringify(a); } catch (e) { return String(a); } };
  ['log', 'info', 'warn', 'error', 'debug'].forEach(function (type) {
    var native = console[type];
    console[type] = function () {
      send(type === 'warn' ? 'warning' : type, Array.prototype.map.call(arguments, show).join(' '));
      return native.apply(console, arguments);
    };
  });
  addEventListener('error', function (e) { send('pageerror', e.error ? String(e.error) : e.message); });
  addEventListener('unhandledrejection', function (e) { send('pageerror', String(e.reason)); });
})();`;

/** Puts `scripts` first in `<head>` (after the doctype, so the document keeps its mode). */
function inject(html: string, scripts: string[], nonce?: string): string {
  // `</script` inside a script (in a string, say) would end the element: `<\/` means the same in JS.
  const tags = scripts.map((s) => `<script${nonce ? ` nonce="${nonce}"` : ''}>${s.replace(/<\/(script)/gi, '<\\/$1')}</script>`).join('');
  const head = /<head[^>]*>/i.exec(html);
  if (head) return html.slice(0, head.index + head[0].length) + tags + html.slice(head.index + head[0].length);
  const doctype = /^\s*<!doctype[^>]*>/i.exec(html);
  const at = doctype ? doctype[0].length : 0;
  return html.slice(0, at) + tags + html.slice(at);
}

export interface Proxy extends EventEmitter {
  port: number;
  initScripts: string[];
  offline: boolean;
  route(matcher: RouteMatcher, handler: RouteHandler): void;
  unroute(matcher: RouteMatcher, handler?: RouteHandler): void;
  close(): Promise<void>;
}

export async function startProxy(): Promise<Proxy> {
  const events = new EventEmitter() as Proxy;
  const routes: { matcher: RouteMatcher; handler: RouteHandler }[] = [];
  events.initScripts = [];
  events.offline = false;
  events.route = (matcher, handler) => void routes.unshift({ matcher, handler });
  events.unroute = (matcher, handler) => {
    for (let i = routes.length - 1; i >= 0; i--)
      if (String(routes[i].matcher) === String(matcher) && (!handler || routes[i].handler === handler)) routes.splice(i, 1);
  };

  const own = (req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer) => {
    if (url.pathname === '/__e2e/console') {
      events.emit('console', { type: url.searchParams.get('type')!, text: body.toString('utf8') });
      return res.writeHead(204).end();
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end('<!doctype html><link rel="icon" href="data:,"><title>blank</title>');
  };

  /** Answers the browser, with the init scripts in an HTML document. */
  const answer = (res: ServerResponse, status: number, headers: Record<string, string | string[] | undefined>, body: Buffer) => {
    const type = String(headers['content-type'] ?? '');
    if (type.startsWith('text/html')) {
      const csp = String(headers['content-security-policy'] ?? '');
      const nonce = /'nonce-([^']+)'/.exec(csp)?.[1];
      body = Buffer.from(inject(body.toString('utf8'), [RECORDER, ...events.initScripts], nonce));
      delete headers['content-encoding'];
    }
    delete headers['transfer-encoding'];
    headers['content-length'] = String(body.length);
    res.writeHead(status, headers).end(body);
  };

  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    // A proxy request names the whole URL; a direct one (no proxy in use) only the path.
    const url = new URL(req.url!, `http://${req.headers.host}`);
    if (url.pathname.startsWith('/__e2e/')) return own(req, res, url, body);

    let settle!: () => void;
    let fail!: (e: unknown) => void;
    const answered = new Promise<void>((resolve, reject) => ((settle = resolve), (fail = reject)));
    answered.catch(() => {}); // a failure is reported as an event; response() then answers null
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
    const request = new ProxiedRequest(url.href, req.method!, headers, body, answered);
    const done = (status: number, answerHeaders: Record<string, string>) => {
      request.answeredWith(status, answerHeaders);
      settle();
      events.emit('response', { status: () => status, url: () => url.href, request: () => request });
      events.emit('requestfinished', request);
    };
    const refuse = (reason: string) => {
      request.failureText = reason;
      fail(new Error(reason));
      events.emit('requestfailed', request);
      res.destroy();
    };
    const forward = () =>
      new Promise<void>((resolve) => {
        if (events.offline) return resolve(refuse('net::ERR_INTERNET_DISCONNECTED'));
        const upstream = http.request(
          { host: '127.0.0.1', port: url.port || 80, method: req.method, path: url.pathname + url.search, headers: { ...req.headers, host: url.host } },
          async (up) => {
            const parts: Buffer[] = [];
            for await (const part of up) parts.push(part);
            const upHeaders = { ...up.headers } as Record<string, string>;
            answer(res, up.statusCode!, upHeaders, Buffer.concat(parts));
            done(up.statusCode!, upHeaders);
            resolve();
          },
        );
        upstream.on('error', (e) => (refuse(String(e)), resolve()));
        upstream.end(body);
      });
    const respond = (status: number, answerHeaders: Record<string, string>, answerBody: Buffer) => {
      answer(res, status, { ...answerHeaders }, answerBody);
      done(status, answerHeaders);
    };

    events.emit('request', request);
    const route = routes.find((r) => matches(r.matcher, url.href));
    if (!route) return forward();
    const handle = new ProxiedRoute(request, forward, respond, refuse);
    try {
      await route.handler(handle, request);
    } catch {
      if (!handle.handled) refuse('route handler threw');
    }
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  events.port = (server.address() as AddressInfo).port;
  events.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return events;
}
