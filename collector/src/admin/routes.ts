/**
 * The admin endpoints (SPEC §8): the live view page, the events API and its stream, dead deliveries
 * and their replay, and `/metrics`. Every one of them goes through `adminAllowed` first; only the
 * page's own script and stylesheet are public (they are the same for everyone and hold no data).
 *
 * They live in their own Fastify scope, with their own body parser and error answers, so nothing
 * the public routes configure (text/plain ingest bodies, their error format) changes them.
 */
import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { CollectorContext } from '../context.js';
import { adminAllowed } from './auth.js';
import { registerAdminMetrics } from './metrics.js';
import { deliveryQuery, eventQuery, replayBody } from './params.js';
import { presentEvent, presentListedDelivery } from './present.js';
import { pumpChanges, resumeCursor, STREAM_DEFAULTS, type LiveStream, type StreamOptions } from './stream.js';
import { parseJson } from '../json.js';

const PUBLIC_DIR = new URL('../../public/', import.meta.url);
const MAX_BODY = 1024 * 1024;

/** The page can only run its own script and talk to its own origin; its URL (with ?token=) is never sent on. */
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
};

const ASSETS: Record<string, { file: string; type: string }> = {
  '/live.js': { file: 'live.js', type: 'text/javascript; charset=utf-8' },
  '/live.css': { file: 'live.css', type: 'text/css; charset=utf-8' },
};

export interface AdminOptions {
  stream?: Partial<StreamOptions>;
}

export function registerAdmin(app: FastifyInstance, ctx: CollectorContext, options: AdminOptions = {}): void {
  const streams = new Set<LiveStream>();
  registerAdminMetrics(ctx, () => streams.size);

  void app.register(async (admin) => {
    admin.removeAllContentTypeParsers();
    admin.addContentTypeParser('*', { parseAs: 'string', bodyLimit: MAX_BODY }, (_request, body, done) => done(null, body));
    admin.setErrorHandler((err: { statusCode?: number; message: string }, request, reply) => {
      const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
      if (status == 500) ctx.log.error('admin request failed', { route: request.routeOptions.url, error: err.message });
      void reply.code(status).send({ error: status == 500 ? 'internal error' : err.message });
    });
    admin.addHook('onRequest', async (request, reply) => {
      if (ASSETS[request.routeOptions.url ?? '']) return;
      if (!allowed(ctx, request)) {
        return reply
          .code(401)
          .header('www-authenticate', 'Bearer')
          .send({ error: ctx.config.adminToken ? 'admin token missing or wrong' : 'admin endpoints answer loopback clients only (or set SPDT_ADMIN_TOKEN)' });
      }
    });

    admin.get('/metrics', async (_request, reply) => {
      const text = await ctx.registry.metrics();
      return reply.header('content-type', ctx.registry.contentType).header('cache-control', 'no-store').send(text);
    });
    // A relay-only node answers /healthz and /metrics, nothing else (SPEC §8).
    if (ctx.config.role == 'relay') return;

    const page = readFileSync(new URL('index.html', PUBLIC_DIR));
    admin.get('/', async (_request, reply) => reply.headers(PAGE_HEADERS).type('text/html; charset=utf-8').send(page));
    for (const [path, asset] of Object.entries(ASSETS)) {
      const content = readFileSync(new URL(asset.file, PUBLIC_DIR));
      admin.get(path, async (_request, reply) => reply.header('x-content-type-options', 'nosniff').type(asset.type).send(content));
    }

    admin.get('/api/events', async (request, reply) => {
      const query = eventQuery(request.query as Record<string, unknown>);
      if (!query.ok) return reply.code(400).send({ error: query.error });
      const events = await ctx.store.events(query.value);
      return reply.header('cache-control', 'no-store').send(events.map(presentEvent));
    });

    admin.get('/api/deliveries', async (request, reply) => {
      const query = deliveryQuery(request.query as Record<string, unknown>);
      if (!query.ok) return reply.code(400).send({ error: query.error });
      const deliveries = await ctx.store.deliveries(query.value);
      return reply.header('cache-control', 'no-store').send(deliveries.map(presentListedDelivery));
    });

    admin.post('/api/deliveries/replay', async (request, reply) => {
      const body = replayBody(parseJson(request.body));
      if (!body.ok) return reply.code(400).send({ error: body.error });
      const ids = body.value.eventIds;
      const replayed = ids?.length === 0 ? 0 : await ctx.store.replay(ids);
      if (replayed) ctx.changes.emit('change'); // wakes the relay and the live streams
      return { replayed };
    });

    const streamOptions = { ...STREAM_DEFAULTS, ...options.stream };
    // No automatic HEAD twin: a hijacked stream has no head-only form.
    admin.get('/api/stream', { exposeHeadRoute: false }, async (request, reply) => {
      // A browser resuming (Last-Event-ID) gets what it missed; an id from before a store was
      // replaced (newer than anything in it) would wait for changes that never come: start now.
      const now = await ctx.store.cursor();
      const cursor = Math.min(resumeCursor(request.headers['last-event-id']) ?? now, now);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-accel-buffering': 'no', // nginx: pass each event on at once
      });
      res.write('retry: 2000\n\n');
      const stream = pumpChanges(ctx, res, cursor, streamOptions, () => streams.delete(stream));
      streams.add(stream);
    });
  });

  const wakeStreams = () => streams.forEach((s) => s.wake());
  ctx.changes.on('change', wakeStreams);
  // Open streams would hold app.close() (and SIGTERM's 10 s) open forever: end them first.
  app.addHook('preClose', async () => {
    ctx.changes.off('change', wakeStreams);
    streams.forEach((s) => s.stop());
  });
}

function allowed(ctx: CollectorContext, request: FastifyRequest): boolean {
  const token = (request.query as Record<string, unknown> | undefined)?.token;
  return adminAllowed(ctx.config.adminToken, {
    authorization: request.headers.authorization,
    queryToken: typeof token == 'string' ? token : Array.isArray(token) && typeof token[0] == 'string' ? token[0] : undefined,
    remoteAddress: request.socket.remoteAddress,
    forwarded: request.headers['x-forwarded-for'] !== undefined || request.headers.forwarded !== undefined,
  });
}

