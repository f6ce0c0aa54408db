/**
 * Getting events to the collector (SPEC §6): batching into requests of at most 64 KiB, sendBeacon
 * with the image fallback, and the outbox that keeps what the browser did not take.
 */
import { local } from './storage';
import { parseJson, safely, type Props } from './util';

export interface OutEvent {
  key: string;
  action: string;
  event_id: string;
  time: number;
  body: Props;
  /** Names of the free props in `body`: the first thing dropped when the event is too large. */
  free?: string[];
}

export interface Sent {
  transport: 'beacon' | 'image';
  url: string;
  body?: string;
}

export interface Request {
  body: string;
  events: OutEvent[];
}

export const MAX_BODY = 65536;
const MAX_URL = 8000;
const MAX_OUTBOX = 500;
const OUTBOX = '__spdt_outbox';

/** UTF-8 bytes, as the browser sends the string (a lone surrogate becomes U+FFFD, 3 bytes, in both). */
export const byteLength = (s: string): number => new TextEncoder().encode(s).length;

/**
 * Renders an event, and when the result does not fit, renders it again without its free props,
 * then without its line items, then with url and referrer shortened, marking it `trunc: 1`.
 */
export function shrink(e: OutEvent, render: (body: Props) => string, fits: (rendered: string) => boolean): string {
  const body: Props = { ...e.body };
  let rendered = render(body);
  for (let step = 0; step < 3 && !fits(rendered); step++) {
    body.trunc = 1;
    if (step == 0) for (const name of e.free || []) delete body[name];
    if (step == 1) delete body.line_items;
    if (step == 2) for (const name of ['url', 'referrer']) body[name] = (body[name] as string)?.slice(0, 1024);
    rendered = render(body);
  }
  return rendered;
}

/**
 * Packs events into request bodies of at most 64 KiB, one batch item per key with its events in
 * call order: all in one request when they fit, otherwise halves, packed the same way.
 */
export function pack(events: OutEvent[], header: (key: string) => Props, sentAt: number): Request[] {
  const keysOf = (list: OutEvent[]) => Array.from(new Set(list.map((e) => e.key)));
  const render = (list: OutEvent[]) =>
    JSON.stringify({
      v: 1,
      sent_at: sentAt,
      batch: keysOf(list).map((key) => ({
        ...header(key),
        // On the wire an event is its action, event_id, time and body (undefined drops out of JSON).
        events: list.filter((e) => e.key == key).map((e) => ({ ...e, key: undefined, free: undefined })),
      })),
    });
  const fits = (body: string) => byteLength(body) <= MAX_BODY;
  if (!events.length) return [];
  const body = render(events);
  if (fits(body)) return [{ body, events }];
  if (events.length == 1) return [{ body: shrink(events[0], (b) => render([{ ...events[0], body: b }]), fits), events }];
  const half = events.length >> 1;
  return pack(events.slice(0, half), header, sentAt).concat(pack(events.slice(half), header, sentAt));
}

/** The image-request form of one event (for browsers without sendBeacon), under 8,000 characters. */
export function imageUrl(endpoint: string, header: Props, e: OutEvent): string {
  const render = ({ url, referrer, ...props }: Props) => {
    const params = new URLSearchParams();
    const fields = {
      key: header.pid, a: e.action, eid: e.event_id, t: e.time, uid: header.uid, sid: header.sid, cid: header.cid,
      url, ref: referrer, alias: header.alias, opt_out_targeting: header.opt_out_targeting && 1,
    };
    for (const [name, v] of Object.entries(fields).concat(Object.entries(props)))
      if (v != null) params.append(name, typeof v == 'object' ? JSON.stringify(v) : (v as string));
    return endpoint + '/v1/img?' + params;
  };
  const url = shrink(e, render, (u) => u.length < MAX_URL);
  // Known fields of many non-Latin characters can still be too long: drop whole parameters.
  return url.length < MAX_URL ? url : url.slice(0, url.lastIndexOf('&', MAX_URL - 9)) + '&trunc=1';
}

