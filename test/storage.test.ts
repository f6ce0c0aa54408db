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
const getCookieValue = (name: string) => pageCookies().find((c) => c.startsWith(name + '='))?.slice(name.length + 1);

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

  it('does not touch the other cookies of the page (it adds only its marker)', async () => {
    document.cookie = 'keep=1; path=/';
    document.cookie = 'wide=2; path=/; domain=example.co.uk';
    const { rootDomain } = await fresh();
    rootDomain();
    expect(pageCookies().sort()).toEqual(['__spdt_m=3', 'keep=1', 'wide=2']);
  });

  it('is found once per page: a second call writes no cookie', async () => {
    const { rootDomain } = await fresh();
    const first = rootDomain();
    const writes = vi.spyOn(Document.prototype, 'cookie', 'set');
    expect(rootDomain()).toBe(first);
    expect(writes).not.toHaveBeenCalled();
  });

  it('is kept in the host-only marker __spdt_m as a label count: the next page reads it and writes no cookie', async () => {
    const first = await fresh();
    expect(first.rootDomain()).toBe('example.co.uk');
    expect(named('__spdt_m')).toMatchObject([{ value: '3', hostOnly: true, path: '/', secure: true, sameSite: 'lax', maxAge: 400 * 86400 }]);

    const nextPage = await fresh(); // a new page: a new module, the same cookies
    const writes = vi.spyOn(Document.prototype, 'cookie', 'set');
    expect(nextPage.rootDomain()).toBe('example.co.uk');
    expect(writes).not.toHaveBeenCalled();
  });

  it("keeps a host-only answer ('') as 0", async () => {
    dom.reconfigure({ url: 'https://localhost/' });
    expect((await fresh()).rootDomain()).toBe('');
    expect(document.cookie).toBe('__spdt_m=0');
    const writes = vi.spyOn(Document.prototype, 'cookie', 'set');
    expect((await fresh()).rootDomain()).toBe('');
    expect(writes).not.toHaveBeenCalled();
  });

  it.each(['', 'a', '33', '3A', '3-a', 'x3'])('probes again past a marker it cannot read (%j)', async (bad) => {
    document.cookie = `__spdt_m=${bad}; path=/`;
    const { rootDomain } = await fresh();
    const writes = vi.spyOn(Document.prototype, 'cookie', 'set');
    expect(rootDomain()).toBe('example.co.uk');
    expect(writes.mock.calls.map(([c]) => String(c).split(';')[0])).toContain('__spdt_probe=1');
    expect(getCookieValue('__spdt_m')).toBe('3');
  });

  it('trusts a marker written on another host of the site only for its own host (host-only)', async () => {
    const first = await fresh();
    first.rootDomain();
    expect(jar.getCookiesSync('https://other.example.co.uk/').map((c) => c.key)).not.toContain('__spdt_m');
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
    const { setCookie, getCookie, deleteCookies, rootDomain } = await fresh();
    expect(() => setCookie('__spdt', 'abc', 60, '')).not.toThrow();
    expect(getCookie('__spdt')).toBeUndefined();
    expect(() => deleteCookies('__spdt')).not.toThrow();
    expect(() => rootDomain()).not.toThrow();
    expectSilence();
  });
});

describe('§5 deleteCookies', () => {
  it('removes a cookie set at the root domain', async () => {
    const { setCookie, deleteCookies, getCookie } = await fresh();
    setCookie('__spdt', 'abc', 3600, 'example.co.uk');
    deleteCookies('__spdt');
    expect(getCookie('__spdt')).toBeUndefined();
    expect(named('__spdt')).toEqual([]);
  });

  it('removes a host-only cookie', async () => {
    const { setCookie, deleteCookies } = await fresh();
    setCookie('sp_click_id', 'c', 3600, '');
    deleteCookies('sp_click_id');
    expect(named('sp_click_id')).toEqual([]);
  });

  it('removes the cookie at every level at once, including copies written without Secure or SameSite', async () => {
    document.cookie = '__spdt=root; path=/; domain=example.co.uk';
    document.cookie = '__spdt=host; path=/';
    document.cookie = '__spdt=sub; path=/; domain=shop.example.co.uk';
    document.cookie = 'keep=1; path=/; domain=example.co.uk';
    expect(named('__spdt')).not.toEqual([]);
    const { deleteCookies } = await fresh();
    deleteCookies('__spdt');
    expect(named('__spdt')).toEqual([]);
    expect(pageCookies()).toEqual(['keep=1']);
  });

  it('is harmless for a cookie that does not exist', async () => {
    document.cookie = 'keep=1; path=/';
    const { deleteCookies } = await fresh();
    expect(() => deleteCookies('__spdt')).not.toThrow();
    expect(pageCookies()).toEqual(['keep=1']);
  });

  it('writes nothing once the cookie is gone: never at the public suffix co.uk (Firefox reports such a write)', async () => {
    const { setCookie, deleteCookies } = await fresh();
    setCookie('__spdt', 'abc', 3600, 'example.co.uk');
    const writes = vi.spyOn(Document.prototype, 'cookie', 'set');
    deleteCookies('__spdt', 'sp_click_id'); // the second never set
    expect(named('__spdt')).toEqual([]);
    expect(writes.mock.calls.map(([c]) => /domain=([^;]*)/.exec(c)?.[1] ?? 'host-only')).toEqual(['host-only', 'shop.example.co.uk', 'example.co.uk']);
    writes.mockRestore();
  });
});

