/**
 * Getting events to the collector (SPEC §6): batching into requests of at most 64 KiB, sendBeacon
 * with the image fallback, and the outbox that keeps what the browser did not take, draining it as
 * fast as the browser admits requests.
 */
import { local } from './storage';
import { attempt, parseJson, type Props } from './util';

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
/** What may wait in page memory while the browser keeps refusing (an extension blocking it, say). */
export const MAX_WAITING = 5000;
export const MAX_WAITING_BYTES = 4 << 20;
/** The retry after an accepted request; it doubles while refusals continue, up to 5 s. */
export const FIRST_RETRY = 10;
const LAST_RETRY = 5000;
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

/** On the wire an event is its action, event_id, time and body (undefined drops out of JSON). */
const wire = (e: OutEvent) => ({ ...e, key: undefined, free: undefined });

/** An event's size on the wire in characters (bytes for ASCII text): cheap, and a lower bound. */
export const sizeOf = (e: OutEvent): number => JSON.stringify(wire(e)).length;

/**
 * The next request of the outbox: the events at its front that fit one body of at most 64 KiB,
 * one batch item per key with its events in call order. Only those are rendered, however long the
 * outbox is: they are counted by their own sizes within `room`. An event too large alone goes
 * alone, shrunk.
 */
export function nextRequest(outbox: OutEvent[], header: (key: string) => Props, sentAt: number, room = MAX_BODY): Request | undefined {
  const render = (list: OutEvent[]) =>
    JSON.stringify({
      v: 1,
      sent_at: sentAt,
      batch: Array.from(new Set(list.map((e) => e.key)), (key) => ({
        ...header(key),
        events: list.filter((e) => e.key == key).map(wire),
      })),
    });
  const fits = (rendered: string) => byteLength(rendered) <= MAX_BODY;
  let n = 0;
  let used = 0;
  for (let size; n < outbox.length && used + (size = sizeOf(outbox[n]) + 1) <= room; n++) used += size;
  const events = outbox.slice(0, n || 1);
  const body = render(events);
  const over = byteLength(body) - MAX_BODY;
  // The envelope, the headers and multi-byte characters come on top: count again, in the room
  // that leaves (fewer events each time).
  if (over > 0 && n > 1) return nextRequest(events, header, sentAt, (used * MAX_BODY) / (over + MAX_BODY));
  if (events[0]) return { body: over > 0 ? shrink(events[0], (b) => render([{ ...events[0], body: b }]), fits) : body, events };
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
const beacon = (url: string, body: string): boolean | undefined => attempt(() => navigator.sendBeacon(url, body));

export interface TransportDeps {
  /** The batch item fields for a key (resolves and persists ids). */
  header(key: string): Props;
  /** May anything be sent (consent granted)? */
  canSend(): boolean;
  sent(info: Sent): void;
  warn(field: string, reason: string): void;
}

export function createTransport(config: { endpoint: string; cookies: boolean }, deps: TransportDeps) {
  /** May the outbox live in localStorage? Only with consent, and not with `cookies: false`. */
  const canPersist = () => deps.canSend() && config.cookies;
  let outbox: OutEvent[] = [];
  /** The outbox's bytes, counted as events come and go, never by rendering it all again. */
  let bytes = 0;
  let warned = false;
  let timer: ReturnType<typeof setTimeout> | 0 = 0;
  let delay = 0;

  const schedule = (ms: number) => {
    timer = timer || setTimeout(() => {
      timer = 0;
      attempt(flush);
    }, ms);
  };

  /** Takes the first `n` events off the outbox. */
  function take(n: number): OutEvent[] {
    const taken = outbox.splice(0, n);
    for (const e of taken) bytes -= sizeOf(e);
    return taken;
  }

  /**
   * Adds events to the outbox (persisted ones at its front). Past what page memory may hold the
   * oldest go, with one warning per page.
   */
  function enter(events: OutEvent[], front?: boolean) {
    for (const e of events) bytes += sizeOf(e);
    if (front) outbox = events.concat(outbox);
    else outbox.push(...events);
    for (; outbox.length > MAX_WAITING || bytes > MAX_WAITING_BYTES; warned = true) {
      take(1);
      if (!warned) deps.warn('events', 'over 5000 or 4 MB, oldest dropped');
    }
  }

  /** Events persisted by an earlier page, another tab, or this page while it was hidden. */
  function stored(): OutEvent[] {
    const list = parseJson(local.get(OUTBOX));
    return Array.isArray(list) ? list.filter((e) => e?.body) : [];
  }

  /** Takes the persisted events into this page's outbox; removing them is the claim. */
  function claim() {
    if (canPersist()) {
      enter(stored(), true);
      local.remove(OUTBOX);
    }
  }

  /** Hands the outbox to localStorage, for the next page (or tab) to send. */
  function persist() {
    if (!outbox.length || !canPersist()) return;
    if (local.set(OUTBOX, JSON.stringify(stored().concat(outbox).slice(-MAX_OUTBOX)))) take(outbox.length);
  }

  function flush() {
    if (!deps.canSend()) return;
    claim();
    if (!outbox.length) return;
    // Offline they wait: the newest 500.
    if (navigator.onLine === false) {
      take(outbox.length - MAX_OUTBOX);
      return persist();
    }
    const endpoint = config.endpoint;
    if (!navigator.sendBeacon) {
      for (const e of take(outbox.length)) {
        const url = imageUrl(endpoint, deps.header(e.key), e);
        new Image().src = url;
        deps.sent({ transport: 'image', url });
      }
      return;
    }
    const url = endpoint + '/v1/ingest';
    let request: Request | undefined;
    // A refusal means the browser's keepalive quota is full: the rest waits, never as images.
    // Refused on a visible page, all are kept for the retry (a burst must not lose events to the
    // 500 cap); what is persisted when the page goes keeps the newest 500.
    while ((request = nextRequest(outbox, deps.header, Date.now())) && beacon(url, request.body)) {
      take(request.events.length);
      deps.sent({ transport: 'beacon', url, body: request.body });
      // The quota frees as that request completes: try again soon, and later while refused.
      delay = 0;
    }
    delay = outbox.length ? Math.min(delay * 2 || FIRST_RETRY, LAST_RETRY) : 0;
    if (delay) schedule(delay);
  }

  /** The page is being hidden or left: send what we can now, persist the rest. */
  const onLeave = () =>
    attempt(() => {
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
      enter([e]);
      schedule(0);
    },
    /** Consent denied: nothing queued may go out, nothing persisted may stay. */
    clear(): void {
      take(outbox.length);
      local.remove(OUTBOX);
    },
  };
}