/** `navigator.sendBeacon`, where a throw (a URL the page's CSP blocks, say) counts as a refusal. */
function beacon(url: string, body: string): boolean {
  try {
    return navigator.sendBeacon(url, body);
  } catch {
    return false;
  }
}

export interface TransportDeps {
  /** The batch item fields for a key (resolves and persists ids). */
  header(key: string): Props;
  /** May anything be sent (consent granted)? */
  canSend(): boolean;
  sent(info: Sent): void;
}

export function createTransport(config: { endpoint: string; cookies: boolean }, deps: TransportDeps) {
  /** May the outbox live in localStorage? Only with consent, and not with `cookies: false`. */
  const canPersist = () => deps.canSend() && config.cookies;
  let outbox: OutEvent[] = [];
  let timer: ReturnType<typeof setTimeout> | 0 = 0;
  let retryDelay = 0;

  const schedule = (delay: number) => {
    timer = timer || setTimeout(() => {
      timer = 0;
      safely(flush);
    }, delay);
  };

  /** Events persisted by an earlier page, another tab, or this page while it was hidden. */
  function stored(): OutEvent[] {
    const list = parseJson(local.get(OUTBOX));
    return Array.isArray(list) ? list.filter((e) => e?.body) : [];
  }

  /** Takes the persisted events into this page's outbox; removing them is the claim. */
  function claim() {
    if (canPersist()) {
      outbox = stored().concat(outbox);
      local.remove(OUTBOX);
    }
  }

  /** Hands the outbox to localStorage, for the next page (or tab) to send. */
  function persist() {
    if (!outbox.length || !canPersist()) return;
    if (local.set(OUTBOX, JSON.stringify(stored().concat(outbox).slice(-MAX_OUTBOX)))) outbox = [];
  }

  function flush() {
    if (!deps.canSend()) return;
    claim();
    if (!outbox.length) return;
    // Offline they wait: the newest 500.
    if (navigator.onLine === false) {
      outbox = outbox.slice(-MAX_OUTBOX);
      return persist();
    }
    const endpoint = config.endpoint;
    if (!navigator.sendBeacon) {
      for (const e of outbox) {
        const url = imageUrl(endpoint, deps.header(e.key), e);
        new Image().src = url;
        deps.sent({ transport: 'image', url });
      }
      outbox = [];
      return;
    }
    const url = endpoint + '/v1/ingest';
    const requests = pack(outbox, deps.header, Date.now());
    // A refusal means the browser's keepalive quota is full: the rest waits, never as images.
    while (requests[0] && beacon(url, requests[0].body)) deps.sent({ transport: 'beacon', url, body: requests.shift()!.body });
    // Refused by a full quota: a visible page keeps them all for the retry (a burst must not lose
    // events to the cap); what is persisted when the page goes keeps the newest 500.
    outbox = requests.flatMap((request) => request.events);
    retryDelay = outbox.length ? Math.min(retryDelay * 2 || 100, 5000) : 0;
    if (retryDelay) schedule(retryDelay);
  }

  /** The page is being hidden or left: send what we can now, persist the rest. */
  const onLeave = () =>
    safely(() => {
      flush();
      persist();
    });
  addEventListener('pagehide', onLeave);
  addEventListener('visibilitychange', () => (document.hidden ? onLeave() : schedule(0)));
  // Tabs coming back online together: a random delay lets one claim the persisted events first.
  addEventListener('online', () => schedule(Math.random() * 1000));
  // What earlier pages (or tabs) left persisted goes out once this page has read its queue.
  schedule(0);

  return {
    add(e: OutEvent): void {
      outbox.push(e);
      schedule(0);
    },
    /** Consent denied: nothing queued may go out, nothing persisted may stay. */
    clear(): void {
      outbox = [];
      local.remove(OUTBOX);
    },
  };
}
