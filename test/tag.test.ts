/**
 * The built tag bundle dist/ping.min.js in jsdom (SPEC §1): the queue shapes it drains, what
 * `window.spdt` becomes, loading twice, and the endpoint taken from the script's src.
 * Each test evaluates the bundle afresh; tags of earlier tests are retired with
 * `consent('denied')` so that their listeners stay silent.
 */
import { execSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { snippet } from '../src/snippet';
import {
  KEY, ORIGIN, T0, actions, advance, captureConsole, delivered, eventIds, flush, installBeacon, parseBody,
  resetPage, type Beacon,
} from './helpers/pixel';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BUNDLE = join(ROOT, 'dist', 'ping.min.js');
const CDN_SRC = 'https://cdn.example.com/px/ping.min.js';

let code = '';
let beacon: Beacon;
const w = window as any;

/**
 * Evaluates the bundle in the page, as a `<script>` would run it. jsdom has no current script under
 * eval, so the test supplies what a browser would: the `#spdt-capture` element, when there is one.
 */
const loadTag = () => {
  const script = document.getElementById('spdt-capture');
  Object.defineProperty(document, 'currentScript', { configurable: true, get: () => script });
  try {
    w.eval(code);
  } finally {
    delete (document as any).currentScript;
  }
};

/** Spotify's function stub, exactly as its snippet defines it. */
function spotifyStub(): void {
  w.spdt = w.spdt || function () {
    // eslint-disable-next-line prefer-rest-params
    (w.spdt.q = w.spdt.q || []).push(arguments);
  };
}

/** Spotify's whole snippet (SPEC §1), unchanged but for its src. */
const spotifySnippet = (src: string) => `
(function(w, d){
  var id='spdt-capture', n='script';
  if (!d.getElementById(id)) {
    w.spdt = w.spdt || function() { (w.spdt.q = w.spdt.q || []).push(arguments); };
    var e = d.createElement(n); e.id = id; e.async = 1;
    e.src = '${src}';
    var s = d.getElementsByTagName(n)[0]; s.parentNode.insertBefore(e, s);
  }
  w.spdt('conf', { key: '${KEY}' });
  w.spdt('view');
})(window, document);`;

/** The inline script of the project's own snippet (src/snippet.ts). */
function ownSnippetScript(src: string): string {
  const match = snippet({ key: KEY, src }).match(/<script[^>]*>([\s\S]*?)<\/script>/);
  if (!match) throw new Error('no inline script in the snippet');
  return match[1];
}

/** An `arguments` object, as Spotify's stub queues it. */
function args(..._values: unknown[]): IArguments {
  // eslint-disable-next-line prefer-rest-params
  return arguments;
}

function addCaptureScript(src: string): void {
  const script = document.createElement('script');
  script.id = 'spdt-capture';
  script.src = src;
  document.head.appendChild(script);
}

beforeAll(() => {
  if (!existsSync(BUNDLE)) {
    try {
      execSync('npm run build', { cwd: ROOT, stdio: 'inherit' });
    } catch (error) {
      // The build also checks the size budget (its own test); a bundle that was written is enough here.
      if (!existsSync(BUNDLE)) throw error;
    }
  }
  code = readFileSync(BUNDLE, 'utf8');
}, 180_000);

beforeEach(() => {
  resetPage();
  vi.useFakeTimers({ now: T0 });
  beacon = installBeacon(true);
  captureConsole('warn');
});

afterEach(() => {
  if (typeof w.spdt == 'function' && w.spdt.on) {
    w.spdt('conf', { debug: false });
    w.spdt('consent', 'denied');
  }
  delete w.spdt;
  document.querySelectorAll('script').forEach((s) => s.remove());
  vi.useRealTimers();
  vi.restoreAllMocks();
  resetPage();
});

// =============================================================================================
describe("§1 Spotify's function stub (spdt.q of arguments objects)", () => {
  it('drains the queue in call order, exactly once', async () => {
    spotifyStub();
    w.spdt('conf', { key: KEY });
    w.spdt('custom', { event_name: 'first' });
    w.spdt('signup', { event_id: 'second' });
    w.spdt('view');
    loadTag();
    await flush();
    expect(actions(beacon)).toEqual(['custom', 'signup', 'view']);
    expect(delivered(beacon)[0].body.event_name).toBe('first');
    expect(delivered(beacon)[1].event_id).toBe('second');

    loadTag(); // a second copy of the bundle
    await advance(10_000);
    expect(actions(beacon)).toEqual(['custom', 'signup', 'view']);
  });

  it("its entries take the bundle's load time and URL", async () => {
    spotifyStub();
    w.spdt('conf', { key: KEY });
    w.spdt('view');
    history.replaceState(null, '', '/later');
    vi.setSystemTime(T0 + 3000);
    loadTag();
    await flush();
    const [view] = delivered(beacon);
    expect(view.time).toBe(T0 + 3000);
    expect(view.body.url).toBe(ORIGIN + '/later');
  });

  it('the snippet, pasted unchanged, sends its view to the directory of its script src', async () => {
    document.head.appendChild(document.createElement('script')); // the page's first script
    w.eval(spotifySnippet(CDN_SRC));
    loadTag();
    await flush();
    expect(beacon.calls.map((c) => c.url)).toEqual(['https://cdn.example.com/px/v1/ingest']);
    expect(delivered(beacon).map((e) => [e.item.pid, e.action])).toEqual([[KEY, 'view']]);
  });

  it("a snippet pasted twice loads one bundle and its second view is dropped", async () => {
    document.head.appendChild(document.createElement('script'));
    w.eval(spotifySnippet(CDN_SRC));
    w.eval(spotifySnippet(CDN_SRC));
    expect(document.querySelectorAll('#spdt-capture')).toHaveLength(1);
    loadTag();
    await flush();
    expect(actions(beacon)).toEqual(['view']);
  });

  it('a page script holding the old stub still reaches the pixel', async () => {
    spotifyStub();
    const old = w.spdt;
    old('conf', { key: KEY });
    loadTag();
    expect(w.spdt).not.toBe(old);
    old('signup', { event_id: 'after-load' });
    await flush();
    expect(eventIds(beacon)).toEqual(['after-load']);
  });
});

// =============================================================================================
describe("§1 the project's own snippet ([time, url, arguments] entries)", () => {
  it('queued calls keep their own time and URL, and the click id in a queued URL is captured', async () => {
    history.replaceState(null, '', '/landing?spclid=CLK-1');
    w.eval(ownSnippetScript('https://cdn.example.com/ping.min.js')); // queues conf and view
    history.replaceState(null, '', '/products/9'); // the app changes route before the tag loads
    vi.setSystemTime(T0 + 2500);
    loadTag();
    await flush();
    expect(beacon.calls.map((c) => c.url)).toEqual(['https://cdn.example.com/v1/ingest']);
    const [view] = delivered(beacon);
    expect(view.action).toBe('view');
    expect(view.time).toBe(T0);
    expect(view.body.url).toBe(ORIGIN + '/landing?spclid=CLK-1');
    expect(view.item.cid).toBe('CLK-1');
  });

  it('a page script holding the old stub still reaches the pixel', async () => {
    w.eval(ownSnippetScript('https://cdn.example.com/ping.min.js'));
    const old = w.spdt;
    loadTag();
    await flush();
    old('signup', { event_id: 'late' });
    await flush();
    expect(eventIds(beacon).at(-1)).toBe('late');
    expect(actions(beacon)).toEqual(['view', 'signup']);
  });
});

// =============================================================================================
describe('§1 the object stub (spdt._q of [method, ...args])', () => {
  /** The older object stub: each method queues `[method, ...args]` in `_q`. */
  const objectStub = (queue: unknown[][]) => ({
    _q: queue,
    emit(...a: unknown[]) {
      this._q.push(['emit', ...a]);
    },
    on(...a: unknown[]) {
      this._q.push(['on', ...a]);
    },
    off(...a: unknown[]) {
      this._q.push(['off', ...a]);
    },
  });

  it('drains emit and on entries: the listener sees the send', async () => {
    const sends: any[] = [];
    w.spdt = objectStub([['emit', 'conf', { key: KEY }], ['emit', 'view'], ['on', 'send', (info: unknown) => sends.push(info)]]);
    loadTag();
    await flush();
    expect(actions(beacon)).toEqual(['view']);
    expect(sends).toEqual([{ transport: 'beacon', url: ORIGIN + '/v1/ingest', body: beacon.calls[0].body }]);
  });

  it('an off entry removes the listener', async () => {
    const sends: unknown[] = [];
    const fn = (info: unknown) => sends.push(info);
    w.spdt = objectStub([['emit', 'conf', { key: KEY }], ['on', 'send', fn], ['off', 'send', fn], ['emit', 'view']]);
    loadTag();
    await flush();
    expect(actions(beacon)).toEqual(['view']);
    expect(sends).toEqual([]);
  });

  it('drains q before _q', async () => {
    w.spdt = {
      ...objectStub([['emit', 'conf', { key: KEY }], ['emit', 'custom', { event_name: 'from__q' }]]),
      q: [args('custom', { event_name: 'from_q' })],
    };
    loadTag();
    await flush();
    expect(delivered(beacon).map((e) => e.body.event_name)).toEqual(['from_q', 'from__q']);
  });

  it('a page script holding the old object stub still reaches the pixel', async () => {
    const old = objectStub([['emit', 'conf', { key: KEY }]]);
    w.spdt = old;
    loadTag();
    old.emit('signup', { event_id: 'via-emit' });
    await flush();
    expect(eventIds(beacon)).toEqual(['via-emit']);
  });
});

// =============================================================================================
describe('§1 after loading', () => {
  it('window.spdt is a function with on/off; calls go straight to the pixel', async () => {
    loadTag();
    expect(typeof w.spdt).toBe('function');
    expect(typeof w.spdt.on).toBe('function');
    expect(typeof w.spdt.off).toBe('function');
    const sends: any[] = [];
    const warns: string[] = [];
    const onSend = (info: unknown) => sends.push(info);
    w.spdt.on('send', onSend);
    w.spdt.on('warn', (text: string) => warns.push(text));
    w.spdt('conf', { key: KEY });
    w.spdt('purchase', { event_id: 'p-1', value: '12', currency: 'usd' });
    w.spdt('no_such_command');
    await flush();
    expect(delivered(beacon).map((e) => [e.event_id, e.body.value, e.body.currency])).toEqual([['p-1', 12, 'USD']]);
    expect(sends).toEqual([{ transport: 'beacon', url: ORIGIN + '/v1/ingest', body: beacon.calls[0].body }]);
    expect(warns).toHaveLength(1);
    expect(warns[0]).toMatch(/^\[spdt\].*no_such_command/);

    w.spdt.off('send', onSend);
    w.spdt('signup');
    await flush();
    expect(beacon.calls).toHaveLength(2);
    expect(sends).toHaveLength(1);
  });

  it('no call throws into the page, whatever its arguments (§2), on and off included', async () => {
    loadTag();
    const boom = () => {
      throw new Error('trap');
    };
    const proxy = new Proxy({}, { get: boom, has: boom, ownKeys: boom, getOwnPropertyDescriptor: boom, getPrototypeOf: boom });
    const cyclic: any = {};
    cyclic.self = cyclic;
    const values: [string, unknown][] = [
      ['proxy with throwing traps', proxy], ['cyclic object', cyclic], ['symbol', Symbol('s')], ['BigInt', 1n], ['long string', 'x'.repeat(100_000)],
    ];
    for (const [label, value] of values) {
      expect(() => w.spdt(value, value, value), `spdt(${label})`).not.toThrow();
      expect(() => w.spdt('purchase', value, value), `spdt('purchase', ${label})`).not.toThrow();
      expect(() => w.spdt.on(value, value), `spdt.on(${label})`).not.toThrow();
      expect(() => w.spdt.on('send', value), `spdt.on('send', ${label})`).not.toThrow();
      expect(() => w.spdt.off(value, value), `spdt.off(${label})`).not.toThrow();
    }
    w.spdt('conf', { key: KEY });
    w.spdt('signup', { event_id: 'still-fine' });
    await flush();
    expect(eventIds(beacon)).toContain('still-fine');
  });

  it('loading the bundle twice installs it once', async () => {
    spotifyStub();
    w.spdt('conf', { key: KEY });
    w.spdt('signup', { event_id: 'queued' });
    loadTag();
    const first = w.spdt;
    loadTag();
    expect(w.spdt).toBe(first);
    w.spdt('lead', { event_id: 'direct' });
    await advance(10_000);
    expect(eventIds(beacon)).toEqual(['queued', 'direct']);
    expect(beacon.calls.every((c) => parseBody(c.body).batch.length == 1)).toBe(true);
  });
});

// =============================================================================================
describe('§3 endpoint default of the tag', () => {
  it('is the directory of the #spdt-capture script src', async () => {
    addCaptureScript(CDN_SRC);
    loadTag();
    w.spdt('conf', { key: KEY });
    w.spdt('view');
    await flush();
    expect(beacon.calls.map((c) => c.url)).toEqual(['https://cdn.example.com/px/v1/ingest']);
  });

  it('ignores a query string or hash on the src', async () => {
    addCaptureScript(CDN_SRC + '?v=3&from=/a/b#x/y');
    loadTag();
    w.spdt('conf', { key: KEY });
    w.spdt('view');
    await flush();
    expect(beacon.calls.map((c) => c.url)).toEqual(['https://cdn.example.com/px/v1/ingest']);
  });

  it('conf({endpoint}) overrides it', async () => {
    addCaptureScript(CDN_SRC);
    loadTag();
    w.spdt('conf', { key: KEY, endpoint: 'https://collect.shop.example.co.uk/' });
    w.spdt('view');
    await flush();
    expect(beacon.calls.map((c) => c.url)).toEqual(['https://collect.shop.example.co.uk/v1/ingest']);
  });
});
