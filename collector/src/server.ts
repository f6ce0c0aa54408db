/**
 * The collector's HTTP server (SPEC §8): the public ingest routes, the admin and server-side
 * conversion routes, and the relay worker, around one store.
 *
 * The ingest path is the hot one. It stays lean on purpose: the body is read as text whatever its
 * content type (sendBeacon sends text/plain) and parsed once with JSON.parse, checked by hand rather
 * than by a schema, and handed to the store, whose group commit shares one transaction among the
 * requests of an event-loop turn. A 204 is sent only once that commit is done.
 */
import { EventEmitter } from 'node:events';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { gzipSync } from 'node:zlib';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { registerAdmin } from './admin/routes.js';
import type { CollectorContext, Config, Logger } from './context.js';
import { registerConversions } from './conversions/routes.js';
import { ingestEndpoint, MAX_INGEST_BODY, MAX_USER_AGENT, type IngestEndpoint } from './ingest-endpoint.js';
import { clientIp, requestScheme } from './ingest/client.js';
import { deviceCookie } from './ingest/cookie.js';
import type { RequestFacts } from './ingest/event.js';
import { imageEvent, type Query } from './ingest/image.js';
import { createLogger } from './log.js';
import { createIngestMetrics, createRegistry, type IngestMetrics } from './metrics.js';
import { planDeliveries } from './relay/plan.js';
import { startRelay, type Relay, type RelayOptions } from './relay/worker.js';
import { openStore } from './store/open.js';
import type { NewDelivery, NewEvent, Store } from './store/types.js';

export { MAX_INGEST_BODY };

/** Limits against slow or hostile clients. */
export interface Limits {
  /** Whole request headers must arrive within this (slowloris). */
  headersTimeoutMs: number;
  /** The whole request, body included. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** Requests on one connection before it is closed (spreads load, bounds a single client). */
  maxRequestsPerSocket: number;
  /** Connections at once; more are refused by the socket. */
  maxConnections: number;
  /** How often Node checks the two timeouts above. */
  checkIntervalMs: number;
}

export const DEFAULT_LIMITS: Limits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 15_000,
  keepAliveTimeoutMs: 5_000,
  maxRequestsPerSocket: 10_000,
  maxConnections: 10_000,
  checkIntervalMs: 1_000,
};

/** At most this long between SIGTERM and exit: what is still in flight after it is cut. */
export const DRAIN_MS = 10_000;

export interface CollectorOptions {
  /** The store to use (the caller keeps it and closes it); default: `openStore(config)`, closed by `close()`. */
  store?: Store;
  /** The deliveries of a new event; default: one per connection relaying its key (`planDeliveries`). */
  plan?: (event: NewEvent) => NewDelivery[];
  log?: Logger;
  limits?: Partial<Limits>;
  /** Options of the relay worker; `false`: never start it (tests of the edge alone). */
  relay?: RelayOptions | false;
}

export interface Collector {
  /** Fastify app: a caller may add routes (test pages, a demo shop) before `listen()`. */
  app: FastifyInstance;
  ctx: CollectorContext;
  /** Listens on `config.host`/`config.port` (0: any free port) and starts the relay when its role allows. */
  listen(): Promise<{ port: number; url: string }>;
  /** Stops accepting, finishes what is in flight (at most `DRAIN_MS`), stops the relay, closes an own store. */
  close(): Promise<void>;
}

const GIF = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
const CORS = { 'access-control-allow-origin': '*' };
const PREFLIGHT = {
  ...CORS,
  'access-control-allow-methods': 'POST, GET, OPTIONS',
  'access-control-allow-headers': 'Content-Type',
  'access-control-max-age': '86400',
};

const NO_CONNECTION = 'no Spotify connection configured (SPDT_SPOTIFY_CONNECTION_ID and SPDT_SPOTIFY_TOKEN, or SPDT_CONFIG): ';
const WITHOUT_CONNECTION = {
  all: 'events are stored, none will be relayed',
  ingest: 'events stored by this node get no delivery, so no relay node will send them',
  relay: 'this relay node has nothing to send',
} as const;

