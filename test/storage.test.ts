// Unit tests of src/storage.ts (SPEC §3 cookie_domain, §4 storage that throws) in jsdom at
// https://shop.example.co.uk/products/1?ref=x. jsdom's cookie jar, like browsers, refuses cookies
// for public suffixes such as co.uk. Hosts without a root domain (localhost, IPs) are tested in
// storage-localhost.test.ts.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

type Storage = typeof import('../src/storage');
interface JarCookie {
  key: string;
  value: string;
  domain: string;
  path: string;
  hostOnly: boolean;
  secure: boolean;
  sameSite: string;
  maxAge: number | string;
}
interface Jar {
  getCookiesSync(url: string): JarCookie[];
  removeAllCookiesSync(): void;
}

const START_URL = 'https://shop.example.co.uk/products/1?ref=x';
const dom = (globalThis as unknown as { jsdom: { cookieJar: Jar; reconfigure(o: { url: string }): void } }).jsdom;
const jar = dom.cookieJar;

/** A fresh copy of the module: its root-domain cache and memory fallback start empty. */
async function fresh(): Promise<Storage> {
  vi.resetModules();
  return import('../src/storage');
}

/** Every cookie the jar holds for these URLs, by name. */
function cookiesAt(...urls: string[]): JarCookie[] {
  return urls.flatMap((url) => jar.getCookiesSync(url));
}
const ALL_URLS = ['https://shop.example.co.uk/', 'https://example.co.uk/', 'https://other.example.co.uk/', 'https://a.shop.example.co.uk/'];
const named = (name: string) => cookiesAt(...ALL_URLS).filter((c) => c.key == name);
const pageCookies = () => document.cookie.split('; ').filter(Boolean);

/** Makes `window[kind]` throw on access, as in some private modes. */
function blockStorage(kind: 'localStorage' | 'sessionStorage') {
  const original = Object.getOwnPropertyDescriptor(window, kind)!;
  Object.defineProperty(window, kind, {
    configurable: true,
    get() {
      throw new DOMException('The operation is insecure.', 'SecurityError');
    },
  });
  restore.push(() => Object.defineProperty(window, kind, original));
}

let restore: (() => void)[] = [];
let consoleSpies: ReturnType<typeof vi.spyOn>[] = [];

beforeEach(() => {
  jar.removeAllCookiesSync();
  localStorage.clear();
  sessionStorage.clear();
  consoleSpies = (['log', 'info', 'warn', 'error', 'debug'] as const).map((m) => vi.spyOn(console, m));
});

afterEach(() => {
  restore.reverse().forEach((fn) => fn());
  restore = [];
  vi.restoreAllMocks();
  vi.useRealTimers();
  if (location.href != START_URL) dom.reconfigure({ url: START_URL });
});

/** Storage and cookie failures are silent: nothing reaches the console. */
function expectSilence() {
  for (const spy of consoleSpies) expect(spy).not.toHaveBeenCalled();
}

describe('§3 cookie_domain auto: rootDomain()', () => {
  it('is example.co.uk on shop.example.co.uk (never the public suffix co.uk)', async () => {
    const { rootDomain } = await fresh();
    expect(rootDomain()).toBe('example.co.uk');
  });

  it('leaves no __spdt_probe cookie behind, at any level', async () => {
    const { rootDomain } = await fresh();
    rootDomain();
    expect(document.cookie).not.toContain('__spdt_probe');
    expect(named('__spdt_probe')).toEqual([]);
  });

  it('does not touch the other cookies of the page', async () => {
    document.cookie = 'keep=1; path=/';
    document.cookie = 'wide=2; path=/; domain=example.co.uk';
    const { rootDomain } = await fresh();
    rootDomain();
    expect(pageCookies().sort()).toEqual(['keep=1', 'wide=2']);
  });

  it('is found once per page: a second call writes no cookie', async () => {
    const { rootDomain } = await fresh();
    const first = rootDomain();
    const writes = vi.spyOn(Document.prototype, 'cookie', 'set');
    expect(rootDomain()).toBe(first);
    expect(writes).not.toHaveBeenCalled();
  });

  it('is probed once per tab session: the next page reads it from sessionStorage and writes no cookie', async () => {
    const first = await fresh();
    expect(first.rootDomain()).toBe('example.co.uk');
    expect(sessionStorage.getItem('__spdt_domain')).toBe('example.co.uk');

    const nextPage = await fresh(); // a new page of the same tab: a new module, the same sessionStorage
    const writes = vi.spyOn(Document.prototype, 'cookie', 'set');
    expect(nextPage.rootDomain()).toBe('example.co.uk');
    expect(writes).not.toHaveBeenCalled();
  });

  it("keeps a host-only answer ('') for the tab session too", async () => {
    dom.reconfigure({ url: 'https://localhost/' });
    expect((await fresh()).rootDomain()).toBe('');
    expect(sessionStorage.getItem('__spdt_domain')).toBe('');
  });

  it('probes on every page where sessionStorage throws', async () => {
    blockStorage('sessionStorage');
    expect((await fresh()).rootDomain()).toBe('example.co.uk');
    const nextPage = await fresh();
    const writes = vi.spyOn(Document.prototype, 'cookie', 'set');
    expect(nextPage.rootDomain()).toBe('example.co.uk');
    expect(writes).toHaveBeenCalled();
    expectSilence();
  });

  it.each([
    ['https://example.com/', 'example.com'],
    ['https://www.example.com/a', 'example.com'],
    ['https://a.b.c.example.com/', 'example.com'],
    ['https://www.example.com.au/', 'example.com.au'],
  ])('on %s is %s', async (url, expected) => {
    dom.reconfigure({ url });
    const { rootDomain } = await fresh();
    expect(rootDomain()).toBe(expected);
    expect(document.cookie).not.toContain('__spdt_probe');
  });

  it("is '' (host-only) when cookies cannot be written at all", async () => {
    Object.defineProperty(document, 'cookie', { configurable: true, get: () => '', set: () => {} });
    restore.push(() => delete (document as { cookie?: string }).cookie);
    const { rootDomain } = await fresh();
    expect(rootDomain()).toBe('');
  });
});

