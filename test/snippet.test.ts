// Unit tests of src/snippet.ts and of the `spdt-pixel snippet` CLI (SPEC §1 and §7): the project's
// own minified loader, executed in the jsdom window, and its noscript image.
import { spawnSync, execSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { snippet, type SnippetOptions } from '../src/snippet';

const KEY = '5a1c965e567a45f7832cc5ba7a37faf7';
const SRC = 'https://cdn.example.com/ping.min.js';
const START_URL = location.href;
const ROOT = path.resolve(__dirname, '..');

type Entry = [number, string, IArguments];
type Win = typeof window & { spdt?: ((...args: unknown[]) => void) & { q: Entry[] }; pwned?: unknown };
const win = window as Win;

/** The snippet parsed as a browser parses a page body (scripts are not run by DOMParser). */
function parse(html: string) {
  const doc = new DOMParser().parseFromString('<!doctype html><body>' + html, 'text/html');
  const scripts = [...doc.querySelectorAll('script')];
  const img = doc.querySelector('noscript img');
  return { doc, scripts, inline: scripts[0]?.textContent ?? '', img };
}

/** Runs the inline script of a snippet in the jsdom window, as the page would. */
function execute(html: string) {
  (0, win.eval)(parse(html).inline);
}

const queue = () => win.spdt!.q;
const args = (entry: Entry) => Array.from(entry[2]);
const captureScripts = () => [...document.querySelectorAll('script')].filter((s) => s.id == 'spdt-capture');

afterEach(() => {
  vi.useRealTimers();
  delete win.spdt;
  delete win.pwned;
  document.querySelectorAll('script').forEach((s) => s.remove());
  history.replaceState(null, '', START_URL);
});

describe('§1 the inline script', () => {
  it('is at most 400 bytes for a 32-hex key and https://cdn.example.com/ping.min.js', () => {
    const html = snippet({ key: KEY, src: SRC });
    const text = /<script[^>]*>([\s\S]*?)<\/script>/.exec(html)![1];
    expect(text).toBe(parse(html).inline);
    expect(Buffer.byteLength(text, 'utf8')).toBeLessThanOrEqual(400);
  });

  it('includes conf with the key, and view', () => {
    const html = snippet({ key: KEY, src: SRC });
    expect(parse(html).inline).toContain('conf');
    expect(parse(html).inline).toContain('view');
    execute(html);
    expect(queue().map(args)).toEqual([['conf', { key: KEY }], ['view']]);
  });

  it('is the only script of the snippet (the bundle is loaded from script)', () => {
    const { scripts } = parse(snippet({ key: KEY, src: SRC }));
    expect(scripts).toHaveLength(1);
    expect(scripts[0].hasAttribute('src')).toBe(false);
  });

  it('passes the endpoint to conf when one is given', () => {
    execute(snippet({ key: KEY, src: SRC, endpoint: 'https://collect.example.org/px' }));
    expect(args(queue()[0])).toEqual(['conf', { key: KEY, endpoint: 'https://collect.example.org/px' }]);
  });
});

describe('§1 the queue: one [time, url, arguments] entry per call', () => {
  it('records each call with its own time and page URL', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(1763776000100);
    execute(snippet({ key: KEY, src: SRC }));

    history.pushState(null, '', '/checkout?step=2');
    vi.setSystemTime(1763776000200);
    win.spdt!('addtocart', { value: 5, currency: 'USD' });

    history.pushState(null, '', '/thanks');
    vi.setSystemTime(1763776000300);
    win.spdt!('purchase', { order_id: 'A1' }, { key: 'other' });

    const q = queue();
    expect(q).toHaveLength(4);
    expect(q.map((e) => e[0])).toEqual([1763776000100, 1763776000100, 1763776000200, 1763776000300]);
    expect(q.map((e) => e[1])).toEqual([
      START_URL,
      START_URL,
      'https://shop.example.co.uk/checkout?step=2',
      'https://shop.example.co.uk/thanks',
    ]);
    expect(q.map(args)).toEqual([
      ['conf', { key: KEY }],
      ['view'],
      ['addtocart', { value: 5, currency: 'USD' }],
      ['purchase', { order_id: 'A1' }, { key: 'other' }],
    ]);
  });

  it('stores the arguments object of each call', () => {
    execute(snippet({ key: KEY, src: SRC }));
    for (const entry of queue()) {
      expect(entry).toHaveLength(3);
      expect(Object.prototype.toString.call(entry[2])).toBe('[object Arguments]');
    }
  });

  it('makes window.spdt a function', () => {
    execute(snippet({ key: KEY, src: SRC }));
    expect(typeof win.spdt).toBe('function');
  });
});

