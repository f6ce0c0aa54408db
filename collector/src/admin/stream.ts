/**
 * `GET /api/stream` (SPEC §8): server-sent events, one `data:` line of an event's JSON each time it
 * is stored or one of its deliveries changes, from every node that shares the store.
 *
 * Nothing is pushed from memory: each stream reads `store.changes(cursor)`, woken at once by this
 * node's change signal and every `pollMs` for what other nodes wrote. The cursor goes out as the SSE
 * `id`, so a browser that reconnects (sending `Last-Event-ID`) resumes where it left off.
 */
import type { ServerResponse } from 'node:http';
import type { CollectorContext } from '../context.js';
import { presentEvent } from './present.js';

export interface StreamOptions {
  /** How often the store is read for other nodes' changes. */
  pollMs: number;
  /** How often a comment line keeps proxies from closing an idle stream. */
  heartbeatMs: number;
  /** Changes read per store call. */
  batch: number;
  /** A client that lets this much pile up unread is cut off (it reconnects and resumes). */
  maxBufferedBytes: number;
}

export const STREAM_DEFAULTS: StreamOptions = { pollMs: 500, heartbeatMs: 15_000, batch: 500, maxBufferedBytes: 4 * 1024 * 1024 };

/** The cursor a `Last-Event-ID` header names, if it is one. */
export function resumeCursor(header: string | string[] | undefined): number | undefined {
  const v = Array.isArray(header) ? header[0] : header;
  return v !== undefined && /^\d{1,16}$/.test(v) ? Number(v) : undefined;
}

export interface LiveStream {
  /** Read the store now (this node changed something). */
  wake: () => void;
  stop: () => void;
}

/**
 * Streams changes after `cursor` to `res` until the client goes or `stop()` is called; `onStop`
 * runs once either way. The caller has written the response head.
 */
export function pumpChanges(
  ctx: Pick<CollectorContext, 'store' | 'log'>,
  res: ServerResponse,
  cursor: number,
  options: StreamOptions,
  onStop: () => void,
): LiveStream {
  let reading = false;
  let again = false;
  let stopped = false;
  let failing = false; // a store that is down is logged once, not at every poll

  async function read() {
    if (stopped) return;
    if (reading) {
      again = true; // a change arrived while reading: read once more when this read ends
      return;
    }
    reading = true;
    try {
      do {
        again = false;
        const changes = await ctx.store.changes(cursor, options.batch);
        if (stopped) return;
        changes.events.forEach((event, i) => {
          const last = i == changes.events.length - 1;
          res.write(`${last ? `id: ${changes.cursor}\n` : ''}data: ${JSON.stringify(presentEvent(event))}\n\n`);
        });
        cursor = changes.cursor;
        failing = false;
        if (res.writableLength > options.maxBufferedBytes) return stop();
        if (changes.events.length >= options.batch) again = true;
      } while (again && !stopped);
    } catch (err) {
      if (!failing) ctx.log.warn('live stream could not read the store', { error: (err as Error).message });
      failing = true;
    } finally {
      reading = false;
    }
  }

  const poll = setInterval(read, options.pollMs);
  const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), options.heartbeatMs);

  function stop() {
    if (stopped) return;
    stopped = true;
    clearInterval(poll);
    clearInterval(heartbeat);
    res.end();
    onStop();
  }
  res.on('close', stop);
  void read();
  return { wake: () => void read(), stop };
}
