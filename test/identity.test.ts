// Unit tests of src/identity.ts (SPEC §4 identity on the client, §5 alias storage and forgetting)
// in jsdom at https://shop.example.co.uk/products/1?ref=x, whose root domain is example.co.uk.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { IdentityConfig } from '../src/identity';

interface JarCookie {
  key: string;
  value: string;
  domain: string;
  hostOnly: boolean;
  path: string;
  secure: boolean;
  sameSite: string;
  maxAge: number | string;
}
const jar = (globalThis as unknown as { jsdom: { cookieJar: { getCookiesSync(url: string): JarCookie[]; removeAllCookiesSync(): void } } })
  .jsdom.cookieJar;

const HEX32 = /^[0-9a-f]{32}$/;
const DAY = 86400;
const PAGE = 'https://shop.example.co.uk/products/1';
const LEGACY = '0123456789abcdef0123456789abcdef';
const EXISTING = 'fedcba9876543210fedcba9876543210';
const H = 'a'.repeat(64);
const P = 'b'.repeat(64);

/** A fresh identity (and a fresh storage module, so the root domain is found again). */
async function identity(config: Partial<IdentityConfig> = {}) {
  vi.resetModules();
  const ids = await import('../src/identity');
  const full = { cookies: true, cookie_domain: '', cookie_days: 365, click_days: 30, ...config };
  return { captureClick: ids.captureClick, mergeAlias: ids.mergeAlias, resolve: () => ids.resolveIds(full), forget: ids.forgetIds };
}

/** Every cookie named `name`, at any domain level of this site. */
function cookies(name: string): JarCookie[] {
  const urls = ['https://shop.example.co.uk/', 'https://example.co.uk/', 'https://other.example.co.uk/'];
  const seen = new Map<string, JarCookie>();
  for (const c of urls.flatMap((u) => jar.getCookiesSync(u))) if (c.key == name) seen.set(c.domain + c.hostOnly, c);
  return [...seen.values()];
}
const cookie = (name: string) => {
  const found = cookies(name);
  expect(found.length).toBeLessThanOrEqual(1);
  return found[0];
};
const storedAlias = () => JSON.parse(localStorage.getItem('__spdt_alias')!);
/** An alias as an earlier page left it: in localStorage, and marked in __spdt_m. */
const storeAlias = (value: string) => {
  localStorage.setItem('__spdt_alias', value);
  document.cookie = '__spdt_m=3a; path=/';
};
const nothingStored = () => {
  expect(document.cookie).toBe('');
  expect(cookies('__spdt').concat(cookies('sp_click_id'))).toEqual([]);
  expect(localStorage.length).toBe(0);
  expect(sessionStorage.length).toBe(0);
};

let restore: (() => void)[] = [];
function block(kind: 'localStorage' | 'sessionStorage') {
  const original = Object.getOwnPropertyDescriptor(window, kind)!;
  Object.defineProperty(window, kind, {
    configurable: true,
    get() {
      throw new DOMException('The operation is insecure.', 'SecurityError');
    },
  });
  restore.push(() => Object.defineProperty(window, kind, original));
}
function blockCookies() {
  const fail = () => {
    throw new DOMException('blocked', 'SecurityError');
  };
  Object.defineProperty(document, 'cookie', { configurable: true, get: fail, set: fail });
  restore.push(() => delete (document as { cookie?: string }).cookie);
}

beforeEach(() => {
  jar.removeAllCookiesSync();
  localStorage.clear();
  sessionStorage.clear();
});

afterEach(() => {
  restore.reverse().forEach((fn) => fn());
  restore = [];
  vi.restoreAllMocks();
});

describe('§4 nothing is written before resolve()', () => {
  it('creating, capturing a click id and merging an alias write no cookie and no storage', async () => {
    const cookieWrites = vi.spyOn(Document.prototype, 'cookie', 'set');
    const storageWrites = vi.spyOn(Storage.prototype, 'setItem');
    const id = await identity();
    id.captureClick(PAGE + '?spclid=abc');
    id.mergeAlias({ hashed_email: H, id: 'u1' });
    expect(cookieWrites).not.toHaveBeenCalled();
    expect(storageWrites).not.toHaveBeenCalled();
    nothingStored();
  });
});

