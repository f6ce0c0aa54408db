/**
 * The device cookie (SPEC §8 `SPDT_COOKIE_DOMAIN`): the collector re-sets `__spdt` as an HTTP
 * cookie, which Safari does not cap at 7 days as it caps cookies written by script (when the
 * collector answers from the site's own address range). Pure.
 */

const UID = /^[0-9a-f]{32}$/;

/** The host of an `Origin` or `Referer` header value, lower-cased; undefined when unreadable. */
function hostOf(value: string | undefined): string | undefined {
  if (!value || value == 'null') return undefined;
  try {
    return new URL(value).hostname.toLowerCase();
  } catch {
    return undefined;
  }
}

export interface CookieRequest {
  origin?: string;
  referer?: string;
  uid?: string;
  scheme: 'http' | 'https';
}

/**
 * The `Set-Cookie` value for a request from a page on `domain` or below it (by its `Origin`, else
 * its `Referer`) that carries a valid uid (32 lower-case hex); undefined otherwise. Not `HttpOnly`:
 * the tag reads it.
 */
export function deviceCookie(domain: string | undefined, days: number, request: CookieRequest): string | undefined {
  if (!domain || !request.uid || !UID.test(request.uid)) return undefined;
  const host = hostOf(request.origin) ?? hostOf(request.referer);
  if (!host || (host != domain && !host.endsWith('.' + domain))) return undefined;
  const secure = request.scheme == 'https' ? '; Secure' : '';
  return `__spdt=${request.uid}; Domain=${domain}; Path=/; Max-Age=${days * 86_400}; SameSite=Lax${secure}`;
}
