/**
 * Who is sending (SPEC §4): the device id (`__spdt`), the session id, the ad click id
 * (`sp_click_id`) and the visitor's hashed identifiers from `alias`. Ids are created and persisted
 * only by `resolveIds()`, which runs at send time, after consent.
 */
import { cookieIn, deleteCookies, DEVICE, local, MARK, readCookies, cookieDomains, setCookie } from './storage';
import { attempt, hexId, parseJson, type Props } from './util';

export interface IdentityConfig {
  cookies: boolean;
  cookie_domain: string;
  cookie_days: number;
  click_days: number;
}

export interface Ids {
  uid?: string;
  sid: string;
  cid?: string;
  alias?: Props;
}

const SESSION = '__spdt_s';
const SESSION_TIME = 1800; // seconds without a send
const LEGACY_DEVICE = '__pdst';
const CLICK = 'sp_click_id';
const ALIAS = '__spdt_alias';
const DAY = 86400;

/** The click id as stored in its cookie: URL-encoded, at most 256 characters, never cut inside a character. */
export function encodeClickId(id: string): string {
  let encoded = encodeURIComponent(id).slice(0, 256);
  while (encoded && !decode(encoded)) encoded = encoded.replace(/%[^%]*$/, '');
  return encoded;
}

const decode = (value: string | undefined): string | undefined => attempt(() => (value ? decodeURIComponent(value) : undefined));

/** A stored id, when it is one (32 hex); otherwise a new one. */
const idOr = (stored: string | undefined) => (/^[0-9a-f]{32}$/.test(stored!) ? stored! : hexId());

/** Only the alias fields, as strings: stored JSON is never trusted to carry anything else. */
function aliasFields(source: unknown): Props {
  const picked: Props = {};
  for (const name of 'hashed_email hashed_phone_number id partner_user_id click_id'.split(' ')) {
    const v = (source as Props | undefined)?.[name];
    if (typeof v == 'string') picked[name] = v;
  }
  return picked;
}

// Identity belongs to the visitor, not to a pixel: every pixel on the page shares it.
let uid: string | undefined;
let sid: string | undefined;
let click: string | undefined; // the click id as its cookie stores it: URL-encoded
let alias: Props = {};
let renewed = 0; // when the session was last renewed (0: stored ids not read yet on this page)
let domains: string[]; // where cookies can be written (root domain first), as found at the last read of the cookies
let saveClick = false;
let saveAlias = false;

/** Remembers a click id found in `url`; a new one replaces the old. */
export function captureClick(url: string): void {
  // Spotify's `spclid` wins over `sp_click_id`.
  const id = attempt(() => {
    const params = new URL(url).searchParams;
    return params.get('spclid') || params.get('sp_click_id');
  });
  if (id) {
    click = encodeClickId(id);
    saveClick = true;
  }
}

/** Merges the alias fields of an `alias` call into what is known of the visitor. */
export function mergeAlias(body: Props): void {
  Object.assign(alias, aliasFields(body));
  saveAlias = true;
}

/** The ids to send, created and persisted on first use. Only called once sending is allowed. */
export function resolveIds(config: IdentityConfig): Ids {
  const now = Date.now();
  if (!config.cookies) sid = sid || hexId();
  else {
    // Within 30 minutes of this page's last send the session goes on; after that (and on load) the
    // cookie says whether it does: another tab may have kept it going.
    if (now - renewed >= SESSION_TIME * 1000) {
      const cookies = readCookies();
      sid = idOr(cookieIn(cookies, SESSION));
      if (!renewed) {
        uid = idOr(cookieIn(cookies, DEVICE) || cookieIn(cookies, LEGACY_DEVICE)?.toLowerCase());
        click = click || cookieIn(cookies, CLICK);
        alias = { ...aliasFields(parseJson(local.get(ALIAS))), ...alias };
      }
      // After the reads, the writes. The root domain is kept in the marker that tells the next page
      // what is stored (written here also when `cookie_domain` is set), so the probe runs on a
      // visitor's first page only.
      domains = cookieDomains();
    }
    // A cookie_domain the browser would refuse (not this host or above it, or above the root domain) gives way to the root domain.
    const domain = domains.includes(config.cookie_domain) ? config.cookie_domain : domains[0];
    // Renewed on every page load: the lifetime counts from the last visit.
    if (!renewed) setCookie(DEVICE, uid!, config.cookie_days * DAY, domain);
    setCookie(SESSION, sid!, SESSION_TIME, domain); // every send renews the session
    renewed = now;
    if (saveClick) setCookie(CLICK, click!, config.click_days * DAY, domain);
    if (saveAlias) local.set(ALIAS, JSON.stringify(alias));
    saveClick = saveAlias = false;
  }
  return { uid: config.cookies ? uid : undefined, sid: sid!, cid: decode(click), alias: Object.keys(alias)[0] ? alias : undefined };
}

/** Consent denied: every id is forgotten and deleted wherever the pixel may have stored it. */
export function forgetIds(): void {
  uid = sid = click = undefined;
  alias = {};
  renewed = 0;
  saveClick = saveAlias = false;
  local.remove(ALIAS); // while the marker still says it is there
  deleteCookies(DEVICE, SESSION, LEGACY_DEVICE, CLICK, MARK); // __pdst: or a later grant would adopt it again
}
