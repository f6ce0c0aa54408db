/** The relay's metrics on the shared registry (SPEC §8 `/metrics`): what it sent, how fast, what became of it. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface RelayMetrics {
  /** Requests to Spotify by connection and answer class (`2xx`, `4xx`, `5xx`, `network`, `timeout`). */
  requests: Counter<'connection_id' | 'status_class'>;
  latency: Histogram<'connection_id'>;
  /** What became of each delivery tried: `delivered`, `retry`, `dead`. */
  outcomes: Counter<'connection_id' | 'outcome'>;
  /** 1 while Spotify refuses the connection's token (401/403), else 0. */
  failing: Gauge<'connection_id'>;
}

/** Registers the relay's metrics once per registry (a second relay on the same registry shares them). */
export function relayMetrics(registry: Registry): RelayMetrics {
  const existing = registry.getSingleMetric('spdt_relay_requests_total');
  if (existing) return cache.get(registry)!;
  const registers = [registry];
  const metrics: RelayMetrics = {
    requests: new Counter({
      name: 'spdt_relay_requests_total',
      help: 'Requests to Spotify’s Conversions API by connection and answer class',
      labelNames: ['connection_id', 'status_class'],
      registers,
    }),
    latency: new Histogram({
      name: 'spdt_relay_request_duration_seconds',
      help: 'Time from sending a request to Spotify to its answer (or giving up on one)',
      labelNames: ['connection_id'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    outcomes: new Counter({
      name: 'spdt_relay_delivery_outcomes_total',
      help: 'What became of each delivery tried: delivered, retry (pending again) or dead',
      labelNames: ['connection_id', 'outcome'],
      registers,
    }),
    failing: new Gauge({
      name: 'spdt_relay_connection_failing',
      help: '1 while Spotify refuses the connection’s token (401/403): fix the token; its deliveries wait',
      labelNames: ['connection_id'],
      registers,
    }),
  };
  cache.set(registry, metrics);
  return metrics;
}

const cache = new WeakMap<Registry, RelayMetrics>();

/** The label of an answer: its status class, or why there was none. */
export function statusClass(answer: { status: number } | { error: string; timedOut?: boolean }): string {
  if ('status' in answer) return `${Math.floor(answer.status / 100)}xx`;
  return answer.timedOut ? 'timeout' : 'network';
}
