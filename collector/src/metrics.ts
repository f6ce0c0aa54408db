/**
 * The shared Prometheus registry and the ingest metrics (SPEC §8 `/metrics`). Other parts add
 * their own metrics to `ctx.registry` in their own modules; the admin routes serve it.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface IngestMetrics {
  /** Events that arrived in an accepted request, by transport (duplicates included). */
  received: Counter<'transport'>;
  /** Events newly stored, by transport (a duplicate is not stored twice). */
  stored: Counter<'transport'>;
  /** Requests refused, by reason (`malformed_json`, `shape`, `pii`, `too_large`, `store_unavailable`, …). */
  rejected: Counter<'reason'>;
  /** Image and noscript hits that could not be stored (an image request is never retried). */
  imageLost: Counter<string>;
  /** Latency of the public ingest routes, seconds. */
  duration: Histogram<'route'>;
}

export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'spdt_' });
  return registry;
}

export function createIngestMetrics(registry: Registry): IngestMetrics {
  const registers = [registry];
  return {
    received: new Counter({ name: 'spdt_events_received_total', help: 'Events received in accepted requests, by transport', labelNames: ['transport'], registers }),
    stored: new Counter({ name: 'spdt_events_stored_total', help: 'Events stored for the first time, by transport', labelNames: ['transport'], registers }),
    rejected: new Counter({ name: 'spdt_ingest_rejected_total', help: 'Ingest requests refused, by reason', labelNames: ['reason'], registers }),
    imageLost: new Counter({ name: 'spdt_image_hits_lost_total', help: 'Image and noscript hits lost because the store could not be written', registers }),
    duration: new Histogram({
      name: 'spdt_ingest_request_duration_seconds',
      help: 'Latency of /v1/ingest and /v1/img, from request to answer',
      labelNames: ['route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
  };
}
