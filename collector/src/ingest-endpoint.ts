/**
 * `POST /v1/ingest` (SPEC §6, §8) as a plain Node request handler, in front of Fastify.
 *
 * This is the collector's hot path, and every tag on every page calls it. Measured on this machine,
 * routing it through Fastify (router, hooks, content-type parser, reply object, a promise chain
 * per step) cost about as much CPU per request as the whole of Node's own HTTP handling, so it is
 * answered here before Fastify sees it: the body is read as bytes up to 64 KiB, decoded once,
 * parsed once, handed to the store's group commit, and 204 is written once the commit is done.
 * Everything else (the preflight, images, the tag, admin) stays on Fastify.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CollectorContext } from './context.js';
import { clientIp, requestScheme } from './ingest/client.js';
import { deviceCookie } from './ingest/cookie.js';
import { parseIngest } from './ingest/wire.js';
import type { IngestMetrics } from './metrics.js';
import type { NewDelivery, NewEvent } from './store/types.js';

/** A request body is never larger (SPEC §6); more is 413 and is not read on. */
export const MAX_INGEST_BODY = 64 * 1024;
export const MAX_USER_AGENT = 512;

const JSON_TYPE = 'application/json; charset=utf-8';

export interface IngestEndpoint {
  /** True when the request was this endpoint's (and is being answered). */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  /** From now on, answer 503 and close the connection: the server is draining. */
  drain(): void;
}

export function ingestEndpoint(ctx: CollectorContext, metrics: IngestMetrics, plan: (event: NewEvent) => NewDelivery[], onStoreError: (error: unknown) => void): IngestEndpoint {
  const { config, store, changes } = ctx;
  const received = metrics.received.labels('beacon');
  const stored = metrics.stored.labels('beacon');
  const latency = metrics.duration.labels('ingest');
  const rejected = {
    too_large: metrics.rejected.labels('too_large'),
    malformed_json: metrics.rejected.labels('malformed_json'),
    shape: metrics.rejected.labels('shape'),
    pii: metrics.rejected.labels('pii'),
    store_unavailable: metrics.rejected.labels('store_unavailable'),
    internal: metrics.rejected.labels('internal'),
  };
  let draining = false;

  function answer(res: ServerResponse, started: number, status: number, error?: string, headers?: Record<string, string>) {
    latency.observe((performance.now() - started) / 1000);
    if (res.headersSent || res.destroyed) return;
    const close = draining || status == 413;
    const head: Record<string, string> = { 'access-control-allow-origin': '*', ...headers };
    if (close) head.connection = 'close';
    if (error === undefined) {
      res.writeHead(status, head).end();
      return;
    }
    const body = JSON.stringify({ error });
    head['content-type'] = JSON_TYPE;
    head['content-length'] = String(Buffer.byteLength(body));
    res.writeHead(status, head).end(body);
  }

  async function ingest(req: IncomingMessage, res: ServerResponse, text: string, started: number) {
    const ua = req.headers['user-agent'];
    const parsed = parseIngest(text, {
      received_at: Date.now(),
      ip: clientIp(req.socket.remoteAddress, req.headers, config.trustProxy),
      user_agent: ua ? ua.slice(0, MAX_USER_AGENT) : undefined,
    });
    if (parsed.rejection) {
      rejected[parsed.rejection.reason].inc();
      return answer(res, started, 400, parsed.rejection.error);
    }
    const { events } = parsed;
    for (const event of events) event.deliveries = plan(event);
    let inserted: boolean[];
    try {
      ({ inserted } = await store.insert(events));
    } catch (error) {
      rejected.store_unavailable.inc();
      onStoreError(error);
      return answer(res, started, 503, 'store unavailable, retry later');
    }
    received.inc(events.length);
    let fresh = 0;
    for (const isNew of inserted) if (isNew) fresh++;
    if (fresh) {
      stored.inc(fresh);
      changes.emit('change');
    }
    const cookie = config.cookieDomain
      ? deviceCookie(config.cookieDomain, config.cookieDays, {
          origin: req.headers.origin,
          referer: req.headers.referer,
          uid: events.find((e) => e.uid)?.uid,
          scheme: requestScheme('encrypted' in req.socket, req.headers, config.trustProxy),
        })
      : undefined;
    answer(res, started, 204, undefined, cookie ? { 'set-cookie': cookie } : undefined);
  }

  function handle(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.method != 'POST' || !(req.url == '/v1/ingest' || req.url?.startsWith('/v1/ingest?'))) return false;
    const started = performance.now();
    if (draining) {
      answer(res, started, 503, 'shutting down, retry later');
      req.resume();
      return true;
    }
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > MAX_INGEST_BODY) {
      rejected.too_large.inc();
      answer(res, started, 413, 'body: over 64 KiB');
      return true;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_INGEST_BODY) return void chunks.push(chunk);
      if (res.headersSent) return;
      req.pause(); // read no further: the connection closes with the answer
      rejected.too_large.inc();
      answer(res, started, 413, 'body: over 64 KiB');
    });
    req.on('end', () => {
      if (size > MAX_INGEST_BODY) return;
      const text = chunks.length == 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks).toString('utf8');
      ingest(req, res, text, started).catch((error) => {
        rejected.internal.inc();
        ctx.log.error('ingest request failed', { error });
        answer(res, started, 500, 'internal error');
      });
    });
    req.on('error', () => undefined); // a client that goes away mid-body: nothing to answer
    return true;
  }

  return {
    handle,
    drain() {
      draining = true;
    },
  };
}
