/**
 * One request to Spotify's Conversions API (SPEC §9): the `conversion_events` envelope of one
 * connection, Bearer token, answered within the timeout or counted as no answer. Never throws.
 *
 * Sent with undici's `request` over a keep-alive pool rather than `fetch` (which Node builds on
 * undici too): the same batches to the relay benchmark's stand-in cost 6–12 µs of CPU per event
 * against 22–28 with `fetch`, and the relay's CPU is its throughput.
 */
import { Agent, request as send } from 'undici';
import type { Connection } from '../context.js';
import type { SpotifyEvent } from './mapping.js';
import type { Answer } from './outcome.js';

/** Shared by every connection: Spotify's API is one origin, and idle sockets do not keep the process up. */
const pool = new Agent({ keepAliveTimeout: 30_000 });

const CUT_SHORT: Answer = { error: 'request cut short: the relay was stopping' };

export function envelope(connectionId: string, events: SpotifyEvent[]): string {
  return JSON.stringify({ conversion_events: { capi_connection_id: connectionId, events } });
}

/** Posts the events; `stop` aborts the request when the relay shuts down past its grace. */
export async function postEvents(connection: Connection, events: SpotifyEvent[], timeoutMs: number, stop?: AbortSignal): Promise<Answer> {
  // A batch claimed ahead is still handed in after the relay has cut its requests short: not sent.
  if (stop?.aborted) return CUT_SHORT;
  // One controller per request, let go when it ends. (`AbortSignal.any([timeout, stop])` would tie
  // every request's signal to the relay's lifelong `stop` signal: Node 20 never frees those.)
  const request = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    request.abort();
  }, timeoutMs);
  const onStop = () => request.abort();
  stop?.addEventListener('abort', onStop, { once: true });
  try {
    // Redirects are not followed (undici's request never does): an answer is Spotify's or nobody's.
    const res = await send(connection.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${connection.token}`, 'content-type': 'application/json' },
      body: envelope(connection.connection_id, events),
      signal: request.signal,
      dispatcher: pool,
    });
    const retryAfter = res.headers['retry-after'];
    return { status: res.statusCode, body: await res.body.text(), retryAfter: (Array.isArray(retryAfter) ? retryAfter[0] : retryAfter) ?? null };
  } catch (error) {
    if (timedOut) return { error: `no answer within ${timeoutMs / 1000} s`, timedOut: true };
    if (stop?.aborted) return CUT_SHORT;
    return { error: `network error: ${describe(error)}` };
  } finally {
    clearTimeout(timer);
    stop?.removeEventListener('abort', onStop);
  }
}

/** `ECONNREFUSED`, `ENOTFOUND`, …: the system error's code, also when it is wrapped as a `cause`. */
function describe(error: unknown): string {
  const { code, message, cause } = (error ?? {}) as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  return cause?.code ?? (code?.startsWith('UND_ERR') ? undefined : code) ?? cause?.message ?? message ?? String(error);
}