export async function createCollector(config: Config, options: CollectorOptions = {}): Promise<Collector> {
  const log =
    options.log ?? createLogger({ secrets: [config.adminToken, config.serverToken, ...config.connections.map((c) => c.token)] });
  const ownStore = !options.store;
  const store = options.store ?? (await openStore(config));
  const registry = createRegistry();
  const changes = new EventEmitter();
  changes.setMaxListeners(0); // one listener per open live stream
  const ctx: CollectorContext = { config, store, registry, log, changes };
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const plan = options.plan ?? ((event: NewEvent) => planDeliveries(event, config.connections));

  const metrics = createIngestMetrics(registry);
  const storeDown = throttled(log, 'store write failed; answering 503 (image hits are lost)');
  const endpoint: IngestEndpoint | undefined = config.role == 'relay' ? undefined : ingestEndpoint(ctx, metrics, plan, storeDown);

  const app = Fastify({
    logger: false,
    // Each route sets its own body limit; this default is the largest any takes (SPEC §10: 1 MiB).
    bodyLimit: 1024 * 1024,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    serverFactory: (handler) => {
      const server = createServer(
        {
          headersTimeout: limits.headersTimeoutMs,
          requestTimeout: limits.requestTimeoutMs,
          keepAliveTimeout: limits.keepAliveTimeoutMs,
          connectionsCheckingInterval: limits.checkIntervalMs,
        },
        // The hot path answers its own requests before Fastify routes them (ingest-endpoint.ts).
        endpoint
          ? (req: IncomingMessage, res: ServerResponse) => endpoint.handle(req, res) || handler(req, res)
          : (handler as (req: IncomingMessage, res: ServerResponse) => void),
      );
      server.maxRequestsPerSocket = limits.maxRequestsPerSocket;
      server.maxConnections = limits.maxConnections;
      return server;
    },
  });
  // Fastify applies its own defaults to the server it is given; ours win.
  app.server.headersTimeout = limits.headersTimeoutMs;
  app.server.requestTimeout = limits.requestTimeoutMs;
  app.server.keepAliveTimeout = limits.keepAliveTimeoutMs;

  // Fastify's own 404 names the URL, and a URL may carry `?token=`: answer without echoing it.
  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ error: 'not found' }));
  app.get('/healthz', async (_request, reply) => {
    const ok = await store.healthy().catch(() => false);
    return reply.code(ok ? 200 : 503).header('cache-control', 'no-store').send({ ok });
  });
  if (config.role != 'relay') registerPublic(app, ctx, metrics, plan, storeDown);
  registerAdmin(app, ctx);
  const customPlan = options.plan;
  registerConversions(app, ctx, customPlan && ((event) => customPlan(event as NewEvent)));

  let relay: Relay | undefined;
  let closing: Promise<void> | undefined;

  return {
    app,
    ctx,
    async listen() {
      await app.listen({ port: config.port, host: config.host });
      if (options.relay !== false && config.role != 'ingest' && config.connections.length) relay = startRelay(ctx, options.relay || {});
      // Deliveries are planned at ingest from this node's connections: without one, nothing stored here is ever relayed.
      if (!config.connections.length) ctx.log.warn(NO_CONNECTION + WITHOUT_CONNECTION[config.role]);
      const address = app.server.address();
      const port = typeof address == 'object' && address ? address.port : config.port;
      const host = config.host.includes(':') ? `[${config.host}]` : config.host;
      return { port, url: `http://${host == '0.0.0.0' || host == '[::]' ? '127.0.0.1' : host}:${port}` };
    },
    close() {
      closing ??= (async () => {
        endpoint?.drain();
        const timer = setTimeout(() => app.server.closeAllConnections(), DRAIN_MS);
        try {
          await Promise.all([app.close(), relay?.stop()]);
        } finally {
          clearTimeout(timer);
          if (ownStore) await store.close();
        }
      })();
      return closing;
    },
  };
}

