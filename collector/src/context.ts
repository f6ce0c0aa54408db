/**
 * What every part of the collector is handed: its configuration, the store, the metrics registry,
 * the logger and the change signal. `config.ts` builds `Config` from the environment and
 * `SPDT_CONFIG`; `server.ts` builds the context and passes it to each route plugin.
 */
import type { EventEmitter } from 'node:events';
import type { Registry } from 'prom-client';
import type { Store } from './store/types.js';

export type Role = 'ingest' | 'relay' | 'all';

/** One Spotify Conversions API connection (SPEC §9). */
export interface Connection {
  connection_id: string;
  /** Never logged, returned or stored in an error. */
  token: string;
  /** Pixel keys relayed on this connection; undefined: every key. */
  keys?: string[];
  /** Named `custom` events → `CUSTOM_EVENT_N`. */
  custom: Record<string, string>;
  url: string;
}

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl?: string;
  adminToken?: string;
  serverToken?: string;
  trustProxy: boolean;
  cookieDomain?: string;
  cookieDays: number;
  role: Role;
  connections: Connection[];
  /** `leaseMs`: how long a claimed delivery is a worker's (`SPDT_RELAY_LEASE_MS`, 12–60 s; unset: 60 s). */
  relay: { batch: number; retryMs: number; maxAgeSeconds: number; leaseMs?: number };
}

/** One JSON line per problem; never a token, never an identifier (SPEC §8). */
export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface CollectorContext {
  config: Config;
  store: Store;
  registry: Registry;
  log: Logger;
  /**
   * Emits 'change' when this node stored an event or changed a delivery: wakes the live stream
   * and the relay at once instead of at their next poll (other nodes are seen by polling the store).
   */
  changes: EventEmitter;
}
