/**
 * What `/api/events` and `/api/stream` show of a stored event: exactly SPEC §8's fields, in its
 * order, whatever else a store's rows carry. Fields with nothing to say are left out of the JSON.
 */
import type { Delivery, StoredEvent } from '../store/types.js';

export function presentDelivery(d: Delivery): Delivery {
  return {
    destination: d.destination,
    connection_id: d.connection_id,
    state: d.state,
    attempts: d.attempts,
    last_status: d.last_status,
    last_error: d.last_error,
    next_attempt_at: d.next_attempt_at,
    delivered_at: d.delivered_at,
  };
}

export function presentEvent(e: StoredEvent): StoredEvent {
  return {
    key: e.key,
    action: e.action,
    event_id: e.event_id,
    time: e.time,
    received_at: e.received_at,
    uid: e.uid,
    sid: e.sid,
    cid: e.cid,
    alias: e.alias,
    opt_out_targeting: e.opt_out_targeting,
    transport: e.transport,
    action_source: e.action_source,
    ip: e.ip,
    user_agent: e.user_agent,
    body: e.body,
    problems: e.problems,
    deliveries: e.deliveries.map(presentDelivery),
  };
}

/** A row of `/api/deliveries`: which event, then the delivery. */
export function presentListedDelivery(d: Delivery & { event_id: string; key: string }): Delivery & { event_id: string; key: string } {
  return { event_id: d.event_id, key: d.key, ...presentDelivery(d) };
}
