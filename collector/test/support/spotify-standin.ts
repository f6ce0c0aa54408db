/**
 * A strict local stand-in for Spotify's Conversions API (SPEC §9, COLLECTOR-NOTES): it checks every
 * request as Spotify's published contract reads, answers 400 with the reason otherwise, records what
 * it received, and plays scripted failures (5xx, 429 with Retry-After, one refused event_id, slow
 * answers, held requests, a closed listener).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo, type Socket } from 'node:net';

export const EVENT_NAMES = [
  'VIEW', 'PRODUCT', 'ADD_TO_CART', 'CHECK_OUT', 'PURCHASE', 'LEAD', 'SIGN_UP',
  'CUSTOM_EVENT_1', 'CUSTOM_EVENT_2', 'CUSTOM_EVENT_3', 'CUSTOM_EVENT_4', 'CUSTOM_EVENT_5',
];
const EVENT_KEYS = ['event_name', 'event_id', 'event_time', 'user_data', 'event_details', 'event_source_url', 'action_source', 'opt_out_targeting'];
const USER_KEYS = ['ip_address', 'device_id', 'hashed_emails', 'hashed_phone_number'];
const DETAIL_KEYS = ['amount', 'currency', 'content_name'];
const HASH = /^[0-9a-f]{64}$/;
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
/** How far ahead of this clock an event_time may be (the sender's clock is this machine's). */
const CLOCK_SKEW_MS = 1000;

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v == 'object' && v !== null && !Array.isArray(v);
const unknownKey = (o: Obj, allowed: string[]) => Object.keys(o).find((k) => !allowed.includes(k));

