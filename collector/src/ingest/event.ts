/**
 * What the beacon and the image paths share: re-applying the tag's own validation (SPEC §2, §5)
 * to one event's body and to a batch item's alias. Whatever had to be dropped or changed is
 * written to `problems` in the tag's own words (`purchase currency: not a currency code`).
 */
import { isEventCommand, text, validate, type Warn } from 'spdt-pixel/rules';
import type { Json } from '../store/types.js';
import { hasEmail, redactUrl } from './email.js';

/** What the request itself showed, stored with every event it brought. */
export interface RequestFacts {
  received_at: number;
  ip: string;
  user_agent?: string;
}

const SHA256 = /^[0-9a-f]{64}$/i;
/** The longest URL kept; the tag's image fallback stays under 8,000 characters in all. */
const MAX_URL = 8192;

export const warner =
  (action: string, problems: string[]): Warn =>
  (field: string, reason: string) => {
    // A problem names what the sender wrote (a prop's name, an action): never an email in it.
    problems.push(hasEmail(action) || hasEmail(field) ? `[email]: ${reason}` : `${action} ${field}: ${reason}`);
    return undefined;
  };

/**
 * The clean body of one event: `url` and `referrer` kept (emails redacted), `trunc` kept, hashed
 * identifiers kept when they are SHA-256, then the tag's `validate()` for the rest. An action the
 * tag does not know is validated as free props and reported.
 */
export function cleanBody(action: string, raw: Record<string, unknown>, problems: string[]): Json {
  const warn = warner(action, problems);
  const known = isEventCommand(action);
  if (!known) warn('command', 'unknown');
  const body: Json = {};
  const rest: Record<string, unknown> = Object.create(null);
  for (const name of Object.keys(raw)) {
    const value = raw[name];
    if (value == null) continue;
    switch (name) {
      case 'url':
      case 'referrer':
        if (typeof value != 'string') warn(name, 'not a string');
        else if (value) body[name] = url(name, value, warn);
        break;
      case 'trunc':
        if (value === 1 || value === '1') body.trunc = 1;
        else warn(name, 'not 1');
        break;
      case 'hashed_email':
      case 'hashed_phone_number':
        if (typeof value == 'string' && SHA256.test(value)) body[name] = value.toLowerCase();
        else warn(name, 'not a SHA-256');
        break;
      case 'event_id':
        warn(name, 'in the body, dropped'); // the event's id is the wire field, not a prop
        break;
      default:
        rest[name] = value;
    }
  }
  // The tag's rules drop what it would have dropped, a prop holding an email address included.
  validate(known ? action : 'view', rest, body, warn);
  return body;
}

function url(name: string, value: string, warn: Warn): string {
  if (value.length > MAX_URL) {
    warn(name, 'truncated to 8192');
    value = value.slice(0, MAX_URL);
  }
  const redacted = redactUrl(value);
  if (redacted != value) warn(name, 'email replaced by [email]');
  return redacted;
}

const ALIAS_IDS = ['id', 'partner_user_id', 'click_id'];

/** A batch item's alias: SHA-256 identifiers and plain ids; anything else is dropped and reported. */
export function cleanAlias(raw: unknown, problems: string[]): Record<string, string> | undefined {
  const warn = warner('alias', problems);
  if (raw == null) return undefined;
  if (typeof raw != 'object' || Array.isArray(raw)) return warn('alias', 'not an object');
  const alias: Record<string, string> = {};
  for (const name of Object.keys(raw)) {
    const value = (raw as Record<string, unknown>)[name];
    if (value == null) continue;
    if (name == 'hashed_email' || name == 'hashed_phone_number') {
      if (typeof value == 'string' && SHA256.test(value)) alias[name] = value.toLowerCase();
      else warn(name, 'not a SHA-256');
    } else if (ALIAS_IDS.includes(name)) {
      const clean = text(name, value, warn); // as the tag: an id holding an email address is dropped
      if (clean) alias[name] = clean;
    } else warn(name.slice(0, 64), 'not an alias field');
  }
  return Object.keys(alias).length ? alias : undefined;
}

/** An id of the visitor (`uid`, `sid`, `cid`): a string of at most 256 characters, else dropped. */
export function cleanId(name: string, raw: unknown, problems: string[]): string | undefined {
  if (raw == null) return undefined;
  const warn = warner('batch', problems);
  const id = text(name, raw, warn);
  return id && hasEmail(id) ? warn(name, 'looks like an email') : id;
}
