/**
 * Which Spotify connections an event is delivered to, decided when it is stored (SPEC §9): the
 * deliveries are written in the event's own transaction, so a stored event is never forgotten.
 */
import type { Connection } from '../context.js';
import type { NewDelivery, NewEvent } from '../store/types.js';
import { eventName } from './mapping.js';

/** One delivery per connection that relays the event's key; none for `alias` and unknown actions. */
export function planDeliveries(event: Pick<NewEvent, 'key' | 'action' | 'body'>, connections: Connection[]): NewDelivery[] {
  const deliveries: NewDelivery[] = [];
  for (const connection of connections) {
    if (connection.keys && !connection.keys.includes(event.key)) continue;
    const name = eventName(event.action, event.body, connection.custom);
    if (!name) return [];
    deliveries.push(
      'skip' in name
        ? { connection_id: connection.connection_id, state: 'skipped', last_error: name.skip }
        : { connection_id: connection.connection_id, state: 'pending' },
    );
  }
  return deliveries;
}