describe('§1 loading the bundle', () => {
  it('inserts one async <script id="spdt-capture"> with the given src', () => {
    execute(snippet({ key: KEY, src: SRC }));
    const scripts = captureScripts();
    expect(scripts).toHaveLength(1);
    // jsdom does not reflect `async` to the attribute; the property is what the snippet set.
    expect(scripts[0].async).toBeTruthy();
    expect(scripts[0].getAttribute('src')).toBe(SRC);
    expect(scripts[0].isConnected).toBe(true);
  });

  it('inserts it exactly once when the snippet is executed twice, queueing every call', () => {
    const html = snippet({ key: KEY, src: SRC });
    execute(html);
    execute(html);
    expect(captureScripts()).toHaveLength(1);
    expect(document.querySelectorAll('script')).toHaveLength(1);
    expect(queue().map(args)).toEqual([['conf', { key: KEY }], ['view'], ['conf', { key: KEY }], ['view']]);
  });

  it('keeps an src with quotes and </script> exact', () => {
    const src = 'https://cdn.example.com/ping.min.js?v="1\'</script><script>window.pwned=1</script>';
    const html = snippet({ key: KEY, src });
    expect(parse(html).scripts).toHaveLength(1);
    execute(html);
    expect(win.pwned).toBeUndefined();
    expect(captureScripts()[0].getAttribute('src')).toBe(src);
  });
});

describe('§1 the Trusted Types variant', () => {
  const options: SnippetOptions = { key: KEY, src: SRC, trustedTypes: true };

  it('inserts no script element from script', () => {
    const before = document.querySelectorAll('script').length;
    execute(snippet(options));
    expect(document.querySelectorAll('script')).toHaveLength(before);
    expect(queue().map(args)).toEqual([['conf', { key: KEY }], ['view']]);
  });

  it('assigns no script src (which Trusted Types forbid)', () => {
    const descriptor = Object.getOwnPropertyDescriptor(HTMLScriptElement.prototype, 'src')!;
    const setSrc = vi.fn(() => {
      throw new TypeError('This document requires TrustedScriptURL assignment');
    });
    Object.defineProperty(HTMLScriptElement.prototype, 'src', { ...descriptor, set: setSrc });
    try {
      expect(() => execute(snippet(options))).not.toThrow();
      expect(setSrc).not.toHaveBeenCalled();
    } finally {
      Object.defineProperty(HTMLScriptElement.prototype, 'src', descriptor);
    }
  });

  it('loads the bundle with an async <script id="spdt-capture" src> tag in the markup', () => {
    const { scripts } = parse(snippet(options));
    expect(scripts).toHaveLength(2);
    const [stub, tag] = scripts;
    expect(stub.hasAttribute('src')).toBe(false);
    expect(tag.id).toBe('spdt-capture');
    expect(tag.hasAttribute('async')).toBe(true);
    expect(tag.getAttribute('src')).toBe(SRC);
    expect(tag.textContent).toBe('');
  });

  it('queues with time and URL like the default snippet', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(5000);
    execute(snippet(options));
    history.pushState(null, '', '/next');
    vi.setSystemTime(6000);
    win.spdt!('lead');
    expect(queue().map((e) => [e[0], e[1]])).toEqual([
      [5000, START_URL],
      [5000, START_URL],
      [6000, 'https://shop.example.co.uk/next'],
    ]);
  });
});

