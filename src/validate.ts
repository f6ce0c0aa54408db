/**
 * Validation and normalisation of a command's props (SPEC §2). Pure: it reads the props, returns a
 * clean body and reports each dropped or changed field through `warn`. Nothing here can throw on
 * hostile input (throwing getters, proxies, cycles, symbols, huge strings).
 */
import { hashIdentifier } from './hashing';
import { hasEmail } from './redact';
import { attempt, has, read, type Props } from './util';

export type Warn = (field: string, reason: string) => undefined;

const PRODUCT = ' product_id product_name product_type product_vendor variant_id variant_name';
const MONEY = 'value currency';

/** The named props of each command; anything else is a free prop. */
const COMMANDS: Record<string, string> = {
  view: '',
  product: MONEY + PRODUCT,
  addtocart: MONEY + PRODUCT + ' quantity',
  checkout: MONEY + ' discount_code quantity line_items',
  purchase: MONEY + ' discount_code quantity line_items order_id is_new_customer' + PRODUCT,
  lead: MONEY + ' type category',
  signup: 'sign_up_method',
  custom: MONEY + ' event_name',
  alias: 'id partner_user_id click_id',
};
for (let i = 1; i < 6; i++) COMMANDS['custom_event_' + i] = MONEY;

const LINE_ITEM = (PRODUCT + ' value quantity').split(' ').slice(1);
const MAX_STRING = 256;
const MAX_ITEMS = 100;
const MAX_FREE = 100;

export const isEventCommand = (command: string): boolean => has(COMMANDS, command);

/** `'79.99'` → 79.99; anything else is returned as it is, for the caller to judge. */
const numeric = (v: unknown) => (typeof v == 'string' && /^\s*(\d+(\.\d*)?|\.\d+)\s*$/.test(v) ? +v : v);

/**
 * A trimmed string of at most 256 UTF-16 units, or undefined (dropped). The cut never splits a
 * surrogate pair: a lone half would arrive as U+FFFD. (`\p{Cs}` with `u` matches only an unpaired
 * surrogate: a whole pair is one code point.)
 */
export function text(field: string, v: unknown, warn: Warn): string | undefined {
  if (Number.isFinite(v)) v = '' + v;
  if (typeof v != 'string') return warn(field, 'not a string');
  // Only `email`, which is hashed, may hold an address (SPEC §5); anything else holding one is dropped.
  if (field != 'email' && hasEmail(v)) return warn(field, 'looks like an email');
  v = v.trim();
  if ((v as string).length > MAX_STRING) {
    warn(field, 'truncated to 256');
    v = (v as string).slice(0, MAX_STRING).replace(/\p{Cs}$/u, '');
  }
  return (v as string) || undefined;
}

/** Validates one named field; returns the clean value or undefined (dropped). */
function field(name: string, v: unknown, warn: Warn): unknown {
  switch (name) {
    case 'value':
      v = numeric(v);
      return typeof v == 'number' && v >= 0 && v < Infinity ? v : warn(name, 'not a number ≥ 0');
    case 'quantity':
      v = numeric(v);
      return Number.isInteger(v) && (v as number) >= 0 ? v : warn(name, 'not an integer ≥ 0');
    case 'currency':
      return typeof v == 'string' && /^\s*[a-z]{3}\s*$/i.test(v)
        ? v.trim().toUpperCase()
        : warn(name, 'not a currency code');
    case 'is_new_customer':
      return typeof v == 'boolean' ? v : v === 'true' || (v === 'false' ? false : warn(name, 'not a boolean'));
    case 'event_id': // the pixel takes it out of the body; a UUID replaces a bad one
      return typeof v == 'string' && v && v.length <= 128 ? v : warn(name, 'not a string ≤ 128, replaced');
    case 'email':
    case 'phone_number':
      v = text(name, v, warn);
      return v && hashIdentifier(name, v as string);
    case 'line_items':
      try {
        return lineItems(v, warn);
      } catch {
        return warn(name, 'unreadable'); // a hostile array (throwing getters, proxies)
      }
  }
  return text(name, v, warn);
}

function lineItems(v: unknown, warn: Warn): Props[] | undefined {
  if (!Array.isArray(v)) return warn('line_items', 'not an array');
  if (v.length > MAX_ITEMS) warn('line_items', 'kept the first 100');
  const items: Props[] = [];
  v.slice(0, MAX_ITEMS).forEach((entry, i) => {
    if (!entry || typeof entry != 'object') return warn(`line_items[${i}]`, 'not an object');
    const item: Props = {};
    for (const name of LINE_ITEM) {
      const raw = read(entry, name);
      const clean = raw == null ? raw : field(name, raw, (f, reason) => warn(`line_items[${i}].${f}`, reason));
      if (clean != null) item[name] = clean;
    }
    items.push(item);
  });
  return items;
}

/** A free prop: a safe name and a string, number or boolean value. */
function free(name: string, v: unknown, warn: Warn): unknown {
  // An identifier, but none that would pollute a prototype or collide with what the tag sends.
  if (!/^(?!(__proto__|constructor|prototype|url|referrer|trunc|hashed_\w*)$|\d)\w{1,64}$/.test(name)) return warn(name.slice(0, 64), 'not a valid name');
  if (typeof v == 'boolean' || Number.isFinite(v)) return v;
  return typeof v == 'string' ? text(name, v, warn) : warn(name, 'not a string/number/boolean');
}

export interface Validated {
  body: Props;
  /** Names of the free props in `body`: the first thing dropped when an event is too large. */
  free: string[];
}

/**
 * Validates `props` for `command` into `body` (which may already hold `url` and `referrer`).
 * `email` and `phone_number` are never kept raw: they become `hashed_email` / `hashed_phone_number`.
 */
export function validate(command: string, props: unknown, body: Props, warn: Warn): Validated {
  const named = ' ' + COMMANDS[command] + ' ';
  const freeNames: string[] = [];
  let tooMany = false;
  const keys =
    props == null ? [] : typeof props != 'object' ? warn('props', 'not an object') : attempt(() => Object.keys(props)) || warn('props', 'unreadable');
  for (const name of keys || []) {
    const raw = read(props, name);
    if (raw == null) continue;
    const pii = name == 'email' || name == 'phone_number';
    let clean: unknown;
    if (pii || name == 'event_id' || (name && named.includes(' ' + name + ' '))) clean = field(name, raw, warn);
    else if (freeNames.length < MAX_FREE) {
      clean = free(name, raw, warn);
      if (clean != null) freeNames.push(name);
    } else if (!tooMany) {
      tooMany = true;
      warn('props', 'over 100 free props');
    }
    if (clean != null) body[pii ? 'hashed_' + name : name] = clean;
  }
  if (body.value != null && !body.currency && read(props, 'currency') == null) warn('currency', 'missing for value');
  return { body, free: freeNames };
}
