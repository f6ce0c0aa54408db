/**
 * Every read and write of cookies and localStorage goes through here, and none of it throws: where
 * the browser refuses (private modes, quota, blocked cookies) the callers keep their values in page
 * memory, silently.
 *
 * Opening a storage area is the dearest part of a page load (SPEC §4), so the cookie `__spdt_m`
 * (the marker) says what this host has stored: a page with nothing stored learns that from the
 * `document.cookie` it reads anyway for the ids, and never opens localStorage. sessionStorage is
 * not used at all.
 */
import { attempt } from './util';

export interface Store {
  get(key: string): string | null;
  /** Returns false when the browser refused the write; the caller keeps the value in page memory. */
  set(key: string, value: string): boolean;
  remove(key: string): void;
}

/** The device cookie (identity.ts): one without a marker beside it is a visitor of an earlier version of the tag. */
export const DEVICE = '__spdt';
export const MARK = '__spdt_m';
const PROBE = '__spdt_probe';

/**
 * The marker's value: the number of labels of the root domain (0: host-only), then one letter per
 * localStorage key that may hold data, the key's first letter after `__spdt_` (o: outbox, a: alias).
 * `3a` on shop.example.co.uk: the root domain is example.co.uk, and an alias is stored.
 */
export const isMark = (value: string | undefined): boolean => /^\d[a-z]*$/.test(value!);

/** The marker as last read (and noted since); without its digit while it is not written. */
let mark: string | undefined;

/**
 * Every cookie of the page, as one string. A marker found there (another tab may have written it)
 * is the truth from then on. Reading `document.cookie` after a write waits for the browser (most of a millisecond in
 * Chromium), so the pixel reads before it writes on a load.
 */
export function readCookies(): string {
  const cookies = attempt(() => document.cookie) || ''; // blocked: no cookies
  const found = cookieIn(cookies, MARK);
  // No marker beside a device cookie: a visitor of the earlier version, which kept an outbox and an alias.
  mark = isMark(found) ? found : mark ?? (cookieIn(cookies, DEVICE) ? 'oa' : '');
  return cookies;
}

export const cookieIn = (cookies: string, name: string): string | undefined => cookies.match('(^|; )' + name + '=([^;]*)')?.[2];

export const getCookie = (name: string): string | undefined => cookieIn(readCookies(), name);

/** Writes (or, with `maxAge` 0, deletes) a first-party cookie; `domain` '' means host-only. */
export function setCookie(name: string, value: string, maxAge: number, domain: string): void {
  // Cookies blocked: the caller keeps its value in memory.
  attempt(() =>
    (document.cookie =
      name + '=' + value + '; path=/; max-age=' + maxAge + (domain ? '; domain=' + domain : '') +
      '; SameSite=Lax' + (location.protocol == 'https:' ? '; Secure' : '')),
  );
}

/** Every domain a cookie could have been set at for this host, widest first: `shop.example.com` → `example.com`, `shop.example.com`. */
function domainLevels(): string[] {
  // Hosts without a dot (localhost, [::1]) and IPv4 addresses take host-only cookies.
  const host = location.hostname;
  const labels = /^[\d.]+$/.test(host) ? [] : host.split('.');
  return labels.slice(1).map((_, i) => labels.slice(-i - 2).join('.'));
}

/**
 * Deletes these cookies wherever they were written: host-only, then each wider level while the
 * cookie still reads back. Once one is gone nothing more is written for it, so never at the public
 * suffix above the site's root (a refused write, which Firefox reports on the page as an error).
 */
export function deleteCookies(...names: string[]): void {
  for (const name of names)
    for (const domain of [''].concat(domainLevels().reverse())) if (getCookie(name) != null) setCookie(name, '', 0, domain);
  mark = undefined; // consent denied: with the marker deleted, the page knows no more than a new one
}

/**
 * The widest domain that accepts a cookie. Browsers refuse public suffixes (`co.uk`), so writing a
 * probe from the top down and keeping the first that reads back finds the site's own root domain.
 * The probe is deleted at once. Its answer is kept in the marker: each try is a cookie write and
 * read, several per page on hosts such as `shop.example.co.uk`.
 */
export const rootDomain = (): string => cookieDomains()[0];

/**
 * The domains the browser takes a cookie at: the root domain, then each level below it down to
 * the host; only '' (host-only) where there is no root domain. Any other domain is refused (Firefox logs each
 * refusal on the page as an error).
 */
export function cookieDomains(): string[] {
  const labels = +marker()[0];
  return labels ? domainLevels().slice(labels - 2) : [''];
}

// @noinline: Closure Compiler would inline it into marker(), 4 B more gzip.
/** @noinline */
function probe(): number {
  for (const domain of domainLevels()) {
    setCookie(PROBE, '1', 60, domain);
    if (cookieIn(readCookies(), PROBE)) {
      setCookie(PROBE, '', 0, domain);
      return domain.split('.').length;
    }
  }
  return 0;
}

/** The marker as it is now, written on first use (for a new visitor: nothing stored). */
function marker(): string {
  readCookies();
  if (!written()) {
    mark = probe() + mark!;
    writeMark();
  }
  return mark!;
}

const written = () => /^\d/.test(mark!);
const letter = (key: string) => key[7]; // the first letter after `__spdt_`

// 400 days, the browsers' cap. A marker that expires before the data costs one look into localStorage.
const writeMark = () => setCookie(MARK, mark!, 400 * 86400, '');

/**
 * Records whether `key` holds data. A marker not yet written stays unwritten: consent may be being
 * denied, when the pixel only deletes.
 */
function note(key: string, stored: boolean): void {
  const next = mark!.replace(letter(key), '') + (stored ? letter(key) : '');
  if (next != mark) {
    mark = next;
    if (written()) writeMark();
  }
}

/**
 * Runs `use` on localStorage when the marker, read again, says `key` may hold data (another tab may
 * have stored it since this page last looked). A stale "may" costs one opening, and is corrected.
 */
function look(key: string, use: (storage: Storage) => string | null | void): string | null {
  readCookies();
  if (!mark!.includes(letter(key))) return null;
  const value = attempt(() => use(localStorage)) ?? null; // refused: nothing found
  note(key, value != null);
  return value;
}

/** localStorage, opened only when the marker says `key` may hold data: it never says "nothing" while this host's data is there. */
export const local: Store = {
  get: (key) => look(key, (storage) => storage.getItem(key)),
  // A refused write leaves the old value, and its mark.
  set: (key, value) => !!attempt(() => (localStorage.setItem(key, value), marker(), note(key, true), 1)),
  remove(key) {
    look(key, (storage) => storage.removeItem(key));
  },
};