describe('§4 the device id (__spdt)', () => {
  it('resolve() creates a 32 lower-case hex uid and stores it in __spdt', async () => {
    const ids = (await identity()).resolve();
    expect(ids.uid).toMatch(HEX32);
    expect(cookie('__spdt').value).toBe(ids.uid);
  });

  it('is written at the root domain with path=/, max-age, SameSite=Lax and Secure', async () => {
    (await identity()).resolve();
    expect(cookie('__spdt')).toMatchObject({
      domain: 'example.co.uk',
      hostOnly: false,
      path: '/',
      maxAge: 365 * DAY,
      sameSite: 'lax',
      secure: true,
    });
  });

  it('honours cookie_days and cookie_domain', async () => {
    (await identity({ cookie_days: 10, cookie_domain: 'shop.example.co.uk' })).resolve();
    expect(cookie('__spdt')).toMatchObject({ domain: 'shop.example.co.uk', maxAge: 10 * DAY });
  });

  it('stays the same across resolve() calls', async () => {
    const id = await identity();
    const first = id.resolve();
    expect(id.resolve().uid).toBe(first.uid);
    expect(id.resolve().sid).toBe(first.sid);
  });

  it('keeps an existing __spdt, renewing its lifetime', async () => {
    document.cookie = `__spdt=${EXISTING}; path=/; domain=example.co.uk; max-age=60`;
    const ids = (await identity()).resolve();
    expect(ids.uid).toBe(EXISTING);
    expect(cookie('__spdt')).toMatchObject({ value: EXISTING, maxAge: 365 * DAY });
  });

  it('adopts a 32-hex __pdst when no __spdt exists', async () => {
    document.cookie = `__pdst=${LEGACY}; path=/`;
    const ids = (await identity()).resolve();
    expect(ids.uid).toBe(LEGACY);
    expect(cookie('__spdt').value).toBe(LEGACY);
  });

  it('adopts an upper-case __pdst in lower case', async () => {
    document.cookie = `__pdst=${LEGACY.toUpperCase()}; path=/`;
    expect((await identity()).resolve().uid).toBe(LEGACY);
  });

  it('prefers an existing __spdt over __pdst', async () => {
    document.cookie = `__pdst=${LEGACY}; path=/`;
    document.cookie = `__spdt=${EXISTING}; path=/`;
    expect((await identity()).resolve().uid).toBe(EXISTING);
  });

  it.each(['not-an-id', EXISTING.slice(0, 31), EXISTING + 'a', EXISTING.toUpperCase(), 'g'.repeat(32), ''])(
    'ignores a malformed __spdt %j',
    async (bad) => {
      document.cookie = `__spdt=${bad}; path=/`;
      const ids = (await identity()).resolve();
      expect(ids.uid).toMatch(HEX32);
      expect(ids.uid).not.toBe(bad);
      expect(cookies('__spdt').map((c) => c.value)).toContain(ids.uid);
    },
  );

  it('ignores a malformed __pdst', async () => {
    document.cookie = '__pdst=1234; path=/';
    const ids = (await identity()).resolve();
    expect(ids.uid).toMatch(HEX32);
    expect(ids.uid).not.toBe('1234');
  });

  it('lives in page memory when cookies throw', async () => {
    blockCookies();
    const id = await identity();
    const first = id.resolve();
    expect(first.uid).toMatch(HEX32);
    expect(id.resolve().uid).toBe(first.uid);
  });
});

