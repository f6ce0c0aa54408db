/**
 * Who is sending (SPEC §4): the device id (`__spdt`), the session id, the ad click id
 * (`sp_click_id`) and the visitor's hashed identifiers from `alias`. Ids are created and persisted
 * only by `resolveIds()`, which runs at send time, after consent.
 */
import { cookieIn, deleteCookie, DOMAIN_KEY, local, readCookies, rootDomain, session, setCookie } from './storage';
import { hexId, parseJson, type Props } from './util';

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

const DEVICE = '__spdt';
const LEGACY_DEVICE = '__pdst';
const CLICK = 'sp_click_id';
const ALIAS = '__spdt_alias';
const ALIAS_FIELDS = 'hashed_email hashed_phone_number id partner_user_id click_id'.split(' ');
const HEX32 = /^[0-9a-f]{32}$/;
const DAY = 86400;

/** The click id in a URL: Spotify's `spclid` wins over `sp_click_id`. */
export function clickIdFrom(url: string): string | undefined {
  try {
    const params = new URL(url).searchParams;
    return params.get('spclid') || params.get('sp_click_id') || undefined;
  } catch {
    return undefined;
  }
}

/** The click id as stored in its cookie: URL-encoded, at most 256 characters, never cut inside a character. */
export function encodeClickId(id: string): string {
  let encoded = encodeURIComponent(id).slice(0, 256);
  while (encoded && !decode(encoded)) encoded = encoded.replace(/%[^%]*$/, '');
  return encoded;
}

function decode(value: string | undefined): string | undefined {
  try {
    return value ? decodeURIComponent(value) : undefined;
  } catch {
    return undefined;
  }
}

/** Only the alias fields, as strings: stored JSON is never trusted to carry anything else. */
function aliasFields(source: unknown): Props {
  const picked: Props = {};
  for (const name of ALIAS_FIELDS) {
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
let loaded = false; // stored ids read, and `__spdt` renewed, on this page
let saveClick = false;
let saveAlias = false;

/** Remembers a click id found in `url`; a new one replaces the old. */
export function captureClick(url: string): void {
  const id = clickIdFrom(url);
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
  const domain = () => config.cookie_domain || rootDomain();
  if (!config.cookies) sid = sid || hexId();
  else {
    if (!loaded) {
      loaded = true;
      const cookies = readCookies();
      const device = cookieIn(cookies, DEVICE) || cookieIn(cookies, LEGACY_DEVICE)?.toLowerCase();
      uid = HEX32.test(device!) ? device! : hexId();
      // Renewed on every page load: the lifetime counts from the last visit.
      setCookie(DEVICE, uid, config.cookie_days * DAY, domain());
      click = click || cookieIn(cookies, CLICK);
      alias = { ...aliasFields(parseJson(local.get(ALIAS))), ...alias };
      const stored = session.get(DEVICE)!;
      session.set(DEVICE, (sid = HEX32.test(stored) ? stored : hexId()));
    }
    if (saveClick && click) setCookie(CLICK, click, config.click_days * DAY, domain());
    if (saveAlias) local.set(ALIAS, JSON.stringify(alias));
    saveClick = saveAlias = false;
  }
  return { uid: config.cookies ? uid : undefined, sid: sid!, cid: decode(click), alias: Object.keys(alias)[0] ? alias : undefined };
}

/** Consent denied: every id is forgotten and deleted wherever the pixel may have stored it. */
export function forgetIds(): void {
  uid = sid = click = undefined;
  alias = {};
  loaded = saveClick = saveAlias = false;
  deleteCookie(DEVICE);
  deleteCookie(LEGACY_DEVICE); // or a later grant would adopt the old device id again
  deleteCookie(CLICK);
  local.remove(ALIAS);
  session.remove(DEVICE);
  session.remove(DOMAIN_KEY);
}
