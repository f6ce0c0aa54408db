/**
 * The collector's public API, for embedding it in another Node program.
 *
 * ```js
 * import { createCollector, loadConfig } from 'spdt-collector';
 * const collector = await createCollector(loadConfig({ PORT: '0', SPDT_DATA_DIR: './.data' }));
 * collector.app.get('/shop', async (_req, reply) => reply.type('text/html').send(page)); // before listen()
 * const { url } = await collector.listen();
 * // …
 * await collector.close();
 * ```
 *
 * `app` is the Fastify instance: routes added to it before `listen()` are served next to the
 * collector's own (the e2e harness mounts its test pages, `npm start` its demo shop). The
 * collector itself serves no example or demo file.
 */
export { createCollector, DEFAULT_LIMITS, DRAIN_MS, MAX_INGEST_BODY, type Collector, type CollectorOptions, type Limits } from './server.js';
export { ConfigError, DEFAULT_SPOTIFY_URL, loadConfig } from './config.js';
export { createLogger, type LoggerOptions } from './log.js';
export { openStore } from './store/open.js';
export type { CollectorContext, Config, Connection, Logger, Role } from './context.js';
export type * from './store/types.js';