describe('§1 / §6 the noscript image', () => {
  it.each([
    [SRC, 'https://cdn.example.com/v1/img'],
    ['https://cdn.example.com/px/ping.min.js', 'https://cdn.example.com/px/v1/img'],
    ['https://cdn.example.com/px/ping.min.js?v=2#x', 'https://cdn.example.com/px/v1/img'],
  ])('points at <dir of %s>/v1/img', (src, base) => {
    const html = snippet({ key: KEY, src });
    const { img } = parse(html);
    expect(img!.getAttribute('src')).toBe(`${base}?key=${KEY}&a=view&ns=1`);
    expect(html).toContain(`${base}?key=${KEY}&amp;a=view&amp;ns=1`);
  });

  it('points at the endpoint when one is given', () => {
    const { img } = parse(snippet({ key: KEY, src: SRC, endpoint: 'https://collect.example.org/px' }));
    expect(img!.getAttribute('src')).toBe(`https://collect.example.org/px/v1/img?key=${KEY}&a=view&ns=1`);
  });

  it('is a hidden 1×1 image', () => {
    const { img } = parse(snippet({ key: KEY, src: SRC }));
    expect(img!.getAttribute('width')).toBe('1');
    expect(img!.getAttribute('height')).toBe('1');
    expect(img!.getAttribute('style')).toMatch(/display:\s*none/);
    expect(img!.getAttribute('alt')).toBe('');
  });
});

describe('§5 consent required: the consent option', () => {
  it('passes consent to conf before the view', () => {
    execute(snippet({ key: KEY, src: SRC, consent: 'pending' }));
    expect(queue().map(args)).toEqual([['conf', { key: KEY, consent: 'pending' }], ['view']]);
  });

  it.each(['pending', 'denied'] as const)('leaves the noscript image out with %s: without script no banner can ask', (consent) => {
    const html = snippet({ key: KEY, src: SRC, consent });
    expect(html).not.toContain('noscript');
    expect(html).not.toContain('/v1/img');
    expect(parse(html).scripts).toHaveLength(1);
  });

  it("is what every page of the demo shop (an opt-in site) pastes", () => {
    const pasted = snippet({ key: KEY, src: '/ping.min.js', consent: 'pending' }).trim();
    const pages = readdirSync(path.join(ROOT, 'examples/shop')).filter((name) => name.endsWith('.html'));
    expect(pages.length).toBeGreaterThan(5);
    for (const name of pages) expect(readFileSync(path.join(ROOT, 'examples/shop', name), 'utf8'), name).toContain(pasted);
  });

  it('keeps the noscript image with granted', () => {
    expect(parse(snippet({ key: KEY, src: SRC, consent: 'granted' })).img).not.toBeNull();
  });
});

describe('§1 the nonce attribute', () => {
  it('is set on the inline script', () => {
    const { scripts } = parse(snippet({ key: KEY, src: SRC, nonce: 'r4nd0m' }));
    expect(scripts.map((s) => s.getAttribute('nonce'))).toEqual(['r4nd0m']);
  });

  it('is set on both scripts of the Trusted Types variant', () => {
    const { scripts } = parse(snippet({ key: KEY, src: SRC, nonce: 'r4nd0m', trustedTypes: true }));
    expect(scripts.map((s) => s.getAttribute('nonce'))).toEqual(['r4nd0m', 'r4nd0m']);
  });

  it('is absent without a nonce', () => {
    const { scripts } = parse(snippet({ key: KEY, src: SRC, trustedTypes: true }));
    for (const s of scripts) expect(s.hasAttribute('nonce')).toBe(false);
  });

  it('cannot break out of its attribute', () => {
    const nonce = 'a"b\'c><script>window.pwned=1</script>&amp;';
    const { scripts } = parse(snippet({ key: KEY, src: SRC, nonce }));
    expect(scripts).toHaveLength(1);
    expect(scripts[0].getAttribute('nonce')).toBe(nonce);
  });
});

