/**
 * `POST /v1/ingest` bodies (SPEC §6) → the events to store. Pure.
 *
 * A request is refused whole (400, nothing stored) when it cannot be read: malformed JSON, a body
 * that breaks the shape of §6, or raw PII (a key `email` or `phone_number` anywhere: the tag never
 * sends one, so such a body is not from the tag and must not be stored in any part). Within a
 * well-shaped body, each event's props are re-validated by the tag's own rules and what that
 * changed is kept as the event's `problems`.
 */
import type { NewEvent } from '../store/types.js';
import { hasEmail } from './email.js';
import { cleanAlias, cleanBody, cleanId, type RequestFacts } from './event.js';

export type Rejection = { reason: 'malformed_json' | 'shape' | 'pii'; error: string };
export type Parsed = { events: NewEvent[]; rejection?: undefined } | { rejection: Rejection; events?: undefined };

const MAX_KEY = 256;
const MAX_ACTION = 64;
const MAX_EVENT_ID = 128;

class ShapeError extends Error {}
class PiiError extends Error {}
const shape = (path: string, why: string): never => {
  throw new ShapeError(`${path}: ${why}`);
};
/** The fields an event is stored under cannot be dropped: one that holds an email refuses the request. */
const noEmail = (path: string, value: string) => {
  if (hasEmail(value)) throw new PiiError(`${path}: looks like an email address, not accepted`);
};

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v == 'object' && !Array.isArray(v);

export function parseIngest(text: string, facts: RequestFacts): Parsed {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { rejection: { reason: 'malformed_json', error: 'body: not valid JSON' } };
  }
  // A key `email` is written `"email"` in JSON unless escaped as \u…: most bodies skip the walk.
  const mayHavePii = text.includes('"email"') || text.includes('"phone_number"') || text.includes('\\u');
  const pii = mayHavePii ? findPii(json, 'body') : undefined;
  if (pii) return { rejection: { reason: 'pii', error: `${pii}: raw email or phone number, not accepted (send hashed_email / hashed_phone_number)` } };
  try {
    return { events: batchEvents(json, facts) };
  } catch (e) {
    if (e instanceof PiiError) return { rejection: { reason: 'pii', error: e.message } };
    if (e instanceof ShapeError) return { rejection: { reason: 'shape', error: e.message } };
    throw e;
  }
}

/** The path of the first key `email` or `phone_number` at any depth, or undefined. Iterative: any nesting depth. */
export function findPii(root: unknown, rootPath: string): string | undefined {
  const stack: [unknown, string][] = [[root, rootPath]];
  while (stack.length) {
    const [value, path] = stack.pop()!;
    if (!value || typeof value != 'object') continue;
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) if (value[i] && typeof value[i] == 'object') stack.push([value[i], `${path}[${i}]`]);
      continue;
    }
    const keys = Object.keys(value);
    for (const key of keys) if (key == 'email' || key == 'phone_number') return `${path}.${key}`;
    for (let i = keys.length - 1; i >= 0; i--) {
      const child = (value as Record<string, unknown>)[keys[i]];
      if (child && typeof child == 'object') stack.push([child, `${path}.${keys[i]}`]);
    }
  }
  return undefined;
}

function batchEvents(json: unknown, facts: RequestFacts): NewEvent[] {
  if (!isObject(json)) return shape('body', 'not a JSON object');
  if (json.v !== 1) shape('v', json.v === undefined ? 'missing' : 'not 1 (this collector speaks wire protocol v1)');
  if (!Array.isArray(json.batch)) return shape('batch', json.batch === undefined ? 'missing' : 'not an array');
  const events: NewEvent[] = [];
  json.batch.forEach((item, i) => {
    const path = `batch[${i}]`;
    if (!isObject(item)) return shape(path, 'not an object');
    const key = item.pid;
    if (typeof key != 'string' || !key) shape(`${path}.pid`, key === undefined ? 'missing' : 'not a non-empty string');
    if ((key as string).length > MAX_KEY) shape(`${path}.pid`, 'over 256 characters');
    noEmail(`${path}.pid`, key as string);
    if (!Array.isArray(item.events)) return shape(`${path}.events`, item.events === undefined ? 'missing' : 'not an array');

    // What is wrong with the batch item is a problem of each of its events.
    const itemProblems: string[] = [];
    const uid = cleanId('uid', item.uid, itemProblems);
    const sid = cleanId('sid', item.sid, itemProblems);
    const cid = cleanId('cid', item.cid, itemProblems);
    const alias = cleanAlias(item.alias, itemProblems);
    if (item.opt_out_targeting != null && typeof item.opt_out_targeting != 'boolean') itemProblems.push('batch opt_out_targeting: not a boolean');
    const opt_out_targeting = item.opt_out_targeting === true ? true : undefined;

    item.events.forEach((event, j) => {
      const at = `${path}.events[${j}]`;
      if (!isObject(event)) return shape(at, 'not an object');
      const { action, event_id, time, body } = event;
      if (typeof action != 'string' || !action) shape(`${at}.action`, action === undefined ? 'missing' : 'not a non-empty string');
      if ((action as string).length > MAX_ACTION) shape(`${at}.action`, 'over 64 characters');
      if (typeof event_id != 'string' || !event_id) shape(`${at}.event_id`, event_id === undefined ? 'missing' : 'not a non-empty string');
      if ((event_id as string).length > MAX_EVENT_ID) shape(`${at}.event_id`, 'over 128 characters');
      if (typeof time != 'number' || !Number.isFinite(time)) shape(`${at}.time`, time === undefined ? 'missing' : 'not a number (epoch ms)');
      if (body != null && !isObject(body)) shape(`${at}.body`, 'not an object');
      noEmail(`${at}.action`, action as string);
      noEmail(`${at}.event_id`, event_id as string);
      const problems = [...itemProblems];
      events.push({
        key: key as string,
        action: action as string,
        event_id: event_id as string,
        time: time as number,
        received_at: facts.received_at,
        uid,
        sid,
        cid,
        alias,
        opt_out_targeting,
        transport: 'beacon',
        action_source: 'WEB',
        ip: facts.ip,
        user_agent: facts.user_agent,
        body: cleanBody(action as string, (body as Record<string, unknown>) ?? {}, problems),
        problems,
        deliveries: [],
      });
    });
  });
  return events;
}
