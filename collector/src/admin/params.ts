/**
 * The admin API's parameters (SPEC §8), checked before the store sees them. Pure. A bad parameter is
 * a 400 naming it: a typo such as `?limt=5` is ignored like any unknown name, but a value that is
 * there and wrong is never silently replaced by a default.
 */
import type { DeliveryState, EventQuery } from '../store/types.js';

export const DEFAULT_LIMIT = 1000;
export const MAX_LIMIT = 10_000;
const MAX_KEY = 256;
const MAX_REPLAY_IDS = 10_000;
const STATES: readonly DeliveryState[] = ['pending', 'delivered', 'dead', 'skipped'];

export type Checked<T> = { ok: true; value: T } | { ok: false; error: string };
type Query = Record<string, unknown>;

const ok = <T>(value: T): Checked<T> => ({ ok: true, value });
const bad = (error: string): { ok: false; error: string } => ({ ok: false, error });

/** A parameter given once, as a string; a repeated one is refused rather than guessed at. */
function single(query: Query, name: string): Checked<string | undefined> {
  const v = query[name];
  if (v === undefined) return ok(undefined);
  return typeof v == 'string' ? ok(v) : bad(`${name}: given more than once`);
}

function wholeNumber(query: Query, name: string, min: number, max: number): Checked<number | undefined> {
  const v = single(query, name);
  if (!v.ok || v.value === undefined) return v as Checked<undefined>;
  const n = /^\d{1,16}$/.test(v.value) ? Number(v.value) : NaN;
  return n >= min && n <= max ? ok(n) : bad(`${name}: not a whole number from ${min} to ${max}`);
}

function limit(query: Query): Checked<number> {
  const v = wholeNumber(query, 'limit', 1, MAX_LIMIT);
  return v.ok ? ok(v.value ?? DEFAULT_LIMIT) : v;
}

/** `/api/events?key=&since=&limit=`. */
export function eventQuery(query: Query): Checked<EventQuery> {
  const key = single(query, 'key');
  if (!key.ok) return key;
  if (key.value !== undefined && (!key.value || key.value.length > MAX_KEY)) return bad(`key: not a pixel key of 1 to ${MAX_KEY} characters`);
  const since = wholeNumber(query, 'since', 0, Number.MAX_SAFE_INTEGER);
  if (!since.ok) return since;
  const max = limit(query);
  if (!max.ok) return max;
  return ok({ key: key.value, since: since.value, limit: max.value });
}

/** `/api/deliveries?state=&limit=`. */
export function deliveryQuery(query: Query): Checked<{ state?: DeliveryState; limit: number }> {
  const state = single(query, 'state');
  if (!state.ok) return state;
  if (state.value !== undefined && !STATES.includes(state.value as DeliveryState)) return bad(`state: not one of ${STATES.join(', ')}`);
  const max = limit(query);
  if (!max.ok) return max;
  return ok({ state: state.value as DeliveryState | undefined, limit: max.value });
}

/**
 * `POST /api/deliveries/replay`: `{}` replays every dead delivery, `{"event_ids": [...]}` those of
 * the events named. Any other key is refused: a misspelt `eventIds` must not replay everything.
 */
export function replayBody(body: unknown): Checked<{ eventIds?: string[] }> {
  if (typeof body != 'object' || body === null || Array.isArray(body)) return bad('body: not a JSON object ({} or {"event_ids": [...]})');
  const unknown = Object.keys(body).filter((name) => name != 'event_ids');
  if (unknown.length) return bad('body: only event_ids is allowed');
  const ids = (body as { event_ids?: unknown }).event_ids;
  if (ids === undefined) return ok({});
  if (!Array.isArray(ids) || ids.length > MAX_REPLAY_IDS || !ids.every((id) => typeof id == 'string' && id.length > 0 && id.length <= 128)) {
    return bad(`event_ids: not a list of at most ${MAX_REPLAY_IDS} event ids`);
  }
  return ok({ eventIds: ids });
}