/** The reason one event breaks the contract, or undefined. */
export function checkEvent(event: unknown, now = Date.now()): string | undefined {
  if (!isObject(event)) return 'event is not an object';
  const extra = unknownKey(event, EVENT_KEYS);
  if (extra) return `unknown event key ${extra}`;
  if (typeof event.event_name != 'string' || !EVENT_NAMES.includes(event.event_name)) return `event_name ${JSON.stringify(event.event_name)} is not allowed`;
  if (typeof event.event_id != 'string' || !event.event_id) return 'event_id must be a non-empty string';
  if (typeof event.event_time != 'string' || !ISO_MS.test(event.event_time) || Number.isNaN(Date.parse(event.event_time))) return 'event_time must be ISO 8601 UTC with milliseconds';
  if (Date.parse(event.event_time) > now + CLOCK_SKEW_MS) return 'event_time is in the future';
  const user = event.user_data;
  if (!isObject(user)) return 'user_data must be an object';
  const extraUser = unknownKey(user, USER_KEYS);
  if (extraUser) return `unknown user_data key ${extraUser}`;
  if (!Object.keys(user).length) return 'user_data needs at least one identifier';
  if ('ip_address' in user && (typeof user.ip_address != 'string' || !isIP(user.ip_address))) return 'ip_address is not an IP address';
  if ('device_id' in user && (typeof user.device_id != 'string' || !user.device_id)) return 'device_id must be a non-empty string';
  if ('hashed_emails' in user) {
    const list = user.hashed_emails;
    if (!Array.isArray(list) || !list.length || !list.every((h) => typeof h == 'string' && HASH.test(h))) return 'hashed_emails must be a list of SHA-256 hex';
  }
  if ('hashed_phone_number' in user && (typeof user.hashed_phone_number != 'string' || !HASH.test(user.hashed_phone_number))) return 'hashed_phone_number must be SHA-256 hex';
  if ('event_details' in event) {
    const details = event.event_details;
    if (!isObject(details) || !Object.keys(details).length) return 'event_details must be a non-empty object';
    const extraDetail = unknownKey(details, DETAIL_KEYS);
    if (extraDetail) return `unknown event_details key ${extraDetail}`;
    if ('currency' in details && (typeof details.currency != 'string' || !/^[A-Z]{3}$/.test(details.currency))) return 'currency must be three upper-case letters';
    if ('amount' in details) {
      if (typeof details.amount != 'number' || !Number.isFinite(details.amount) || details.amount < 0) return 'amount must be a number ≥ 0';
      if (!('currency' in details)) return 'amount needs a currency';
    }
    if ('content_name' in details && (typeof details.content_name != 'string' || !details.content_name)) return 'content_name must be a non-empty string';
  }
  if ('event_source_url' in event && (typeof event.event_source_url != 'string' || !/^https?:\/\//.test(event.event_source_url))) return 'event_source_url must start with http:// or https://';
  if (!['WEB', 'APP', 'OFFLINE'].includes(event.action_source as string)) return 'action_source must be WEB, APP or OFFLINE';
  if ('opt_out_targeting' in event && event.opt_out_targeting !== true) return 'opt_out_targeting must be true when present';
  return undefined;
}

/** The reason a request body breaks the contract, or undefined. */
export function checkPayload(body: unknown, connectionId: string, now = Date.now()): string | undefined {
  if (!isObject(body)) return 'body is not a JSON object';
  if (unknownKey(body, ['conversion_events']) || !isObject(body.conversion_events)) return 'body must be {"conversion_events": {...}}';
  const envelope = body.conversion_events;
  const extra = unknownKey(envelope, ['capi_connection_id', 'events']);
  if (extra) return `unknown conversion_events key ${extra}`;
  if (envelope.capi_connection_id !== connectionId) return 'capi_connection_id does not match the token';
  if (!Array.isArray(envelope.events) || !envelope.events.length) return 'events must be a non-empty list';
  for (const [i, event] of envelope.events.entries()) {
    const reason = checkEvent(event, now);
    if (reason) return `events[${i}]: ${reason}`;
  }
  return undefined;
}

export interface Received {
  at: number;
  authorization?: string;
  contentType?: string;
  /** The parsed body, or the raw text when it is not JSON. */
  body: unknown;
  status: number;
  /** The event_ids the request carried (valid or not). */
  eventIds: string[];
}

interface Script {
  /** Answer the next `count` requests with `status` (and these headers, this body). */
  answers: { status: number; headers?: Record<string, string>; body?: string }[];
  /** Requests carrying one of these event_ids are refused with 400; the value is the answer body. */
  refused: Map<string, string>;
  /** Delay before answering the next requests (ms each). */
  delays: number[];
  /** The next requests are held unanswered until `release()`. */
  holds: number;
}

export interface Standin {
  /** The endpoint, as a connection's `url`. */
  url: string;
  port: number;
  token: string;
  connectionId: string;
  /** Every request, in arrival order. */
  received: Received[];
  /** The requests held by `holdNext()`, in arrival order. */
  heldRequests: Received[];
  /** Events of the requests answered 2xx, in order (several copies when an event came again). */
  accepted: Obj[];
  acceptedIds(): string[];
  /** Answer the next `n` requests with `status` (503 by default). */
  failNext(n: number, status?: number, headers?: Record<string, string>, body?: string): void;
  /** Refuse with 400 every request that carries this event_id, with this answer. */
  refuseEvent(eventId: string, body?: string): void;
  allowEvent(eventId: string): void;
  /** Answer the next `n` requests only after `ms`. */
  slowNext(n: number, ms: number): void;
  /**
   * Hold the next `n` valid requests unanswered until `release()`; resolves when the first is held.
   * A held request is accepted when released, or when its sender goes away (status 0): Spotify had it.
   */
  holdNext(n?: number): Promise<void>;
  release(): void;
  /** Resolves once `predicate` holds for what was received; rejects after `timeoutMs`. */
  waitFor(predicate: (s: Standin) => boolean, timeoutMs?: number): Promise<void>;
  /** Stop listening: connections are refused until `reopen()`. */
  stopListening(): Promise<void>;
  reopen(): Promise<void>;
  close(): Promise<void>;
}

export interface StandinOptions {
  token?: string;
  connectionId?: string;
  /** Only record the count of events, not their bodies (benchmarks). */
  lean?: boolean;
  path?: string;
}

export async function startStandin(options: StandinOptions = {}): Promise<Standin> {
  const path = options.path ?? '/capi-direct/events/';
  const script: Script = { answers: [], refused: new Map(), delays: [], holds: 0 };
  const held: ServerResponse[] = [];
  const sockets = new Set<Socket>();
  const waiters = new Set<() => void>();
  let heldWaiter: (() => void) | undefined;
  let port = 0;

  const standin: Standin = {
    url: '',
    port: 0,
    token: options.token ?? 'standin-token-' + Math.random().toString(36).slice(2),
    connectionId: options.connectionId ?? 'standin-connection',
    received: [],
    heldRequests: [],
    accepted: [],
    acceptedIds: () => standin.accepted.map((e) => e.event_id as string),
    failNext(n, status = 503, headers, body) {
      for (let i = 0; i < n; i++) script.answers.push({ status, headers, body });
    },
    refuseEvent(eventId, body = JSON.stringify({ error: `event ${eventId} refused` })) {
      script.refused.set(eventId, body);
    },
    allowEvent(eventId) {
      script.refused.delete(eventId);
    },
    slowNext(n, ms) {
      for (let i = 0; i < n; i++) script.delays.push(ms);
    },
    holdNext(n = 1) {
      script.holds += n;
      return new Promise((resolve) => (heldWaiter = resolve));
    },
    release() {
      script.holds = 0;
      for (const res of held.splice(0)) answer(res, 200, { message: 'SUCCESS' });
    },
    waitFor(predicate, timeoutMs = 20_000) {
      if (predicate(standin)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!predicate(standin)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`stand-in: condition not met within ${timeoutMs} ms (${standin.received.length} requests, ${standin.accepted.length} events accepted)`));
        }, timeoutMs);
        waiters.add(check);
      });
    },
    stopListening() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
    },
    reopen() {
      return listen(port);
    },
    async close() {
      for (const res of held.splice(0)) res.destroy();
      if (server.listening) await standin.stopListening();
    },
  };

  const notify = () => {
    for (const check of [...waiters]) check();
  };

  function answer(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
    if (res.destroyed) return;
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(typeof body == 'string' ? body : JSON.stringify(body));
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      /* kept as text, refused below */
    }
    const events = isObject(body) && isObject(body.conversion_events) && Array.isArray(body.conversion_events.events) ? body.conversion_events.events : [];
    const record: Received = {
      at: Date.now(),
      authorization: req.headers.authorization,
      contentType: req.headers['content-type'],
      body: options.lean ? undefined : body,
      status: 0,
      eventIds: events.map((e) => (isObject(e) ? (e.event_id as string) : '')),
    };
    standin.received.push(record);

    const reply = (status: number, payload: unknown, headers?: Record<string, string>) => {
      record.status = status;
      if (status >= 200 && status < 300) for (const e of events) standin.accepted.push(options.lean ? { event_id: (e as Obj).event_id } : (e as Obj));
      answer(res, status, payload, headers);
      notify();
    };

    const delay = script.delays.shift();
    if (delay) await new Promise((r) => setTimeout(r, delay));

    if (req.method != 'POST' || (req.url ?? '').split('?')[0] != path) return reply(404, { error: 'not found' });
    if (req.headers.authorization !== `Bearer ${standin.token}`) return reply(401, { error: 'invalid or missing token' });
    if (!/^application\/json(;|$)/.test(req.headers['content-type'] ?? '')) return reply(400, { error: 'Content-Type must be application/json' });
    const scripted = script.answers.shift();
    if (scripted) return reply(scripted.status, scripted.body ?? { error: 'scripted failure' }, scripted.headers);
    if (typeof body == 'string') return reply(400, { error: 'body is not JSON' });
    const reason = checkPayload(body, standin.connectionId);
    if (reason) return reply(400, { error: reason });
    const refused = record.eventIds.find((id) => script.refused.has(id));
    if (refused !== undefined) return reply(400, script.refused.get(refused)!);
    if (script.holds > 0) {
      script.holds--;
      record.status = -1; // held: no answer yet
      held.push(res);
      standin.heldRequests.push(record);
      let taken = false;
      const take = (status: number) => {
        if (taken) return;
        taken = true;
        record.status = status;
        for (const e of events) standin.accepted.push(options.lean ? { event_id: (e as Obj).event_id } : (e as Obj));
        notify();
      };
      res.on('finish', () => take(200));
      // The sender went away (killed) while held: Spotify had the whole request and took it; the answer was lost.
      res.on('close', () => res.writableEnded || take(0));
      heldWaiter?.();
      heldWaiter = undefined;
      notify();
      return;
    }
    reply(200, { message: 'SUCCESS' });
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  function listen(at: number) {
    return new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(at, '127.0.0.1', () => {
        server.off('error', reject);
        port = (server.address() as AddressInfo).port;
        standin.port = port;
        standin.url = `http://127.0.0.1:${port}${path}`;
        resolve();
      });
    });
  }
  await listen(0);
  return standin;
}