describe('§4 setCookie / getCookie', () => {
  it('writes a cookie at the given domain with path=/, max-age, SameSite=Lax and Secure on https', async () => {
    const { setCookie, getCookie } = await fresh();
    const writes = vi.spyOn(Document.prototype, 'cookie', 'set');
    setCookie('__spdt', 'abc', 3600, 'example.co.uk');
    expect(getCookie('__spdt')).toBe('abc');
    expect(pageCookies()).toEqual(['__spdt=abc']);

    const written = writes.mock.calls[0][0] as string;
    expect(written.split(/;\s*/).slice(1).map((a) => a.toLowerCase()).sort()).toEqual(
      ['path=/', 'max-age=3600', 'domain=example.co.uk', 'samesite=lax', 'secure'].sort(),
    );

    const [cookie] = named('__spdt');
    expect(cookie).toMatchObject({ value: 'abc', domain: 'example.co.uk', hostOnly: false, path: '/', secure: true, sameSite: 'lax', maxAge: 3600 });
    // At the root domain it reaches every subdomain, and every path.
    expect(jar.getCookiesSync('https://other.example.co.uk/deep/path').map((c) => c.key)).toEqual(['__spdt']);
  });

  it("writes a host-only cookie for domain ''", async () => {
    const { setCookie, getCookie } = await fresh();
    setCookie('sp_click_id', 'c1', 60, '');
    expect(getCookie('sp_click_id')).toBe('c1');
    const [cookie] = named('sp_click_id');
    expect(cookie).toMatchObject({ hostOnly: true, path: '/', secure: true, sameSite: 'lax' });
    expect(jar.getCookiesSync('https://other.example.co.uk/')).toEqual([]);
  });

  it('lets the cookie expire after max-age seconds', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { setCookie, getCookie } = await fresh();
    setCookie('short', 'a', 60, 'example.co.uk');
    setCookie('long', 'b', 120, '');
    // (Reading a cookie renews it in jsdom's jar, so nothing is read before the clock moves.)
    vi.setSystemTime(Date.now() + 61_000);
    expect(getCookie('short')).toBeUndefined();
    expect(getCookie('long')).toBe('b');
  });

  it('replaces the value of an existing cookie', async () => {
    const { setCookie, getCookie } = await fresh();
    setCookie('__spdt', 'old', 60, 'example.co.uk');
    setCookie('__spdt', 'new', 60, 'example.co.uk');
    expect(getCookie('__spdt')).toBe('new');
    expect(pageCookies()).toEqual(['__spdt=new']);
  });

  it('reads exactly the named cookie among others with similar names', async () => {
    document.cookie = 'x__spdt=1; path=/';
    document.cookie = '__spdt_alias=2; path=/';
    document.cookie = '__spdt=3; path=/';
    const { getCookie } = await fresh();
    expect(getCookie('__spdt')).toBe('3');
    expect(getCookie('__pdst')).toBeUndefined();
  });

  it('never throws when document.cookie throws', async () => {
    Object.defineProperty(document, 'cookie', {
      configurable: true,
      get: () => {
        throw new DOMException('blocked', 'SecurityError');
      },
      set: () => {
        throw new DOMException('blocked', 'SecurityError');
      },
    });
    restore.push(() => delete (document as { cookie?: string }).cookie);
    const { setCookie, getCookie, deleteCookie, rootDomain } = await fresh();
    expect(() => setCookie('__spdt', 'abc', 60, '')).not.toThrow();
    expect(getCookie('__spdt')).toBeUndefined();
    expect(() => deleteCookie('__spdt')).not.toThrow();
    expect(() => rootDomain()).not.toThrow();
    expectSilence();
  });
});

