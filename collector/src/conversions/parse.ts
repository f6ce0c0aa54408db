/**
 * Server-side conversions (SPEC §10): a request body → events ready to store. Pure: the request's
 * own IP, user agent, clock and id maker are handed in.
 *
 * The rules are the tag's own (`spdt-pixel/rules`): `custom_data` is validated as the command's
 * props, and `em` / `ph` are normalised and hashed exactly as the tag's alias does, so a conversion
 * and a pixel event of the same visitor carry the same hashes. What a field cannot be used for is an
 * error of that event when the event would be wrong without it (its name, key, id or time), and a
 * problem stored with the event when only that field is lost (a bad `currency`, an unknown field).
 * No error or problem text carries a value: only field names and the tag's reasons.
 */
import { isIP } from 'node:net';
import { hashIdentifier, isEventCommand, text, validate, type Warn } from 'spdt-pixel/rules';
import type { ActionSource, Json, NewEvent } from '../store/types.js';

export const MAX_EVENTS = 1000;
const MAX_KEY = 256;
const MAX_EVENT_ID = 128;
const MAX_USER_AGENT = 512;
/** 2000-01-01: an earlier epoch-ms time is almost surely epoch seconds. */
const MIN_TIME = 946_684_800_000;
/** The largest time a JavaScript Date (and so the relay's ISO `event_time`) can hold. */
const MAX_TIME = 8.64e15;
const ACTION_SOURCES: readonly ActionSource[] = ['WEB', 'APP', 'OFFLINE'];
const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/;
const DEVICE_ID = /^[0-9a-f]{32}$/i;
const TOP_LEVEL = new Set(['pixel_id', 'event_name', 'event_time', 'event_id', 'action_source', 'user_data', 'custom_data']);
const USER_DATA = new Set(['em', 'ph', 'client_ip_address', 'client_user_agent', 'device_id']);

/** An event as the store takes it, before its deliveries are planned. */
export type Conversion = Omit<NewEvent, 'deliveries'>;

/** `index` is the event's place in `data` (0 for a body that is one event); null for the body as a whole. */
export interface ConversionError {
  index: number | null;
  error: string;
}

export type ParseResult = { ok: true; events: Conversion[] } | { ok: false; errors: ConversionError[] };

/** What the request itself showed, and the clock and id maker to use. */
export interface RequestFacts {
  ip: string;
  userAgent?: string;
  now: number;
  newId: () => string;
}

type Fields = Record<string, unknown>;
const isObject = (v: unknown): v is Fields => typeof v == 'object' && v !== null && !Array.isArray(v);

/** A field name fit to appear in a problem text (a hostile name could be an email address). */
const fieldName = (name: string) => (/^\w{1,64}$/.test(name) ? name : 'a field with an invalid name');

/** Every event of the body, or every reason why not: all or nothing. */
export function parseConversions(body: unknown, facts: RequestFacts): ParseResult {
  if (!isObject(body)) return failed(null, 'body: not a JSON object');
  let inputs: unknown[] = [body];
  if ('data' in body) {
    if (!Array.isArray(body.data)) return failed(null, 'data: not an array');
    if (body.data.length == 0) return failed(null, 'data: no events');
    if (body.data.length > MAX_EVENTS) return failed(null, `data: over ${MAX_EVENTS} events`);
    inputs = body.data;
  }
  const events: Conversion[] = [];
  const errors: ConversionError[] = [];
  inputs.forEach((input, index) => {
    const parsed = parseConversion(input, facts);
    if (typeof parsed == 'string') errors.push({ index, error: parsed });
    else events.push(parsed);
  });
  return errors.length ? { ok: false, errors } : { ok: true, events };
}

const failed = (index: number | null, error: string): ParseResult => ({ ok: false, errors: [{ index, error }] });

