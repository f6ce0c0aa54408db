/**
 * Fault/fuzz tests (SPEC §2: "no call, whatever its arguments … may throw into the page or leave a
 * promise rejection unhandled"; §6: every request body is v1 JSON of at most 64 KiB).
 *
 * 100,000 seeded random calls through `createPixel`, then more through the built tag
 * (dist/ping.min.js, evaluated in the page, with calls queued before it loads and calls through
 * every entry point after). The generator is test/helpers/fuzz.ts; a failure prints the call and
 * names its seed and index: `makeFuzz(seed, FUZZ_OPTIONS).call(index)` makes that exact call again.
 *
 * Checked: nothing thrown, no unhandled rejection, no console.error, built-in prototypes
 * unchanged, every request body valid and ≤ 65536 bytes, and afterwards (consent granted again,
 * key and endpoint set again) a valid purchase is still delivered exactly as sent.
 * The beacon fake refuses a seeded 5% of requests, and the page is now and then hidden, left or
 * taken offline, so the outbox and its retries are fuzzed too.
 *
 * Environment, for hunting beyond what CI runs: FUZZ_SEED (another base seed), FUZZ_SCALE (a
 * multiple of the call counts), FUZZ_HUGE_KEYS=0 (no pixel keys of up to 100 KB, which are on by
 * default since the bug at the end of this file was fixed), FUZZ_VERBOSE=1 (one summary line per run).
 */
import { execSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { snippet } from '../src/snippet';
import type { Pixel } from '../src/types';
import { makeFuzz, type Fuzz, type FuzzCall, type FuzzOptions } from './helpers/fuzz';
import { KEY, ORIGIN, T0, changeVisibility, parseBody, resetPage, setOnline } from './helpers/pixel';

const BASE_SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : 20251122;
const PIXEL_SEED = BASE_SEED;
const TAG_SEED = BASE_SEED + 1;
const CREATE_SEED = BASE_SEED + 2;
/** FUZZ_SCALE=10 runs ten times as many calls (a longer hunt); the default is what CI runs. */
const SCALE = Number(process.env.FUZZ_SCALE || 1);
const PIXEL_CALLS = Math.round(100_000 * SCALE);
const TAG_QUEUED = 300;
const TAG_CALLS = Math.round(15_000 * SCALE);
const CREATED = Math.round(300 * SCALE);
const FLUSH_EVERY = 64;
const MAX_BODY = 65536;
const VERBOSE = !!process.env.FUZZ_VERBOSE;
const FUZZ_OPTIONS: FuzzOptions = { hugeKeys: process.env.FUZZ_HUGE_KEYS != '0' };

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BUNDLE = join(ROOT, 'dist', 'ping.min.js');
const CDN_SRC = 'https://cdn.example.com/px/ping.min.js';
const w = window as any;
/** Wall-clock time (fake timers replace Date). */
const now = Date.now.bind(Date);
/** The real one: fake timers replace setImmediate too. */
const nextMacrotask = ((real) => () => new Promise<void>((resolve) => real(() => resolve())))(setImmediate);

/** mulberry32 for the harness's own choices (beacon refusals, page events), apart from the calls. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `String(e)` that cannot throw (a thrown Proxy, say). */
function show(e: unknown): string {
  try {
    return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  } catch {
    return '<unprintable thrown value>';
  }
}

interface Sent {
  url: string;
  body: string;
  accepted: boolean;
}

/** Everything a run observes. Failures are collected (not thrown) so one run reports them all. */
function harness(seed: number, options: FuzzOptions = FUZZ_OPTIONS) {
  const random = prng(seed ^ 0xbeac0);
  const state = {
    lastCall: -1,
    refuse: 0.05,
    sent: [] as Sent[],
    requests: 0,
    accepted: 0,
    events: 0,
    maxBody: 0,
    thrown: [] as string[],
    bodyProblems: [] as string[],
    timerErrors: [] as string[],
    rejections: [] as string[],
    errors: [] as string[],
    warnings: 0,
    logs: 0,
  };
  const fuzz = makeFuzz(seed, options);

  (navigator as any).sendBeacon = (url: unknown, body: unknown) => {
    const accepted = random() >= state.refuse;
    state.requests++;
    if (typeof body != 'string') {
      state.bodyProblems.push(`request ${state.requests} after call #${state.lastCall}: body is a ${typeof body}`);
      return accepted;
    }
    const size = Buffer.byteLength(body);
    state.maxBody = Math.max(state.maxBody, size);
    if (size > MAX_BODY) state.bodyProblems.push(`request ${state.requests} after call #${state.lastCall}: Buffer.byteLength ${size} (over ${MAX_BODY})`);
    for (const problem of fuzz.checkBody(body)) state.bodyProblems.push(`request ${state.requests} after call #${state.lastCall}: ${problem}`);
    if (accepted) {
      state.accepted++;
      try {
        for (const item of parseBody(body).batch) state.events += item.events.length;
      } catch {
        /* already reported */
      }
    }
    state.sent.push({ url: String(url), body, accepted });
    if (state.sent.length > 200) state.sent.splice(0, 100); // only the latest are looked at
    return accepted;
  };

  const onRejection = (reason: unknown) => state.rejections.push(show(reason));
  process.on('unhandledRejection', onRejection);
  const onError = (e: ErrorEvent) => state.errors.push('window error: ' + show(e.error ?? e.message));
  window.addEventListener('error', onError);
  // Plain counters, not vi.spyOn: a spy would keep every argument of millions of warnings.
  const consoleBefore = { warn: console.warn, log: console.log, info: console.info, debug: console.debug, error: console.error };
  console.warn = () => void state.warnings++;
  console.log = console.info = console.debug = () => void state.logs++;
  console.error = (...args: unknown[]) => void state.errors.push('console.error: ' + args.map(show).join(' '));

  /** Runs the timers due (the pixel's flush and retries); now and then hides, leaves or takes the page offline. */
  async function tick(): Promise<void> {
    try {
      const r = random();
      if (r < 0.02) {
        changeVisibility('hidden');
        changeVisibility('visible');
      } else if (r < 0.03) {
        window.dispatchEvent(new Event('pagehide'));
      } else if (r < 0.04) {
        setOnline(false);
      } else if (r < 0.06) {
        setOnline(true);
        window.dispatchEvent(new Event('online'));
      }
      await vi.runOnlyPendingTimersAsync();
    } catch (e) {
      state.timerErrors.push(`timers after call #${state.lastCall}: ${show(e)}`);
    }
  }

  /** Runs `n` calls of the fuzz stream from `from`, each through `invoke`. */
  async function run(invoke: (call: FuzzCall) => void, n: number, from = 0, source: Fuzz = fuzz): Promise<void> {
    for (let i = from; i < from + n; i++) {
      const call = source.call(i);
      state.lastCall = i;
      try {
        invoke(call);
      } catch (e) {
        state.thrown.push(`${call.describe()} threw ${show(e)}`);
      }
      if (i % FLUSH_EVERY == FLUSH_EVERY - 1) await tick();
    }
    await tick();
  }

  /** Back to a page where delivery must work: online, visible, every beacon accepted. */
  async function restoreTransport(): Promise<void> {
    setOnline(true);
    window.dispatchEvent(new Event('online'));
    changeVisibility('visible');
    state.refuse = 0;
    await vi.advanceTimersByTimeAsync(10_000);
  }

  /** Waits for the purchase with `orderId` among accepted requests and returns it with its request. */
  async function deliveredPurchase(orderId: string) {
    for (let i = 0; i < 20; i++) {
      for (const s of state.sent) {
        if (!s.accepted) continue;
        for (const item of parseBody(s.body).batch)
          for (const e of item.events) if (e.body.order_id === orderId) return { ...e, item, url: s.url };
      }
      await vi.advanceTimersByTimeAsync(1_000);
    }
    return undefined;
  }

  function dispose() {
    Object.assign(console, consoleBefore);
    process.off('unhandledRejection', onRejection);
    window.removeEventListener('error', onError);
  }

  function summary(name: string, calls: number, ms: number): string {
    return `[fuzz] ${name}: seed ${seed}, ${calls} calls in ${ms} ms; ${state.requests} requests (${state.accepted} accepted, ` +
      `${state.events} events delivered, largest ${state.maxBody} B), ${state.warnings} warnings, ${state.logs} debug lines`;
  }

  return { state, fuzz, run, tick, restoreTransport, deliveredPurchase, dispose, summary };
}

type Harness = ReturnType<typeof harness>;

/** Everything that must be empty after a run, in one assertion (so a failure shows it all). */
function expectClean(h: Harness, before: unknown) {
  const { state, fuzz } = h;
  // Let any stray promise job settle, so that an unhandled rejection would have been reported.
  return nextMacrotask().then(() =>
    expect({
      thrown: state.thrown.slice(0, 10),
      thrownCount: state.thrown.length,
      bodyProblems: state.bodyProblems.slice(0, 10),
      bodyProblemCount: state.bodyProblems.length,
      timerErrors: state.timerErrors.slice(0, 10),
      rejections: state.rejections.slice(0, 10),
      errors: state.errors.slice(0, 10),
      pollution: fuzz.pollution(before),
    }).toEqual({ thrown: [], thrownCount: 0, bodyProblems: [], bodyProblemCount: 0, timerErrors: [], rejections: [], errors: [], pollution: [] }),
  );
}

/** The configuration that must make delivery work again, whatever the fuzz configured. */
const RESTORE = { key: KEY, endpoint: ORIGIN, cookies: true, cookie_domain: '', cookie_days: 365, click_days: 30, spa: true, debug: false };

beforeEach(() => {
  resetPage();
  vi.useFakeTimers({ now: T0 });
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  resetPage();
});

describe('fuzz: no call throws, leaks or breaks delivery', () => {
  let pixels: Pixel[] = [];
  afterEach(() => {
    for (const p of pixels) {
      p.conf({ debug: false });
      p.consent('denied');
    }
    pixels = [];
  });

  it(`createPixel: ${PIXEL_CALLS} random calls (seed ${PIXEL_SEED})`, async () => {
    const started = now();
    const h = harness(PIXEL_SEED);
    const before = h.fuzz.snapshot();
    vi.resetModules();
    const { createPixel } = await import('../src/index');
    const pixel = createPixel({ key: KEY });
    pixels.push(pixel);
    const methods = pixel as unknown as Record<string, (...args: unknown[]) => unknown>;
    try {
      await h.run((call) => {
        const [command, ...rest] = call.args;
        if (call.method != 'call') return methods[call.method](...call.args);
        // A fifth of the commands go through the tracker's method of that name.
        if (call.route < 0.2 && typeof command == 'string' && Object.prototype.hasOwnProperty.call(pixel, command) && command != 'on' && command != 'off')
          return methods[command](...rest);
        return (pixel as unknown as (...args: unknown[]) => unknown)(...call.args);
      }, PIXEL_CALLS);
      expect(h.state.events, 'events delivered during the run').toBeGreaterThan(PIXEL_CALLS / 10);

      // Whatever the fuzz configured (consent denied or pending, another key or endpoint, cookies off…).
      await h.restoreTransport();
      pixel.consent('granted');
      pixel.conf(RESTORE);
      const orderId = `after-fuzz-${PIXEL_SEED}`;
      pixel.purchase({ value: 9, currency: 'EUR', order_id: orderId });
      const purchase = await h.deliveredPurchase(orderId);
      expect(purchase, 'the purchase after the fuzz run was delivered').toBeDefined();
      expect(purchase!.url).toBe(ORIGIN + '/v1/ingest');
      expect(purchase!.action).toBe('purchase');
      expect(purchase!.item.pid).toBe(KEY);
      expect(purchase!.item.uid).toMatch(/^[0-9a-f]{32}$/);
      expect(purchase!.body).toEqual({ url: location.href, value: 9, currency: 'EUR', order_id: orderId });
      await expectClean(h, before);
    } finally {
      h.dispose();
      if (VERBOSE) console.info(h.summary('createPixel', PIXEL_CALLS, now() - started));
    }
  }, 120_000);

  it(`createPixel with random options: ${CREATED} pixels, 5 random calls each (seed ${CREATE_SEED})`, async () => {
    const started = now();
    const h = harness(CREATE_SEED);
    const before = h.fuzz.snapshot();
    vi.resetModules();
    const { createPixel } = await import('../src/index');
    try {
      for (let n = 0; n < CREATED; n++) {
        // The options: the props of the next conf call in the stream, or whatever its call has as props.
        const call = h.fuzz.call(n * 6);
        let pixel: Pixel | undefined;
        try {
          pixel = createPixel(call.args[1] as any);
        } catch (e) {
          h.state.thrown.push(`createPixel(${call.describe()} [its props]) threw ${show(e)}`);
          continue;
        }
        pixels.push(pixel);
        const fn = pixel as unknown as (...args: unknown[]) => unknown;
        await h.run((c) => (c.method == 'call' ? fn(...c.args) : (pixel as any)[c.method](...c.args)), 5, n * 6 + 1);
      }
      await h.restoreTransport();
      const pixel = createPixel({ key: KEY });
      pixels.push(pixel);
      pixel.consent('granted');
      pixel.conf(RESTORE);
      const orderId = `after-create-${CREATE_SEED}`;
      pixel.purchase({ value: 9, currency: 'EUR', order_id: orderId });
      const purchase = await h.deliveredPurchase(orderId);
      expect(purchase, 'the purchase after the fuzz run was delivered').toBeDefined();
      expect(purchase!.body).toEqual({ url: location.href, value: 9, currency: 'EUR', order_id: orderId });
      await expectClean(h, before);
    } finally {
      h.dispose();
      if (VERBOSE) console.info(h.summary('createPixel options', CREATED * 5, now() - started));
    }
  }, 60_000);
});

describe('fuzz: the built tag', () => {
  let code = '';
  beforeAll(() => {
    if (!existsSync(BUNDLE)) {
      try {
        execSync('npm run build', { cwd: ROOT, stdio: 'ignore' });
      } catch (error) {
        if (!existsSync(BUNDLE)) throw error; // the size check may fail the build after writing it
      }
    }
    code = readFileSync(BUNDLE, 'utf8');
  }, 180_000);

  afterEach(() => {
    if (typeof w.spdt == 'function' && w.spdt.version) {
      w.spdt('conf', { debug: false });
      w.spdt('consent', 'denied');
    }
    delete w.spdt;
    document.querySelectorAll('script').forEach((s) => s.remove());
  });

  it(`ping.min.js: ${TAG_QUEUED} calls queued before it loads, ${TAG_CALLS} after, every entry point (seed ${TAG_SEED})`, async () => {
    const started = now();
    const h = harness(TAG_SEED);
    const before = h.fuzz.snapshot();
    try {
      // The project's own snippet (its stub queues [time, url, arguments]), then calls before the tag.
      const inline = snippet({ key: KEY, src: CDN_SRC }).match(/<script[^>]*>([\s\S]*?)<\/script>/)![1];
      w.eval(inline);
      const stub = w.spdt;
      await h.run((c) => stub(...c.args), TAG_QUEUED); // the stub has no on/off: those become unknown commands

      // The tag, as the snippet's script element runs it.
      const script = document.getElementById('spdt-capture');
      Object.defineProperty(document, 'currentScript', { configurable: true, get: () => script });
      try {
        w.eval(code);
      } finally {
        delete (document as any).currentScript;
      }
      expect(w.spdt.version).toBe('1');

      const spdt = w.spdt;
      await h.run((c) => {
        if (c.method != 'call') return c.route < 0.7 ? spdt[c.method](...c.args) : spdt._q.push([c.method, ...c.args]);
        if (c.route < 0.5) return spdt(...c.args);
        if (c.route < 0.7) return spdt.emit(...c.args);
        if (c.route < 0.85) return stub(...c.args); // a page script holding the old stub
        return spdt._q.push(['emit', ...c.args]);
      }, TAG_CALLS, TAG_QUEUED);

      await h.restoreTransport();
      spdt('consent', 'granted');
      spdt('conf', RESTORE);
      const orderId = `after-tag-fuzz-${TAG_SEED}`;
      spdt('purchase', { value: 9, currency: 'EUR', order_id: orderId });
      const purchase = await h.deliveredPurchase(orderId);
      expect(purchase, 'the purchase after the fuzz run was delivered').toBeDefined();
      expect(purchase!.url).toBe(ORIGIN + '/v1/ingest');
      expect(purchase!.item.pid).toBe(KEY);
      expect(purchase!.body).toEqual({ url: location.href, value: 9, currency: 'EUR', order_id: orderId });
      await expectClean(h, before);
    } finally {
      h.dispose();
      if (VERBOSE) console.info(h.summary('ping.min.js', TAG_QUEUED + TAG_CALLS, now() - started));
    }
  }, 120_000);
});

/**
 * Found by this fuzz (seed 20251122 call #2154: a checkout with `{key: 'abab…'}` of 100,001
 * characters). The key rides as `pid` in every batch item, so such an event could never fit a
 * 64 KiB request (SPEC §6), and a refused request blocked every later event. The pixel now refuses
 * keys over 256 characters (with a warning); these are the regression tests.
 */
describe('fuzz: found bugs, now fixed', () => {
  const HUGE_KEY = 'x'.repeat(100_000);

  async function hugeKeyThenPurchase() {
    const bodies: { body: string; accepted: boolean }[] = [];
    // As Chromium does: a body over the 64 KiB keepalive quota is refused.
    (navigator as any).sendBeacon = (_url: string, body: string) => {
      const accepted = Buffer.byteLength(body) <= MAX_BODY;
      bodies.push({ body, accepted });
      return accepted;
    };
    const warn = console.warn;
    console.warn = () => {};
    vi.resetModules();
    const { createPixel } = await import('../src/index');
    const pixel = createPixel({ key: KEY });
    try {
      pixel('checkout', { value: 1, currency: 'EUR' }, { key: HUGE_KEY });
      await vi.advanceTimersByTimeAsync(100);
      pixel.purchase({ value: 9, currency: 'EUR', order_id: 'after-huge-key' });
      await vi.advanceTimersByTimeAsync(30_000);
    } finally {
      pixel.consent('denied');
      console.warn = warn;
    }
    return bodies;
  }

  it('an event with a 100 KB pixel key makes no request body over 64 KiB', async () => {
    const bodies = await hugeKeyThenPurchase();
    expect(bodies.map((b) => Buffer.byteLength(b.body)).filter((size) => size > MAX_BODY)).toEqual([]);
  });

  it('after an event with a 100 KB key, a valid purchase is still delivered', async () => {
    const bodies = await hugeKeyThenPurchase();
    expect(bodies.some((b) => b.accepted && b.body.includes('after-huge-key'))).toBe(true);
  });
});