describe('§4 the session id (__spdt_s)', () => {
  const MIN = 60_000;
  beforeEach(() => vi.useFakeTimers({ toFake: ['Date'] }));
  afterEach(() => vi.useRealTimers());

  it('resolve() creates a 32-hex session id in __spdt_s, with the attributes of __spdt and max-age 1800', async () => {
    const ids = (await identity()).resolve();
    expect(ids.sid).toMatch(HEX32);
    expect(cookie('__spdt_s')).toMatchObject({ value: ids.sid, domain: 'example.co.uk', hostOnly: false, path: '/', maxAge: 1800, sameSite: 'lax', secure: true });
  });

  it('honours cookie_domain, as __spdt does', async () => {
    (await identity({ cookie_domain: 'shop.example.co.uk' })).resolve();
    expect(cookie('__spdt_s')).toMatchObject({ domain: 'shop.example.co.uk' });
  });

  it.each(['co.uk', 'other.example.co.uk', 'example.com'])('a cookie_domain the browser refuses (%s) gives way to the root domain, for every send', async (refused) => {
    const id = await identity({ cookie_domain: refused });
    id.resolve();
    id.resolve();
    for (const name of ['__spdt', '__spdt_s']) expect(cookie(name)).toMatchObject({ domain: 'example.co.uk' });
  });

  it('is distinct from the device id', async () => {
    const ids = (await identity()).resolve();
    expect(ids.sid).not.toBe(ids.uid);
  });

  it('continues the session of the cookie', async () => {
    document.cookie = `__spdt_s=${EXISTING}; path=/; domain=example.co.uk; max-age=60`;
    expect((await identity()).resolve().sid).toBe(EXISTING);
    expect(cookie('__spdt_s')).toMatchObject({ value: EXISTING, maxAge: 1800 });
  });

  it('replaces a malformed session id', async () => {
    document.cookie = '__spdt_s=junk; path=/';
    const ids = (await identity()).resolve();
    expect(ids.sid).toMatch(HEX32);
    expect(cookies('__spdt_s').map((c) => c.value)).toContain(ids.sid);
  });

  it('every send renews it: 25 minutes after the last of several sends it is still the same session', async () => {
    const id = await identity();
    const first = id.resolve().sid;
    vi.advanceTimersByTime(20 * MIN);
    expect(id.resolve().sid).toBe(first);
    vi.advanceTimersByTime(25 * MIN); // 45 minutes after the first send: alive only because it was renewed
    expect(cookie('__spdt_s')?.value).toBe(first);
    expect((await identity()).resolve().sid).toBe(first); // and so is the next page's
  });

  it('ends after 30 minutes without a send: the next send starts a new session', async () => {
    const id = await identity();
    const first = id.resolve().sid;
    vi.advanceTimersByTime(31 * MIN);
    expect(cookie('__spdt_s')).toBeUndefined();
    const next = id.resolve().sid;
    expect(next).toMatch(HEX32);
    expect(next).not.toBe(first);
    expect(cookie('__spdt_s').value).toBe(next);
  });

  it('after 30 minutes of this page without a send, goes on with the session another tab kept going', async () => {
    const id = await identity();
    id.resolve();
    vi.advanceTimersByTime(40 * MIN);
    document.cookie = `__spdt_s=${EXISTING}; path=/; domain=example.co.uk; max-age=1800`; // the other tab's send
    expect(id.resolve().sid).toBe(EXISTING);
  });

  it('within 30 minutes reads no cookie: the page knows its session', async () => {
    const id = await identity();
    id.resolve();
    vi.advanceTimersByTime(29 * MIN);
    const reads = vi.spyOn(Document.prototype, 'cookie', 'get');
    id.resolve();
    expect(reads).not.toHaveBeenCalled();
  });

  it('lives in page memory when cookies throw, for 30 minutes after each send', async () => {
    blockCookies();
    const id = await identity();
    const first = id.resolve().sid;
    expect(first).toMatch(HEX32);
    vi.advanceTimersByTime(29 * MIN);
    expect(id.resolve().sid).toBe(first);
    vi.advanceTimersByTime(31 * MIN);
    expect(id.resolve().sid).not.toBe(first);
  });

  it('never touches sessionStorage', async () => {
    const session = vi.spyOn(window, 'sessionStorage', 'get');
    const id = await identity();
    id.resolve();
    id.forget();
    expect(session).not.toHaveBeenCalled();
  });
});