/** One event, or the reason it cannot be used. */
export function parseConversion(input: unknown, facts: RequestFacts): Conversion | string {
  if (!isObject(input)) return 'not an object';

  const key = typeof input.pixel_id == 'string' ? input.pixel_id.trim() : '';
  if (!key) return 'pixel_id: required, a string';
  if (key.length > MAX_KEY) return `pixel_id: over ${MAX_KEY} characters`;

  const action = typeof input.event_name == 'string' ? input.event_name.trim().toLowerCase() : '';
  if (!isEventCommand(action) || action == 'alias') return 'event_name: not an event command (view, purchase, …)';

  const time = eventTime(input.event_time, facts.now);
  if (typeof time == 'string') return time;

  const event_id = input.event_id ?? facts.newId();
  if (typeof event_id != 'string' || !event_id || event_id.length > MAX_EVENT_ID) return `event_id: not a string of 1–${MAX_EVENT_ID} characters`;

  const source = input.action_source ?? 'WEB';
  const action_source = typeof source == 'string' ? (source.toUpperCase() as ActionSource) : undefined;
  if (!action_source || !ACTION_SOURCES.includes(action_source)) return 'action_source: not WEB, APP or OFFLINE';

  if (input.custom_data != null && !isObject(input.custom_data)) return 'custom_data: not an object';
  if (input.user_data != null && !isObject(input.user_data)) return 'user_data: not an object';

  const problems: string[] = [];
  const warn =
    (prefix: string): Warn =>
    (field: string, reason: string) => {
      problems.push(`${action} ${prefix}${field}: ${reason}`);
      return undefined;
    };
  for (const name of Object.keys(input)) if (!TOP_LEVEL.has(name)) warn('')(fieldName(name), 'unknown field, dropped');

  const body = customData(action, input.custom_data, warn('custom_data.'));
  if (action == 'custom' && !body.event_name) return 'custom_data.event_name: required for a custom event';

  const user = userData(input.user_data ?? {}, warn('user_data.'));
  if (typeof user == 'string') return user;

  return {
    key,
    action,
    event_id,
    time,
    received_at: facts.now,
    uid: user.uid,
    alias: user.alias,
    transport: 'server',
    action_source,
    ip: user.ip ?? facts.ip,
    user_agent: user.user_agent ?? facts.userAgent,
    body,
    problems,
  };
}

/** ISO 8601 with a zone (or a bare date, UTC) or epoch milliseconds; absent: now. */
function eventTime(v: unknown, now: number): number | string {
  if (v == null) return now;
  const bad = 'event_time: not ISO 8601 (with a time zone) or epoch milliseconds';
  if (typeof v == 'number') {
    if (!Number.isFinite(v) || v > MAX_TIME) return bad;
    if (v < MIN_TIME) return 'event_time: before 2000, epoch seconds instead of milliseconds?';
    return Math.round(v);
  }
  const iso = typeof v == 'string' ? v.trim() : '';
  const match = ISO_8601.exec(iso);
  if (!match) return bad;
  const [, year, month, day] = match.map(Number);
  // Date.parse rolls 2026-02-30 over into March: a day the month does not have is refused here.
  if (new Date(Date.UTC(year, month - 1, day)).getUTCDate() != day || month > 12) return bad;
  const time = Date.parse(iso);
  return Number.isNaN(time) ? bad : time;
}

/**
 * The command's props, as the tag validates them: `email` / `phone_number` come out hashed, and a
 * free prop that holds an email address is dropped, as ingest does (SPEC §5's guard).
 */
function customData(action: string, props: Fields | null | undefined, warn: Warn): Json {
  const own = props ? { ...props } : {};
  // The event's id is the top-level `event_id`: one in the props would silently compete with it.
  if ('event_id' in own) {
    delete own.event_id;
    warn('event_id', 'use the top-level event_id, dropped');
  }
  return validate(action, own, {}, warn).body;
}

interface UserFacts {
  uid?: string;
  alias?: Record<string, string>;
  ip?: string;
  user_agent?: string;
}

function userData(user: Fields, warn: Warn): UserFacts | string {
  const facts: UserFacts = {};
  const alias: Record<string, string> = {};
  for (const name of Object.keys(user)) {
    if (!USER_DATA.has(name)) warn(fieldName(name), 'unknown field, dropped');
  }
  // As the tag's alias: trimmed, then a 64-hex value is kept (lower-cased), anything else normalised
  // and hashed. The raw value goes no further than this function.
  for (const [field, pii, hashed] of [
    ['em', 'email', 'hashed_email'],
    ['ph', 'phone_number', 'hashed_phone_number'],
  ] as const) {
    const raw = user[field];
    // Read as the tag reads its own `email` / `phone_number` (only `email` may hold an address).
    const value = raw == null ? undefined : text(pii, raw, (_, reason) => warn(field, reason));
    const hash = value && hashIdentifier(pii, value);
    if (hash) alias[hashed] = hash;
  }
  if (Object.keys(alias).length) facts.alias = alias;

  const ip = user.client_ip_address;
  if (ip != null) {
    if (typeof ip != 'string' || !isIP(ip.trim())) return 'user_data.client_ip_address: not an IP address';
    facts.ip = ip.trim();
  }
  const agent = user.client_user_agent;
  if (agent != null) {
    if (typeof agent == 'string' && agent.trim()) facts.user_agent = agent.trim().slice(0, MAX_USER_AGENT);
    else warn('client_user_agent', 'not a string, dropped');
  }
  const device = user.device_id;
  if (device != null) {
    if (typeof device == 'string' && DEVICE_ID.test(device.trim())) facts.uid = device.trim().toLowerCase();
    else warn('device_id', 'not 32 hex, dropped');
  }
  return facts;
}