describe('§1 a hostile key cannot break out', () => {
  it.each([
    '</script><script>window.pwned=1</script>',
    '</SCRIPT ><script>window.pwned=1//',
    '"); window.pwned=1; ("',
    "'); window.pwned=1; ('",
    '\\"});window.pwned=1;//',
    '<!--<script>',
    '"quotes" & \'apostrophes\' <b>',
    'line\u2028separator\u2029and\nnewline',
    '${window.pwned=1}`',
  ])('%j', (key) => {
    for (const trustedTypes of [false, true]) {
      const html = snippet({ key, src: SRC, trustedTypes });
      const { scripts, img } = parse(html);
      expect(scripts).toHaveLength(trustedTypes ? 2 : 1);
      execute(html);
      expect(win.pwned).toBeUndefined();
      expect(args(queue()[0])).toEqual(['conf', { key }]);
      expect(args(queue()[1])).toEqual(['view']);
      expect(new URL(img!.getAttribute('src')!).searchParams.get('key')).toBe(key);
      expect(new URL(img!.getAttribute('src')!).searchParams.get('a')).toBe('view');
      delete win.spdt;
      document.querySelectorAll('script').forEach((s) => s.remove());
    }
  });
});

describe('§7 the CLI: npx spdt-pixel snippet', () => {
  beforeAll(() => {
    if (!existsSync(path.join(ROOT, 'dist', 'index.mjs'))) execSync('npm run build', { cwd: ROOT, stdio: 'ignore' });
  }, 120_000);

  const cli = (...argv: string[]) =>
    spawnSync(process.execPath, ['bin/spdt-pixel.mjs', ...argv], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });

  it('prints the snippet with conf and view, and the noscript image', () => {
    const run = cli('snippet', '--key', KEY, '--src', SRC);
    expect(run.status).toBe(0);
    const { scripts, inline, img } = parse(run.stdout);
    expect(scripts).toHaveLength(1);
    expect(Buffer.byteLength(inline)).toBeLessThanOrEqual(400);
    expect(run.stdout).toContain('<noscript>');
    expect(img!.getAttribute('src')).toBe(`https://cdn.example.com/v1/img?key=${KEY}&a=view&ns=1`);
    execute(run.stdout);
    expect(queue().map(args)).toEqual([['conf', { key: KEY }], ['view']]);
    expect(captureScripts()[0].getAttribute('src')).toBe(SRC);
  });

  it('passes --endpoint and --nonce through', () => {
    const run = cli('snippet', '--key', 'K', '--src', SRC, '--endpoint', 'https://collect.example.org', '--nonce', 'n0nce');
    expect(run.status).toBe(0);
    const { scripts, img } = parse(run.stdout);
    expect(scripts[0].getAttribute('nonce')).toBe('n0nce');
    expect(img!.getAttribute('src')).toBe('https://collect.example.org/v1/img?key=K&a=view&ns=1');
    execute(run.stdout);
    expect(args(queue()[0])).toEqual(['conf', { key: 'K', endpoint: 'https://collect.example.org' }]);
  });

  it('prints the Trusted Types variant with --trusted-types', () => {
    const run = cli('snippet', '--key', 'K', '--src', SRC, '--trusted-types');
    expect(run.status).toBe(0);
    const { scripts } = parse(run.stdout);
    expect(scripts).toHaveLength(2);
    expect(scripts[1].getAttribute('src')).toBe(SRC);
  });

  it('passes --consent pending to conf and prints no noscript image', () => {
    const run = cli('snippet', '--key', 'K', '--src', SRC, '--consent', 'pending');
    expect(run.status).toBe(0);
    expect(run.stdout).not.toContain('noscript');
    execute(run.stdout);
    expect(args(queue()[0])).toEqual(['conf', { key: 'K', consent: 'pending' }]);
  });

  it.each([
    ['--consent is not a consent state', ['snippet', '--key', 'K', '--src', SRC, '--consent', 'maybe']],
    ['--key is missing', ['snippet', '--src', SRC]],
    ['--src is missing', ['snippet', '--key', 'K']],
    ['the command is missing', []],
    ['the command is unknown', ['snipet', '--key', 'K', '--src', SRC]],
  ])('exits with code 2 and a usage message when %s', (_name, argv) => {
    const run = cli(...argv);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/usage/i);
    expect(run.stdout).toBe('');
  });
});
