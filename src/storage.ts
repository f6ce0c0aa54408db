/**
 * Every read and write of cookies and Web Storage goes through here, and none of it throws: where
 * the browser refuses (private modes, quota, blocked cookies) the callers keep their values in page
 * memory, silently.
 */

export interface Store {
  get(key: string): string | null;
  /** Returns false when the browser refused the write; the caller keeps the value in page memory. */
  set(key: string, value: string): boolean;
  remove(key: string): void;
}

function webStorage(kind: 'localStorage' | 'sessionStorage'): Store {
  return {
    get(key) {
      try {
        return window[kind].getItem(key);
      } catch {
        return null;
      }
    },
    set(key, value) {
      try {
        window[kind].setItem(key, value);
        return true;
      } catch {
        return false;
      }
    },
    remove(key) {
      try {
        window[kind].removeItem(key);
      } catch {
        /* nothing to delete where nothing could be written */
      }
    },
  };
}

export const local = webStorage('localStorage');
export const session = webStorage('sessionStorage');

/**
 * Every cookie of the page, as one string. Reading `document.cookie` is a synchronous call into the
 * browser, so a caller that needs several cookies reads them once and looks them up with `cookieIn`.
 */
export function readCookies(): string {
  try {
    return document.cookie;
  } catch {
    return '';
  }
}

export const cookieIn = (cookies: string, name: string): string | undefined => cookies.match('(?:^|; )' + name + '=([^;]*)')?.[1];

export const getCookie = (name: string): string | undefined => cookieIn(readCookies(), name);

/** Writes (or, with `maxAge` 0, deletes) a first-party cookie; `domain` '' means host-only. */
export function setCookie(name: string, value: string, maxAge: number, domain: string): void {
  try {
    document.cookie =
      name + '=' + value + '; path=/; max-age=' + maxAge + (domain ? '; domain=' + domain : '') +
      '; SameSite=Lax' + (location.protocol == 'https:' ? '; Secure' : '');
  } catch {
    /* cookies blocked: the caller keeps its value in memory */
  }
}

/** Every domain a cookie could have been set at for this host, widest first: `shop.example.com` → `example.com`, `shop.example.com`. */
function domainLevels(): string[] {
  // Hosts without a dot (localhost, [::1]) and IPv4 addresses take host-only cookies.
  const host = location.hostname;
  const labels = /^[\d.]+$/.test(host) ? [] : host.split('.');
  return labels.slice(1).map((_, i) => labels.slice(-i - 2).join('.'));
}

const PROBE = '__spdt_probe';
/** Where the probe's answer is kept for the tab session: probing costs synchronous cookie calls. */
export const DOMAIN_KEY = '__spdt_domain';
let discovered: string | undefined;

/**
 * The widest domain that accepts a cookie. Browsers refuse public suffixes (`co.uk`), so writing a
 * probe from the top down and keeping the first that reads back finds the site's own root domain.
 * The probe is deleted at once. The answer (maybe '', host-only) is probed once per tab session:
 * each try is a cookie write and read, several per page on hosts such as `shop.example.co.uk`.
 */
export function rootDomain(): string {
  return (discovered ??= session.get(DOMAIN_KEY) ?? probe());
}

function probe(): string {
  let found = '';
  for (const domain of domainLevels()) {
    setCookie(PROBE, '1', 60, domain);
    if (getCookie(PROBE)) {
      setCookie(PROBE, '', 0, domain);
      found = domain;
      break;
    }
  }
  session.set(DOMAIN_KEY, found);
  return found;
}

/**
 * Deletes a cookie wherever it was written: host-only, then each wider level while it still reads
 * back. Once it is gone nothing more is written, so never at the public suffix above the site's
 * root (a refused write, which Firefox reports on the page as an error).
 */
export function deleteCookie(name: string): void {
  for (const domain of [''].concat(domainLevels().reverse())) if (getCookie(name) != null) setCookie(name, '', 0, domain);
}