describe('§4 the click id (sp_click_id)', () => {
  it('is read from spclid, which wins over sp_click_id', async () => {
    const id = await identity();
    id.captureClick(PAGE + '?sp_click_id=second&spclid=first');
    expect(id.resolve().cid).toBe('first');
    expect(cookie('sp_click_id').value).toBe('first');
  });

  it('is read from sp_click_id alone', async () => {
    const id = await identity();
    id.captureClick(PAGE + '?x=1&sp_click_id=only');
    expect(id.resolve().cid).toBe('only');
    expect(cookie('sp_click_id').value).toBe('only');
  });

  it('is written at the root domain for click_days', async () => {
    const id = await identity({ click_days: 7 });
    id.captureClick(PAGE + '?spclid=abc');
    id.resolve();
    expect(cookie('sp_click_id')).toMatchObject({ domain: 'example.co.uk', path: '/', maxAge: 7 * DAY, sameSite: 'lax', secure: true });
  });

  it('is read back from its cookie on a later page', async () => {
    document.cookie = 'sp_click_id=abc%20def; path=/';
    expect((await identity()).resolve().cid).toBe('abc def');
  });

  it('is not erased by a URL without a click id', async () => {
    document.cookie = 'sp_click_id=kept; path=/';
    const id = await identity();
    id.captureClick(PAGE + '?utm_source=x');
    expect(id.resolve().cid).toBe('kept');
    expect(cookie('sp_click_id').value).toBe('kept');
  });

  it('a new click id replaces the stored one', async () => {
    document.cookie = 'sp_click_id=old; path=/; domain=example.co.uk';
    const id = await identity();
    id.captureClick(PAGE + '?spclid=new');
    expect(id.resolve().cid).toBe('new');
    expect(cookie('sp_click_id').value).toBe('new');
  });

  it('a click id seen after the first resolve() replaces the earlier one', async () => {
    const id = await identity();
    id.captureClick(PAGE + '?spclid=one');
    id.resolve();
    id.captureClick(PAGE + '/next?spclid=two');
    expect(id.resolve().cid).toBe('two');
    expect(cookie('sp_click_id').value).toBe('two');
  });

  it('is stored URL-encoded', async () => {
    const raw = 'a b/ü=;,"%';
    const id = await identity();
    id.captureClick(PAGE + '?spclid=' + encodeURIComponent(raw));
    expect(id.resolve().cid).toBe(raw);
    expect(cookie('sp_click_id').value).toBe(encodeURIComponent(raw));
  });

  it('is stored in at most 256 characters', async () => {
    const id = await identity();
    id.captureClick(PAGE + '?spclid=' + 'x'.repeat(1000));
    const ids = id.resolve();
    expect(cookie('sp_click_id').value).toBe('x'.repeat(256));
    expect(ids.cid).toBe('x'.repeat(256));
  });

  it('a long multi-byte click id is still stored, cut to at most 256 characters that decode', async () => {
    // Shifting the text moves the 256-character cut to every position inside an escape sequence.
    for (let offset = 0; offset < 12; offset++) {
      jar.removeAllCookiesSync();
      const raw = 'x'.repeat(offset) + 'ü€😀'.repeat(100);
      const id = await identity();
      id.captureClick(PAGE + '?spclid=' + encodeURIComponent(raw));
      const ids = id.resolve();
      const stored = cookie('sp_click_id')?.value;
      expect(stored, `offset ${offset}`).toBeDefined();
      expect(stored!.length).toBeLessThanOrEqual(256);
      expect(stored!.length).toBeGreaterThan(240);
      expect(() => decodeURIComponent(stored!)).not.toThrow();
      expect(raw.startsWith(decodeURIComponent(stored!))).toBe(true);
      expect(ids.cid).toBe(decodeURIComponent(stored!));
    }
  });
});

describe('§3 cookies: false', () => {
  it('writes nothing and returns no uid, even with a click id and an alias', async () => {
    const id = await identity({ cookies: false });
    id.captureClick(PAGE + '?spclid=abc');
    id.mergeAlias({ hashed_email: H });
    const ids = id.resolve();
    expect(ids.uid).toBeUndefined();
    expect(ids.sid).toMatch(HEX32);
    expect(ids.cid).toBe('abc');
    expect(ids.alias).toEqual({ hashed_email: H });
    nothingStored();
  });

  it('reads no cookie and no storage', async () => {
    document.cookie = `__spdt=${EXISTING}; path=/`;
    document.cookie = 'sp_click_id=stored; path=/';
    localStorage.setItem('__spdt_alias', JSON.stringify({ id: 'stored' }));
    sessionStorage.setItem('__spdt', LEGACY);
    const ids = (await identity({ cookies: false })).resolve();
    expect(ids.uid).toBeUndefined();
    expect(ids.cid).toBeUndefined();
    expect(ids.alias).toBeUndefined();
    expect(ids.sid).not.toBe(LEGACY);
  });

  it('keeps one session id for the page', async () => {
    const id = await identity({ cookies: false });
    expect(id.resolve().sid).toBe(id.resolve().sid);
  });
});