describe('§5 deleteCookie', () => {
  it('removes a cookie set at the root domain', async () => {
    const { setCookie, deleteCookie, getCookie } = await fresh();
    setCookie('__spdt', 'abc', 3600, 'example.co.uk');
    deleteCookie('__spdt');
    expect(getCookie('__spdt')).toBeUndefined();
    expect(named('__spdt')).toEqual([]);
  });

  it('removes a host-only cookie', async () => {
    const { setCookie, deleteCookie } = await fresh();
    setCookie('sp_click_id', 'c', 3600, '');
    deleteCookie('sp_click_id');
    expect(named('sp_click_id')).toEqual([]);
  });

  it('removes the cookie at every level at once, including copies written without Secure or SameSite', async () => {
    document.cookie = '__spdt=root; path=/; domain=example.co.uk';
    document.cookie = '__spdt=host; path=/';
    document.cookie = '__spdt=sub; path=/; domain=shop.example.co.uk';
    document.cookie = 'keep=1; path=/; domain=example.co.uk';
    expect(named('__spdt')).not.toEqual([]);
    const { deleteCookie } = await fresh();
    deleteCookie('__spdt');
    expect(named('__spdt')).toEqual([]);
    expect(pageCookies()).toEqual(['keep=1']);
  });

  it('is harmless for a cookie that does not exist', async () => {
    document.cookie = 'keep=1; path=/';
    const { deleteCookie } = await fresh();
    expect(() => deleteCookie('__spdt')).not.toThrow();
    expect(pageCookies()).toEqual(['keep=1']);
  });

  it('writes nothing once the cookie is gone: never at the public suffix co.uk (Firefox reports such a write)', async () => {
    const { setCookie, deleteCookie } = await fresh();
    setCookie('__spdt', 'abc', 3600, 'example.co.uk');
    const writes = vi.spyOn(Document.prototype, 'cookie', 'set');
    deleteCookie('__spdt');
    deleteCookie('sp_click_id'); // never set
    expect(named('__spdt')).toEqual([]);
    expect(writes.mock.calls.map(([c]) => /domain=([^;]*)/.exec(c)?.[1] ?? 'host-only')).toEqual(['host-only', 'shop.example.co.uk', 'example.co.uk']);
    writes.mockRestore();
  });
});

describe.each(['local', 'session'] as const)('§4 %s store', (name) => {
  const kind = name == 'local' ? 'localStorage' : 'sessionStorage';
  const area = () => (kind == 'localStorage' ? localStorage : sessionStorage);

  it(`writes through to ${kind}, reporting success`, async () => {
    const store = (await fresh())[name];
    expect(store.set('__spdt_test', 'v1')).toBe(true);
    expect(area().getItem('__spdt_test')).toBe('v1');
    expect(store.get('__spdt_test')).toBe('v1');
    store.remove('__spdt_test');
    expect(area().getItem('__spdt_test')).toBeNull();
    expect(store.get('__spdt_test')).toBeNull();
  });

  it('reads what the page already stored, and null for a key never set', async () => {
    area().setItem('__spdt_prev', 'from an earlier page');
    const store = (await fresh())[name];
    expect(store.get('__spdt_prev')).toBe('from an earlier page');
    expect(store.get('__spdt_none')).toBeNull();
  });

  it(`never throws, and stays silent, when ${kind} access throws: the refused write is reported`, async () => {
    blockStorage(kind);
    const store = (await fresh())[name];
    let written: boolean | undefined;
    expect(() => (written = store.set('__spdt_test', 'v1'))).not.toThrow();
    expect(written).toBe(false);
    expect(() => store.get('__spdt_test')).not.toThrow();
    expect(store.get('__spdt_test')).toBeNull();
    expect(() => store.remove('__spdt_test')).not.toThrow();
    expectSilence();
  });

  it(`reports a write refused for quota without throwing, silently`, async () => {
    const store = (await fresh())[name];
    vi.spyOn(Storage.prototype, 'setItem').mockImplementation(() => {
      throw new DOMException('quota', 'QuotaExceededError');
    });
    let written: boolean | undefined;
    expect(() => (written = store.set('__spdt_test', 'new'))).not.toThrow();
    expect(written).toBe(false);
    expectSilence();
  });

  it(`never throws when getItem or removeItem throw`, async () => {
    area().setItem('__spdt_test', 'v');
    const store = (await fresh())[name];
    vi.spyOn(Storage.prototype, 'getItem').mockImplementation(() => {
      throw new DOMException('blocked', 'SecurityError');
    });
    vi.spyOn(Storage.prototype, 'removeItem').mockImplementation(() => {
      throw new DOMException('blocked', 'SecurityError');
    });
    expect(store.get('__spdt_test')).toBeNull();
    expect(() => store.remove('__spdt_test')).not.toThrow();
    expectSilence();
  });

  it('touches only its own area', async () => {
    const { local, session } = await fresh();
    local.set('__spdt', 'L');
    session.set('__spdt', 'S');
    expect(localStorage.getItem('__spdt')).toBe('L');
    expect(sessionStorage.getItem('__spdt')).toBe('S');
    local.remove('__spdt');
    expect(local.get('__spdt')).toBeNull();
    expect(session.get('__spdt')).toBe('S');
  });
});
