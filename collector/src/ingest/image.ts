/**
 * `GET /v1/img` query → the event to store (SPEC §6 image fallback and noscript pixel). Pure.
 *
 * Nothing here refuses: an image is always answered with the GIF, so a hit without `key` and `a`
 * is simply not recorded, and whatever is wrong with its parameters is dropped and reported in the
 * event's `problems`. Raw PII parameters and values that look like an email are never stored.
 */
import { randomUUID } from 'node:crypto';
import { text } from 'spdt-pixel/rules';
import type { NewEvent } from '../store/types.js';
import { hasEmail } from './email.js';
import { cleanAlias, cleanBody, cleanId, warner, type RequestFacts } from './event.js';

export type Query = Record<string, string | string[] | undefined>;

/** Parameters that are the event's own fields, not its props. */
const FIELDS = new Set(['key', 'a', 'eid', 't', 'uid', 'sid', 'cid', 'url', 'ref', 'alias', 'opt_out_targeting', 'ns', 'trunc', 'line_items']);

const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);

function json(v: string | undefined): unknown {
  if (v === undefined) return undefined;
  try {
    return JSON.parse(v);
  } catch {
    return v; // left for validation to report
  }
}

export function imageEvent(query: Query, referer: string | undefined, facts: RequestFacts): NewEvent | undefined {
  const problems: string[] = [];
  const key = text('key', first(query.key), () => undefined);
  let action = text('a', first(query.a), () => undefined);
  if (!key || key.length > 256 || !action || action.length > 64) return undefined;
  if (hasEmail(key) || hasEmail(action)) return undefined; // an email where the event's name goes: never stored
  if (action == 'init') action = 'view'; // Spotify's image pixel calls a page view `init`
  const warn = warner(action, problems);
  const noscript = first(query.ns) == '1';

  const eid = first(query.eid);
  let event_id = eid && eid.length <= 128 && !hasEmail(eid) ? eid : undefined;
  if (eid !== undefined && !event_id) warn('event_id', 'not a string ≤ 128, replaced');
  event_id ??= randomUUID();
  const t = first(query.t);
  const time = t !== undefined && /^\d{1,15}$/.test(t) ? Number(t) : facts.received_at;
  if (t !== undefined && !/^\d{1,15}$/.test(t)) warn('t', 'not epoch ms, receipt time used');

  const raw: Record<string, unknown> = Object.create(null);
  raw.url = noscript ? referer : first(query.url);
  raw.referrer = noscript ? undefined : first(query.ref);
  raw.trunc = first(query.trunc);
  for (const name of Object.keys(query)) {
    if (FIELDS.has(name)) continue;
    const value = first(query[name]);
    if (name == 'email' || name == 'phone_number') warn(name, 'raw PII, dropped');
    else if (value !== undefined && hasEmail(value)) warn(name.slice(0, 64), 'looks like an email');
    else raw[name] = value;
  }
  const items = first(query.line_items);
  if (items !== undefined) {
    if (hasEmail(items)) warn('line_items', 'looks like an email');
    else raw.line_items = json(items); // not JSON: validation reports it is not an array
  }
  let alias: Record<string, string> | undefined;
  const aliasText = first(query.alias);
  if (aliasText !== undefined) {
    const parsed = json(aliasText);
    if (typeof parsed == 'string') warn('alias', 'not JSON');
    else alias = cleanAlias(parsed, problems);
  }

  return {
    key,
    action,
    event_id,
    time,
    received_at: facts.received_at,
    uid: cleanId('uid', first(query.uid), problems),
    sid: cleanId('sid', first(query.sid), problems),
    cid: cleanId('cid', first(query.cid), problems),
    alias,
    opt_out_targeting: first(query.opt_out_targeting) == '1' ? true : undefined,
    transport: noscript ? 'noscript' : 'image',
    action_source: 'WEB',
    ip: facts.ip,
    user_agent: facts.user_agent,
    body: cleanBody(action, raw, problems),
    problems,
    deliveries: [],
  };
}
