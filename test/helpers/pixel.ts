/**
 * Shared helpers for the behaviour tests of the whole pixel (test/pixel.test.ts, test/tag.test.ts).
 *
 * jsdom has no `navigator.sendBeacon`: `installBeacon` puts a recording fake in its place. That
 * fake is the only browser edge replaced; everything else the tests observe is the real code.
 */
import { createHash } from 'node:crypto';
import { vi } from 'vitest';

export const KEY = '5a1c965e567a45f7832cc5ba7a37faf7';
export const OTHER_KEY = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
/** The page every test starts on (the vitest.config.ts jsdom URL). */
export const START_PATH = '/products/1?ref=x';
export const ORIGIN = 'https://shop.example.co.uk';
/** A fixed wall-clock time for fake timers. */
export const T0 = 1_763_776_000_000;

export const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
export const HEX32 = /^[0-9a-f]{32}$/;

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

// ---------------------------------------------------------------------------------------------
// The beacon fake

export interface BeaconCall {
  url: string;
  /** Exactly what the pixel handed over (the SPEC requires a string). */
  body: unknown;
  /** What the fake answered for this call. */
  accepted: boolean;
}

export interface Beacon {
  calls: BeaconCall[];
  /** What the next `sendBeacon` call returns; tests flip it to simulate a full keepalive quota. */
  result: boolean;
}

/** Installs a recording `navigator.sendBeacon` that answers `beacon.result`. */
export function installBeacon(result = true): Beacon {
  const beacon: Beacon = { calls: [], result };
  (navigator as any).sendBeacon = (url: string, body?: unknown) => {
    const accepted = beacon.result;
    beacon.calls.push({ url: String(url), body, accepted });
    return accepted;
  };
  return beacon;
}

export function removeBeacon(): void {
  delete (navigator as any).sendBeacon;
}

// ---------------------------------------------------------------------------------------------
// Parsing what was sent

export interface WireEvent {
  action: string;
  event_id: string;
  time: number;
  body: Record<string, any>;
}

export interface WireItem {
  pid: string;
  uid?: string;
  sid?: string;
  cid?: string;
  alias?: Record<string, string>;
  opt_out_targeting?: boolean;
  events: WireEvent[];
}

export interface WirePayload {
  v: number;
  sent_at: number;
  batch: WireItem[];
}

/** One event as delivered, with the batch item and request it travelled in. */
export interface Delivered extends WireEvent {
  item: WireItem;
  payload: WirePayload;
  url: string;
}

export function parseBody(body: unknown): WirePayload {
  if (typeof body != 'string') throw new Error(`beacon body is a ${typeof body}, not a string`);
  return JSON.parse(body);
}

/** The beacons the browser accepted (answered true). */
export const accepted = (beacon: Beacon): BeaconCall[] => beacon.calls.filter((c) => c.accepted);

/** Every event in every accepted beacon, in the order they were handed over. */
export function delivered(beacon: Beacon): Delivered[] {
  const out: Delivered[] = [];
  for (const call of accepted(beacon)) {
    const payload = parseBody(call.body);
    for (const item of payload.batch) for (const e of item.events) out.push({ ...e, item, payload, url: call.url });
  }
  return out;
}

export const actions = (beacon: Beacon): string[] => delivered(beacon).map((e) => e.action);
export const eventIds = (beacon: Beacon): string[] => delivered(beacon).map((e) => e.event_id);

/** Every request body and image URL the page handed over, as text, for searching. */
export function everythingSent(beacon: Beacon, images: string[] = []): string {
  return beacon.calls.map((c) => String(c.body)).concat(images).join('\n');
}

// ---------------------------------------------------------------------------------------------
// Timers

/** Runs the timers pending now (the end of the current task and anything already scheduled). */
export async function flush(): Promise<void> {
  await vi.runOnlyPendingTimersAsync();
}

/** Moves the fake clock on, running every timer that falls due. */
export async function advance(ms: number): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
}

// ---------------------------------------------------------------------------------------------
// Page state

/** Every domain a cookie could live at for this host, plus host-only (''). */
function cookieDomains(): string[] {
  const labels = location.hostname.split('.');
  const domains = labels.map((_, i) => labels.slice(i).join('.'));
  return domains.concat(domains.map((d) => '.' + d), '');
}

export function cookieNames(): string[] {
  return document.cookie
    .split(';')
    .map((c) => c.trim().split('=')[0])
    .filter(Boolean);
}

export function getCookie(name: string): string | undefined {
  const match = document.cookie.match('(?:^|; )' + name + '=([^;]*)');
  return match ? match[1] : undefined;
}

export function clearCookies(): void {
  for (const name of cookieNames())
    for (const domain of cookieDomains())
      for (const path of ['/', location.pathname])
        document.cookie = `${name}=; path=${path}; max-age=0${domain ? '; domain=' + domain : ''}`;
}

export const storageKeys = (area: Storage): string[] => Array.from({ length: area.length }, (_, i) => area.key(i)!);

function unsetOwn(target: object, name: string): void {
  if (Object.prototype.hasOwnProperty.call(target, name)) delete (target as any)[name];
}

function setOwn(target: object, name: string, value: unknown): void {
  Object.defineProperty(target, name, { value, configurable: true, writable: true });
}

export const setOnline = (online: boolean) => (online ? unsetOwn(navigator, 'onLine') : setOwn(navigator, 'onLine', false));
export const setGpc = (on: boolean) => (on ? setOwn(navigator, 'globalPrivacyControl', true) : unsetOwn(navigator, 'globalPrivacyControl'));
export const setReferrer = (referrer: string) => setOwn(document, 'referrer', referrer);

/** Sets `document.visibilityState` and fires `visibilitychange` the way a browser does (at the document, bubbling). */
export function changeVisibility(state: 'hidden' | 'visible'): void {
  // A browser changes both together.
  if (state == 'hidden') {
    setOwn(document, 'visibilityState', 'hidden');
    setOwn(document, 'hidden', true);
  } else {
    unsetOwn(document, 'visibilityState');
    unsetOwn(document, 'hidden');
  }
  document.dispatchEvent(new Event('visibilitychange', { bubbles: true }));
}

/** Puts the page back to its start: URL, cookies, storage and every navigator/document override. */
export function resetPage(): void {
  history.replaceState(null, '', START_PATH);
  clearCookies();
  localStorage.clear();
  sessionStorage.clear();
  removeBeacon();
  unsetOwn(navigator, 'onLine');
  unsetOwn(navigator, 'globalPrivacyControl');
  unsetOwn(document, 'visibilityState');
  unsetOwn(document, 'referrer');
}

// ---------------------------------------------------------------------------------------------
// Console

const line = (args: unknown[]): string =>
  args
    .map((a) => {
      if (typeof a == 'string') return a;
      try {
        return JSON.stringify(a) ?? String(a);
      } catch {
        return String(a);
      }
    })
    .join(' ');

/** Silences and records console.warn (or console.log); `lines()` gives each call as one string. */
export function captureConsole(method: 'warn' | 'log') {
  const spy = vi.spyOn(console, method).mockImplementation(() => {});
  return {
    spy,
    lines: (): string[] => spy.mock.calls.map(line),
    clear: () => spy.mockClear(),
  };
}

/** Records every URL assigned to an image's `src` (the image fallback of SPEC §6). */
export function captureImages(): string[] {
  const urls: string[] = [];
  vi.spyOn(HTMLImageElement.prototype, 'src', 'set').mockImplementation(function (url: string) {
    urls.push(String(url));
  });
  return urls;
}