/** The preflights, `GET /v1/img` and `GET /ping.min.js` (`POST /v1/ingest` is answered before Fastify, ingest-endpoint.ts). */
function registerPublic(
  app: FastifyInstance,
  ctx: CollectorContext,
  metrics: IngestMetrics,
  plan: (event: NewEvent) => NewDelivery[],
  storeDown: (error: unknown) => void,
) {
  const { config, store, log, changes } = ctx;
  const received = { image: metrics.received.labels('image'), noscript: metrics.received.labels('noscript') };
  const stored = { image: metrics.stored.labels('image'), noscript: metrics.stored.labels('noscript') };
  const imageTime = metrics.duration.labels('img');

  const facts = (request: FastifyRequest): RequestFacts => {
    const ua = request.headers['user-agent'];
    return {
      received_at: Date.now(),
      ip: clientIp(request.socket.remoteAddress, request.headers, config.trustProxy),
      user_agent: ua ? ua.slice(0, MAX_USER_AGENT) : undefined,
    };
  };
  const setCookie = (request: FastifyRequest, reply: FastifyReply, uid: string | undefined) => {
    if (!config.cookieDomain) return;
    const cookie = deviceCookie(config.cookieDomain, config.cookieDays, {
      origin: request.headers.origin,
      referer: request.headers.referer,
      uid,
      scheme: requestScheme('encrypted' in request.socket, request.headers, config.trustProxy),
    });
    if (cookie) reply.header('set-cookie', cookie);
  };

  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string', bodyLimit: MAX_INGEST_BODY }, (_request, body, done) => done(null, body));
    scope.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, request, reply) => {
      if (request.routeOptions.url == '/v1/img') return reply.code(200).headers({ 'cache-control': 'no-store' }).type('image/gif').send(GIF);
      const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
      const reason = status == 413 ? 'too_large' : status == 500 ? 'internal' : 'bad_request';
      metrics.rejected.inc({ reason });
      if (status == 500) log.error('ingest request failed', { error: err.message });
      const error = status == 413 ? 'body: over 64 KiB' : status == 500 ? 'internal error' : err.message;
      return reply.code(status).headers(CORS).send({ error });
    });

    scope.options('/v1/ingest', (_request, reply) => reply.code(204).headers(PREFLIGHT).send());
    scope.options('/v1/img', (_request, reply) => reply.code(204).headers(PREFLIGHT).send());

    scope.get('/v1/img', async (request, reply) => {
      const started = performance.now();
      try {
        const event = imageEvent(request.query as Query, request.headers.referer, facts(request));
        if (event) {
          event.deliveries = plan(event);
          received[event.transport as 'image' | 'noscript'].inc();
          try {
            const { inserted } = await store.insert([event]);
            if (inserted[0]) {
              stored[event.transport as 'image' | 'noscript'].inc();
              changes.emit('change');
            }
          } catch (error) {
            metrics.imageLost.inc();
            storeDown(error);
          }
          setCookie(request, reply, event.uid);
        }
        return reply.code(200).headers({ 'cache-control': 'no-store' }).type('image/gif').send(GIF);
      } finally {
        imageTime.observe((performance.now() - started) / 1000);
      }
    });

    const tag = loadTag(log);
    scope.get('/ping.min.js', async (request, reply) => {
      if (!tag) return reply.code(404).send({ error: 'the tag is not built (npm run build)' });
      reply.headers({
        'content-type': 'text/javascript; charset=utf-8',
        'cache-control': 'public, max-age=3600',
        etag: tag.etag,
        vary: 'Accept-Encoding',
        'x-content-type-options': 'nosniff',
        ...CORS,
      });
      const match = request.headers['if-none-match'];
      if (match && match.split(',').some((tagValue) => tagValue.trim().replace(/^W\//, '') == tag.etag)) return reply.code(304).send();
      if (/\bgzip\b/.test(request.headers['accept-encoding'] ?? '')) return reply.header('content-encoding', 'gzip').send(tag.gzip);
      return reply.send(tag.raw);
    });
  });
}

interface Tag {
  raw: Buffer;
  gzip: Buffer;
  etag: string;
}

/** The built tag (`spdt-pixel/ping.min.js`), read once at start. */
function loadTag(log: Logger): Tag | undefined {
  try {
    const raw = readFileSync(createRequire(import.meta.url).resolve('spdt-pixel/ping.min.js'));
    const etag = `"${createHash('sha256').update(raw).digest('base64url').slice(0, 22)}"`;
    return { raw, gzip: gzipSync(raw, { level: 9 }), etag };
  } catch (error) {
    log.warn('the tag is not built: /ping.min.js answers 404 (run npm run build)', { error });
    return undefined;
  }
}

/** A problem that repeats (a store that is down) is logged once per minute with how often it happened. */
function throttled(log: Logger, msg: string, everyMs = 60_000) {
  let last = 0;
  let suppressed = 0;
  return (error: unknown) => {
    const now = Date.now();
    if (now - last < everyMs) {
      suppressed++;
      return;
    }
    log.error(msg, { error: error instanceof Error ? error.message : String(error), repeated: suppressed });
    last = now;
    suppressed = 0;
  };
}
