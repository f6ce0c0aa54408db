// @vitest-environment-options {"url": "http://localhost:3000/shop"}
// Unit tests of src/storage.ts on hosts without a root domain (SPEC §3 cookie_domain auto): on
// localhost and on IP addresses every cookie is host-only, and no probe cookie is left behind.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

interface JarCookie {
  key: string;
  hostOnly: boolean;
  secure: boolean;
  sameSite: string;
  path: string;
}
interface Dom {
  cookieJar: { getCookiesSync(url: string): JarCookie[]; removeAllCookiesSync(): void };
  reconfigure(o: { url: string }): void;
}

const START_URL = 'http://localhost:3000/shop';
const dom = (globalThis as unknown as { jsdom: Dom }).jsdom;

async function fresh() {
  vi.resetModules();
  return import('../src/storage');
}

const cookies = () => dom.cookieJar.getCookiesSync(location.href);

beforeEach(() => dom.cookieJar.removeAllCookiesSync());
afterEach(() => {
  vi.restoreAllMocks();
  if (location.href != START_URL) dom.reconfigure({ url: START_URL });
});

describe('§3 rootDomain() where there is no root domain', () => {
  it.each([
    ['http://localhost:3000/shop'],
    ['http://127.0.0.1:8080/'],
    ['http://192.168.1.20/shop'],
    ['http://[::1]:8080/'],
    ['http://intranet/'],
  ])("is '' (host-only) on %s, and leaves no probe cookie", async (url) => {
    dom.reconfigure({ url });
    const { rootDomain } = await fresh();
    expect(rootDomain()).toBe('');
    expect(document.cookie).not.toContain('__spdt_probe');
    expect(cookies().map((c) => c.key)).not.toContain('__spdt_probe');
  });

  it('writes no probe at all on localhost', async () => {
    expect(location.hostname).toBe('localhost');
    const { rootDomain } = await fresh();
    const writes = vi.spyOn(Document.prototype, 'cookie', 'set');
    rootDomain();
    for (const [written] of writes.mock.calls) expect(written).not.toMatch(/domain=/i);
  });
});

describe('§4 cookies on localhost', () => {
  it('setCookie with the root domain writes a host-only cookie, without Secure on http', async () => {
    const { rootDomain, setCookie, getCookie } = await fresh();
    setCookie('__spdt', 'abc', 3600, rootDomain());
    expect(getCookie('__spdt')).toBe('abc');
    // Beside it, the marker with the answer: 0 labels, host-only.
    expect(cookies().map((c) => [c.key, (c as JarCookie & { value: string }).value])).toEqual([['__spdt_m', '0'], ['__spdt', 'abc']]);
    for (const c of cookies()) expect(c).toMatchObject({ hostOnly: true, secure: false, sameSite: 'lax', path: '/' });
  });

  it('deleteCookies removes it', async () => {
    document.cookie = '__spdt=abc; path=/';
    document.cookie = 'keep=1; path=/';
    const { deleteCookies, getCookie } = await fresh();
    deleteCookies('__spdt');
    expect(getCookie('__spdt')).toBeUndefined();
    expect(document.cookie).toBe('keep=1');
  });

  it('deleteCookies removes a host-only cookie on an IP address', async () => {
    dom.reconfigure({ url: 'http://127.0.0.1:8080/' });
    document.cookie = 'sp_click_id=c1; path=/';
    const { deleteCookies } = await fresh();
    deleteCookies('sp_click_id');
    expect(document.cookie).toBe('');
  });
});
