/**
 * A stored event → one event of Spotify's Conversions API payload (SPEC §9), field by field as the
 * SPEC's table reads. Pure: the worker hands in the event and the connection, and gets back the
 * event to send or the reason it cannot be sent.
 */
import type { Connection } from '../context.js';
import type { ActionSource, ClaimedEvent, Json } from '../store/types.js';
import { isIP } from 'node:net';
import { shortenIp } from '../store/ip.js';

/** Spotify's own spellings (its diagnostics spell some differently; those are not for payloads). */
const EVENT_NAMES: Record<string, string> = {
  view: 'VIEW',
  product: 'PRODUCT',
  addtocart: 'ADD_TO_CART',
  checkout: 'CHECK_OUT',
  purchase: 'PURCHASE',
  lead: 'LEAD',
  signup: 'SIGN_UP',
  custom_event_1: 'CUSTOM_EVENT_1',
  custom_event_2: 'CUSTOM_EVENT_2',
  custom_event_3: 'CUSTOM_EVENT_3',
  custom_event_4: 'CUSTOM_EVENT_4',
  custom_event_5: 'CUSTOM_EVENT_5',
};
const CUSTOM_SLOT = /^CUSTOM_EVENT_[1-5]$/;
const HASH = /^[0-9a-f]{64}$/;
const HTTP_URL = /^https?:\/\//i;

export interface UserData {
  ip_address?: string;
  device_id?: string;
  hashed_emails?: string[];
  hashed_phone_number?: string;
}

export interface EventDetails {
  amount?: number;
  currency?: string;
  content_name?: string;
}

export interface SpotifyEvent {
  event_name: string;
  event_id: string;
  event_time: string;
  user_data: UserData;
  event_details?: EventDetails;
  event_source_url?: string;
  action_source: ActionSource;
  opt_out_targeting?: true;
}

/**
 * The Spotify name of an action: `{ name }`, `{ skip: reason }` for a named `custom` event the
 * connection has no slot for, or undefined for what is never relayed (`alias`, unknown actions).
 */
export function eventName(action: string, body: Json, custom: Connection['custom']): { name: string } | { skip: string } | undefined {
  if (Object.hasOwn(EVENT_NAMES, action)) return { name: EVENT_NAMES[action] };
  if (action != 'custom') return undefined;
  const named = body.event_name;
  if (typeof named != 'string' || !named) return { skip: 'custom event without event_name' };
  const slot = Object.hasOwn(custom, named) ? custom[named] : undefined;
  if (!slot || !CUSTOM_SLOT.test(slot)) return { skip: `custom event "${named}" has no CUSTOM_EVENT slot on this connection (SPDT_SPOTIFY_CUSTOM)` };
  return { name: slot };
}

/** The event, or why it cannot be sent (a name without a slot, or no identifier left). */
export function toSpotifyEvent(event: ClaimedEvent, connection: Pick<Connection, 'custom'>): { event: SpotifyEvent } | { skip: string } {
  const name = eventName(event.action, event.body, connection.custom);
  if (!name) return { skip: `action "${event.action}" is not relayed` };
  if ('skip' in name) return name;
  const user_data = userData(event);
  // Spotify refuses an event without an identifier (a replayed event whose IP was shortened, sent without cookies).
  if (!Object.keys(user_data).length) return { skip: 'no identifier left to send (no full IP, device id, hashed email or phone)' };
  const out: SpotifyEvent = {
    event_name: name.name,
    event_id: event.event_id,
    event_time: eventTime(event.time, event.received_at),
    user_data,
    action_source: event.action_source,
  };
  const details = eventDetails(event.body);
  if (details) out.event_details = details;
  if (typeof event.body.url == 'string' && HTTP_URL.test(event.body.url)) out.event_source_url = event.body.url;
  if (event.opt_out_targeting === true) out.opt_out_targeting = true;
  return { event: out };
}

/** ISO 8601 UTC with milliseconds; Spotify takes only past times, so never after the receipt. */
export function eventTime(time: number, receivedAt: number): string {
  return new Date(Math.min(time, receivedAt)).toISOString();
}

/**
 * The stored IP is shortened (/24, /48) once no delivery needs it; a replayed delivery may find it so
 * and then sends none: a shortened address is not the visitor's and would mislead Spotify's matching.
 */
export function isFullIp(ip: string | undefined): ip is string {
  return !!ip && isIP(ip) != 0 && shortenIp(ip) != ip;
}

/** How a dual-stack socket reports an IPv4 client (`::ffff:203.0.113.7`) is sent as the IPv4 address it is. */
const plainIp = (ip: string) => /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1] ?? ip;

export function userData(event: Pick<ClaimedEvent, 'ip' | 'uid' | 'alias' | 'body'>): UserData {
  const out: UserData = {};
  if (isFullIp(event.ip)) out.ip_address = plainIp(event.ip);
  if (event.uid) out.device_id = event.uid;
  const email = hashed(event, 'hashed_email');
  if (email) out.hashed_emails = [email];
  const phone = hashed(event, 'hashed_phone_number');
  if (phone) out.hashed_phone_number = phone;
  return out;
}

/** The event's own hash when its body has one, else the one its batch item's alias knew. */
function hashed(event: Pick<ClaimedEvent, 'alias' | 'body'>, field: 'hashed_email' | 'hashed_phone_number'): string | undefined {
  const own = event.body[field];
  if (typeof own == 'string' && HASH.test(own)) return own;
  const alias = event.alias?.[field];
  return typeof alias == 'string' && HASH.test(alias) ? alias : undefined;
}

/**
 * Only `amount`, `currency` and `content_name`: Spotify refuses unknown taxonomy values. An amount
 * goes only with its currency (an amount in no currency says nothing, and Spotify refuses it).
 */
export function eventDetails(body: Json): EventDetails | undefined {
  const out: EventDetails = {};
  const currency = typeof body.currency == 'string' && /^[A-Z]{3}$/.test(body.currency) ? body.currency : undefined;
  if (currency && typeof body.value == 'number' && Number.isFinite(body.value)) out.amount = body.value;
  if (currency) out.currency = currency;
  if (typeof body.product_name == 'string' && body.product_name) out.content_name = body.product_name;
  return Object.keys(out).length ? out : undefined;
}
