/**
 * The admin part of `/metrics` (SPEC §8): deliveries by destination, connection and state, read
 * from the store at each scrape (so every node shows the same numbers), and the open live streams.
 */
import { Gauge, type Registry } from 'prom-client';
import type { CollectorContext } from '../context.js';
import type { DeliveryState } from '../store/types.js';

const STATES: readonly DeliveryState[] = ['pending', 'delivered', 'dead', 'skipped'];
const DELIVERIES = 'spdt_deliveries';
const STREAMS = 'spdt_live_streams';

/** Registers the gauges on `ctx.registry`, replacing those of an earlier context on the same registry. */
export function registerAdminMetrics(ctx: Pick<CollectorContext, 'registry' | 'store' | 'config' | 'log'>, openStreams: () => number): void {
  const registers: Registry[] = [ctx.registry];
  for (const name of [DELIVERIES, STREAMS]) ctx.registry.removeSingleMetric(name);

  new Gauge({
    name: DELIVERIES,
    help: 'Deliveries in the store by destination, connection and state (read at each scrape)',
    labelNames: ['destination', 'connection_id', 'state'],
    registers,
    async collect() {
      this.reset();
      // Every configured connection shows every state, 0 included, so an alert on dead > 0 has a series.
      for (const { connection_id } of ctx.config.connections) {
        for (const state of STATES) this.set({ destination: 'spotify', connection_id, state }, 0);
      }
      try {
        for (const { connection_id, state, count } of await ctx.store.deliveryCounts()) {
          this.set({ destination: 'spotify', connection_id, state }, count);
        }
      } catch (err) {
        ctx.log.warn('metrics could not count deliveries', { error: (err as Error).message });
      }
    },
  });

  new Gauge({
    name: STREAMS,
    help: 'Live view streams (/api/stream) open on this node',
    registers,
    collect() {
      this.set(openStreams());
    },
  });
}
