/**
 * One request to Spotify's Conversions API (SPEC §9): the `conversion_events` envelope of one
 * connection, Bearer token, answered within the timeout or counted as no answer. Never throws.
 */
import type { Connection } from '../context.js';
import type { SpotifyEvent } from './mapping.js';
import type { Answer } from './outcome.js';

export function envelope(connectionId: string, events: SpotifyEvent[]): string {
  return JSON.stringify({ conversion_events: { capi_connection_id: connectionId, events } });
}

/** Posts the events; `stop` aborts the request when the relay shuts down past its grace. */
export async function postEvents(connection: Connection, events: SpotifyEvent[], timeoutMs: number, stop?: AbortSignal): Promise<Answer> {
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    const res = await fetch(connection.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${connection.token}`, 'content-type': 'application/json' },
      body: envelope(connection.connection_id, events),
      signal: stop ? AbortSignal.any([timeout, stop]) : timeout,
      redirect: 'manual',
    });
    return { status: res.status, body: await res.text(), retryAfter: res.headers.get('retry-after') };
  } catch (error) {
    if (timeout.aborted) return { error: `no answer within ${timeoutMs / 1000} s`, timedOut: true };
    if (stop?.aborted) return { error: 'request cut short: the relay was stopping' };
    return { error: `network error: ${describe(error)}` };
  }
}

/** `ECONNREFUSED`, `ENOTFOUND`, …: undici hides the system error under `cause`. */
function describe(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } })?.cause;
  return cause?.code ?? cause?.message ?? (error as Error)?.message ?? String(error);
}