describe('§5 alias storage (localStorage __spdt_alias)', () => {
  it('stores only the alias fields', async () => {
    const id = await identity();
    id.mergeAlias({
      url: PAGE,
      referrer: 'https://ref.example/',
      hashed_email: H,
      hashed_phone_number: P,
      id: 'u-42',
      partner_user_id: 'p-7',
      click_id: 'c-1',
      extra: 'free prop',
      trunc: 1,
    });
    const ids = id.resolve();
    const expected = { hashed_email: H, hashed_phone_number: P, id: 'u-42', partner_user_id: 'p-7', click_id: 'c-1' };
    expect(storedAlias()).toEqual(expected);
    expect(ids.alias).toEqual(expected);
  });

  it('merges later alias calls into earlier ones', async () => {
    const id = await identity();
    id.mergeAlias({ id: 'u-1', hashed_email: H });
    id.resolve();
    id.mergeAlias({ hashed_phone_number: P, id: 'u-2' });
    expect(id.resolve().alias).toEqual({ id: 'u-2', hashed_email: H, hashed_phone_number: P });
    expect(storedAlias()).toEqual({ id: 'u-2', hashed_email: H, hashed_phone_number: P });
  });

  it('is attached on a later page from what was stored', async () => {
    const first = await identity();
    first.mergeAlias({ hashed_email: H, id: 'u-1' });
    first.resolve();
    expect(cookie('__spdt_m').value).toBe('3a');
    expect((await identity()).resolve().alias).toEqual({ hashed_email: H, id: 'u-1' });
  });

  it('is attached from what the earlier version of the tag stored (a __spdt cookie, no marker yet)', async () => {
    document.cookie = `__spdt=${EXISTING}; path=/; domain=example.co.uk`;
    localStorage.setItem('__spdt_alias', JSON.stringify({ hashed_email: H, id: 'u-0' }));
    expect((await identity()).resolve().alias).toEqual({ hashed_email: H, id: 'u-0' });
    // Marked now; the outbox the earlier version may have left stays marked until the transport looks.
    expect(cookie('__spdt_m').value).toBe('3oa');
  });

  it('a new visitor: localStorage is not opened at all', async () => {
    localStorage.setItem('__spdt_alias', JSON.stringify({ id: 'not ours to read' }));
    const opens = vi.spyOn(window, 'localStorage', 'get');
    expect((await identity()).resolve().alias).toBeUndefined();
    expect(opens).not.toHaveBeenCalled();
    expect(cookie('__spdt_m').value).toBe('3');
  });

  it('merges a new alias into the stored one', async () => {
    storeAlias(JSON.stringify({ hashed_email: H, id: 'old' }));
    const id = await identity();
    id.mergeAlias({ id: 'new' });
    expect(id.resolve().alias).toEqual({ hashed_email: H, id: 'new' });
    expect(storedAlias()).toEqual({ hashed_email: H, id: 'new' });
  });

  it('keeps only string fields', async () => {
    const id = await identity();
    id.mergeAlias({ id: 42, hashed_email: { x: 1 }, partner_user_id: 'p' });
    expect(id.resolve().alias).toEqual({ partner_user_id: 'p' });
  });

  it('is absent when nothing is known', async () => {
    expect((await identity()).resolve().alias).toBeUndefined();
    expect(localStorage.getItem('__spdt_alias')).toBeNull();
  });

  it.each(['not json', '{"id":', 'null', '[]', '"text"', '42', 'true', '{"id":{"nested":"x"}}'])(
    'ignores a corrupt stored alias %j, and replaces it on the next alias',
    async (corrupt) => {
      storeAlias(corrupt);
      const id = await identity();
      let ids: ReturnType<typeof id.resolve> | undefined;
      expect(() => (ids = id.resolve())).not.toThrow();
      expect(ids!.alias).toBeUndefined();
      id.mergeAlias({ id: 'u-2' });
      expect(id.resolve().alias).toEqual({ id: 'u-2' });
      expect(storedAlias()).toEqual({ id: 'u-2' });
    },
  );

  it('ignores a hostile stored alias safely (no prototype pollution, only alias fields)', async () => {
    storeAlias(
      '{"__proto__":{"polluted":1,"hashed_email":"evil"},"constructor":{"prototype":{"polluted":2}},"id":"u-1","hashed_phone_number":5,"extra":"e"}',
    );
    const ids = (await identity()).resolve();
    expect(ids.alias).toEqual({ id: 'u-1' });
    expect(Object.getPrototypeOf(ids.alias)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(ids.alias!.hashed_email).toBeUndefined();
  });

  it('lives in page memory when localStorage throws', async () => {
    block('localStorage');
    const id = await identity();
    id.mergeAlias({ hashed_email: H });
    expect(id.resolve().alias).toEqual({ hashed_email: H });
    id.mergeAlias({ id: 'u-1' });
    expect(id.resolve().alias).toEqual({ hashed_email: H, id: 'u-1' });
  });
});

describe('§5 forget() (consent denied)', () => {
  async function resolvedWithEverything() {
    const id = await identity();
    id.captureClick(PAGE + '?spclid=abc');
    id.mergeAlias({ hashed_email: H, id: 'u-1' });
    const ids = id.resolve();
    expect(cookie('__spdt')).toBeDefined();
    expect(cookie('sp_click_id')).toBeDefined();
    expect(localStorage.getItem('__spdt_alias')).not.toBeNull();
    expect(cookie('__spdt_s')).toBeDefined();
    expect(cookie('__spdt_m')).toBeDefined();
    return { id, ids };
  }

  it('deletes __spdt, __spdt_s, __spdt_m, sp_click_id and __spdt_alias', async () => {
    const { id } = await resolvedWithEverything();
    id.forget();
    for (const name of ['__spdt', '__spdt_s', '__spdt_m', 'sp_click_id']) expect(cookies(name), name).toEqual([]);
    expect(document.cookie).toBe('');
    expect(localStorage.getItem('__spdt_alias')).toBeNull();
  });

  it('deletes an alias the earlier version of the tag stored (no marker yet)', async () => {
    document.cookie = `__spdt=${EXISTING}; path=/; domain=example.co.uk`;
    localStorage.setItem('__spdt_alias', JSON.stringify({ id: 'u-0' }));
    const writes = vi.spyOn(Document.prototype, 'cookie', 'set');
    (await identity()).forget();
    expect(localStorage.getItem('__spdt_alias')).toBeNull();
    expect(document.cookie).toBe('');
    // Only deletions: no marker, no probe written while consent is being denied.
    for (const [written] of writes.mock.calls) expect(String(written)).toMatch(/=; path=\/; max-age=0/);
  });

  it('on a new visitor writes nothing and opens no storage', async () => {
    const writes = vi.spyOn(Document.prototype, 'cookie', 'set');
    const opens = vi.spyOn(window, 'localStorage', 'get');
    (await identity()).forget();
    expect(opens).not.toHaveBeenCalled();
    for (const [written] of writes.mock.calls) expect(String(written)).toMatch(/=; path=\/; max-age=0/);
  });

  it.each([
    ['the root domain and host-only', ['domain=example.co.uk', '']],
    ['the root domain and the full host as domain', ['domain=example.co.uk', 'domain=shop.example.co.uk']],
  ])('deletes them at every domain level they may have been written at: %s', async (_name, levels) => {
    for (const name of ['__spdt', '__spdt_s', 'sp_click_id'])
      for (const level of levels) document.cookie = `${name}=${level || 'host'}; path=/` + (level ? '; ' + level : '');
    expect(cookies('__spdt')).toHaveLength(2);
    expect(cookies('__spdt_s')).toHaveLength(2);
    expect(cookies('sp_click_id')).toHaveLength(2);
    (await identity()).forget();
    expect(cookies('__spdt')).toEqual([]);
    expect(cookies('__spdt_s')).toEqual([]);
    expect(cookies('sp_click_id')).toEqual([]);
    expect(document.cookie).toBe('');
  });

  it("leaves the site's other cookies and storage alone", async () => {
    document.cookie = 'site=1; path=/';
    document.cookie = '__spdt_other=2; path=/';
    localStorage.setItem('site', 'L');
    localStorage.setItem('__spdt_other', 'O');
    const { id } = await resolvedWithEverything();
    id.forget();
    expect(document.cookie).toBe('site=1; __spdt_other=2');
    expect(localStorage.getItem('site')).toBe('L');
  });

  it('forgets in memory too: a later resolve() starts a new identity', async () => {
    const { id, ids } = await resolvedWithEverything();
    id.forget();
    const next = id.resolve();
    expect(next.uid).toMatch(HEX32);
    expect(next.uid).not.toBe(ids.uid);
    expect(next.sid).not.toBe(ids.sid);
    expect(next.cid).toBeUndefined();
    expect(next.alias).toBeUndefined();
    expect(localStorage.getItem('__spdt_alias')).toBeNull();
    expect(cookie('__spdt_m').value).toBe('3'); // marked again, for the next page
  });

  it('never throws when cookies and storage throw', async () => {
    blockCookies();
    block('localStorage');
    block('sessionStorage');
    const id = await identity();
    expect(() => id.forget()).not.toThrow();
  });
});
