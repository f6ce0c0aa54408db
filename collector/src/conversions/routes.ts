/**
 * `POST /api/v1/conversion` (SPEC §10): conversions a browser never sees, stored as `server` events
 * and relayed like the pixel's. An event with the (key, event_id) the pixel already sent is that same
 * event: the store keeps the first and this one counts as received.
 *
 * Its own Fastify scope: its own body parser (any content type, 1 MiB) and its own error answers,
 * all in the endpoint's `{"errors": [...]}` shape.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Counter } from 'prom-client';
import type { Connection, CollectorContext } from '../context.js';
import { bearerToken, tokenMatches } from '../admin/auth.js';
import { clientIp } from '../ingest/client.js';
import { planDeliveries } from '../relay/plan.js';
import type { NewDelivery, NewEvent } from '../store/types.js';
import { parseConversions, type ConversionError } from './parse.js';
import { parseJson } from '../json.js';

const MAX_BODY = 1024 * 1024;

export type PlanDeliveries = (event: Pick<NewEvent, 'key' | 'action' | 'body'>, connections: Connection[]) => NewDelivery[];

const requestError = (error: string): { errors: ConversionError[] } => ({ errors: [{ index: null, error }] });

export function registerConversions(app: FastifyInstance, ctx: CollectorContext, plan: PlanDeliveries = planDeliveries): void {
  const serverToken = ctx.config.serverToken;
  // Unset token: the endpoint does not exist (404). A relay-only node answers no API (SPEC §8).
  if (!serverToken || ctx.config.role == 'relay') return;

  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string', bodyLimit: MAX_BODY }, (_request, body, done) => done(null, body));
    scope.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, _request, reply) => {
      if (err.statusCode == 413) return reply.code(413).send(requestError('body: over 1 MiB'));
      if (err.statusCode && err.statusCode < 500) return reply.code(err.statusCode).send(requestError(err.message));
      ctx.log.error('conversion request failed', { error: err.message });
      return reply.code(500).send(requestError('internal error'));
    });
    // Before the body is read: a caller without the token gets nothing parsed.
    scope.addHook('onRequest', async (request, reply) => {
      if (!tokenMatches(bearerToken(request.headers.authorization), serverToken)) {
        return reply.code(401).header('www-authenticate', 'Bearer').send(requestError('server token missing or wrong'));
      }
    });

    scope.post('/api/v1/conversion', async (request, reply) => {
      const json = parseJson(request.body);
      if (json === undefined) return reply.code(400).send(requestError('body: not JSON'));
      const userAgent = request.headers['user-agent'];
      const ip = clientIp(request.socket.remoteAddress, request.headers, ctx.config.trustProxy);
      const parsed = parseConversions(json, { ip, userAgent, now: Date.now(), newId: randomUUID });
      if (!parsed.ok) {
        count(ctx, 'spdt_ingest_rejected_total', { reason: 'conversion_invalid' });
        return reply.code(400).send({ errors: parsed.errors });
      }
      const events: NewEvent[] = parsed.events.map((e) => ({ ...e, deliveries: plan(e, ctx.config.connections) }));
      let inserted: boolean[];
      try {
        ({ inserted } = await ctx.store.insert(events));
      } catch (err) {
        ctx.log.error('conversions could not be stored', { error: (err as Error).message });
        count(ctx, 'spdt_ingest_rejected_total', { reason: 'store_unavailable' });
        return reply.code(503).send(requestError('store unavailable, try again'));
      }
      ctx.changes.emit('change'); // wakes the relay and the live streams
      count(ctx, 'spdt_events_received_total', { transport: 'server' }, events.length);
      count(ctx, 'spdt_events_stored_total', { transport: 'server' }, inserted.filter(Boolean).length);
      return { received: events.length, event_ids: events.map((e) => e.event_id) };
    });
  });
}

/** Adds to one of the ingest counters when the edge registered it (metrics.ts owns them). */
function count(ctx: CollectorContext, name: string, labels: Record<string, string>, by = 1) {
  const counter = ctx.registry.getSingleMetric(name) as Counter<string> | undefined;
  if (counter && by > 0) counter.inc(labels, by);
}