/** Counts every access to `window.localStorage` and `window.sessionStorage` (what opens a storage area in a browser). */
function countStorageOpens(): () => number {
  let opens = 0;
  for (const kind of ['localStorage', 'sessionStorage'] as const) {
    const original = Object.getOwnPropertyDescriptor(window, kind)!;
    Object.defineProperty(window, kind, {
      configurable: true,
      get() {
        opens++;
        return original.get!.call(window);
      },
    });
    restore.push(() => Object.defineProperty(window, kind, original));
  }
  return () => opens;
}

const DEVICE = '__spdt=0123456789abcdef0123456789abcdef; path=/; domain=example.co.uk';

describe('§4 isMark: what the marker __spdt_m may hold', () => {
  it.each(['0', '3', '3o', '3a', '3oa', '9ao'])('%j is a marker', async (value) => {
    expect((await fresh()).isMark(value)).toBe(true);
  });
  it.each([undefined, '', 'o', '33', '3A', '3-', '3 a', 'x3', '-1'])('%j is not', async (value) => {
    expect((await fresh()).isMark(value)).toBe(false);
  });
});

describe('§4 local store: localStorage behind the marker __spdt_m', () => {
  it('a new visitor (no marker, no device cookie): get and remove never open localStorage, and write no cookie', async () => {
    localStorage.setItem('__spdt_alias', 'left by some other script');
    const { local } = await fresh();
    const opens = countStorageOpens();
    const writes = vi.spyOn(Document.prototype, 'cookie', 'set');
    expect(local.get('__spdt_outbox')).toBeNull();
    expect(local.get('__spdt_alias')).toBeNull();
    local.remove('__spdt_outbox');
    expect(opens()).toBe(0);
    expect(writes).not.toHaveBeenCalled();
  });

  it('set writes through and marks the key by its letter; get reads it back; remove deletes it and the mark', async () => {
    const { local } = await fresh();
    expect(local.set('__spdt_outbox', 'v1')).toBe(true);
    expect(localStorage.getItem('__spdt_outbox')).toBe('v1');
    expect(getCookieValue('__spdt_m')).toBe('3o');
    expect(named('__spdt_m')).toMatchObject([{ hostOnly: true, secure: true, sameSite: 'lax', path: '/', maxAge: 400 * 86400 }]);
    expect(local.set('__spdt_alias', 'a1')).toBe(true);
    expect(getCookieValue('__spdt_m')).toBe('3oa');
    expect(local.get('__spdt_outbox')).toBe('v1');
    local.remove('__spdt_outbox');
    expect(localStorage.getItem('__spdt_outbox')).toBeNull();
    expect(getCookieValue('__spdt_m')).toBe('3a');
    expect(local.get('__spdt_outbox')).toBeNull();
    expect(local.get('__spdt_alias')).toBe('a1');
  });

  it('the next page finds what is marked, and opens nothing for what is not', async () => {
    (await fresh()).local.set('__spdt_alias', 'a1');
    const { local } = await fresh();
    const opens = countStorageOpens();
    expect(local.get('__spdt_outbox')).toBeNull();
    expect(opens()).toBe(0);
    expect(local.get('__spdt_alias')).toBe('a1');
    expect(opens()).toBe(1);
  });

  it('a marker that says nothing is stored: nothing is opened, even with a device cookie', async () => {
    document.cookie = DEVICE;
    document.cookie = '__spdt_m=3; path=/';
    const { local } = await fresh();
    const opens = countStorageOpens();
    expect(local.get('__spdt_outbox')).toBeNull();
    expect(local.get('__spdt_alias')).toBeNull();
    expect(opens()).toBe(0);
  });

  it('a stale mark costs one opening, and is corrected', async () => {
    document.cookie = '__spdt_m=3oa; path=/';
    const { local } = await fresh();
    expect(local.get('__spdt_alias')).toBeNull();
    expect(getCookieValue('__spdt_m')).toBe('3o');
    expect(local.get('__spdt_outbox')).toBeNull();
    expect(getCookieValue('__spdt_m')).toBe('3');
  });

  it('a visitor of the earlier version (a device cookie, no marker): its outbox and alias are found, then marked', async () => {
    document.cookie = DEVICE;
    localStorage.setItem('__spdt_alias', 'old alias');
    const { local, rootDomain } = await fresh();
    expect(local.get('__spdt_outbox')).toBeNull();
    expect(local.get('__spdt_alias')).toBe('old alias');
    expect(getCookieValue('__spdt_m')).toBeUndefined(); // reads write no marker ...
    rootDomain(); // ... the first send of the page does (identity.ts)
    expect(getCookieValue('__spdt_m')).toBe('3a');

    const opens = countStorageOpens();
    const nextPage = (await fresh()).local;
    expect(nextPage.get('__spdt_outbox')).toBeNull();
    expect(opens()).toBe(0);
  });

  it('keeps the marks another tab wrote after this page read the marker', async () => {
    const { local } = await fresh();
    local.set('__spdt_alias', 'a1'); // this page: marker 3a
    document.cookie = '__spdt_m=3ao; path=/'; // another tab persisted an outbox
    localStorage.setItem('__spdt_outbox', 'from the other tab');
    local.set('__spdt_alias', 'a2');
    expect(getCookieValue('__spdt_m')).toMatch(/^3(ao|oa)$/);
    expect(local.get('__spdt_outbox')).toBe('from the other tab');
  });

  it('removing a key that is not marked writes nothing (consent denied on a new visitor)', async () => {
    const { local } = await fresh();
    const writes = vi.spyOn(Document.prototype, 'cookie', 'set');
    local.remove('__spdt_alias');
    expect(writes).not.toHaveBeenCalled();
  });

  it('deleteCookies with the marker deletes it and forgets it: the page probes and marks again as for a new visitor', async () => {
    const { local, deleteCookies, rootDomain, MARK } = await fresh();
    local.set('__spdt_alias', 'a1');
    local.remove('__spdt_alias');
    deleteCookies(MARK);
    expect(named('__spdt_m')).toEqual([]);
    const writes = vi.spyOn(Document.prototype, 'cookie', 'set');
    expect(rootDomain()).toBe('example.co.uk');
    expect(writes.mock.calls.map(([c]) => String(c).split(';')[0])).toContain('__spdt_probe=1');
    expect(getCookieValue('__spdt_m')).toBe('3');
  });

  it('never throws, and stays silent, when localStorage access throws: the refused write is reported, and marks nothing', async () => {
    blockStorage('localStorage');
    const { local } = await fresh();
    let written: boolean | undefined;
    expect(() => (written = local.set('__spdt_test', 'v1'))).not.toThrow();
    expect(written).toBe(false);
    expect(getCookieValue('__spdt_m')).toBeUndefined();
    expect(() => local.get('__spdt_test')).not.toThrow();
    expect(local.get('__spdt_test')).toBeNull();
    expect(() => local.remove('__spdt_test')).not.toThrow();
    expectSilence();
  });

  it('a write refused for quota is reported without throwing, and the old value keeps its mark', async () => {
    const { local } = await fresh();
    local.set('__spdt_outbox', 'old');
    vi.spyOn(Storage.prototype, 'setItem').mockImplementation(() => {
      throw new DOMException('quota', 'QuotaExceededError');
    });
    let written: boolean | undefined;
    expect(() => (written = local.set('__spdt_outbox', 'new'))).not.toThrow();
    expect(written).toBe(false);
    expect(getCookieValue('__spdt_m')).toBe('3o');
    expect(local.get('__spdt_outbox')).toBe('old');
    expectSilence();
  });

  it('never throws when getItem or removeItem throw', async () => {
    document.cookie = '__spdt_m=3t; path=/';
    localStorage.setItem('__spdt_test', 'v');
    const { local } = await fresh();
    vi.spyOn(Storage.prototype, 'getItem').mockImplementation(() => {
      throw new DOMException('blocked', 'SecurityError');
    });
    vi.spyOn(Storage.prototype, 'removeItem').mockImplementation(() => {
      throw new DOMException('blocked', 'SecurityError');
    });
    expect(local.get('__spdt_test')).toBeNull();
    expect(() => local.remove('__spdt_test')).not.toThrow();
    expectSilence();
  });

  it('never touches sessionStorage', async () => {
    const { local, rootDomain } = await fresh();
    const session = vi.spyOn(window, 'sessionStorage', 'get');
    rootDomain();
    local.set('__spdt_alias', 'a');
    local.get('__spdt_alias');
    local.remove('__spdt_alias');
    expect(session).not.toHaveBeenCalled();
    expect(sessionStorage.length).toBe(0);
  });
});
