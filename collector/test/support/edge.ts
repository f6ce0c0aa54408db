/**
 * A real collector on port 0 with a real SQLite store in a fresh temporary directory, for the
 * HTTP tests of the edge. Logs are kept in memory (and checked for leaks by some tests).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { createCollector, type Collector, type CollectorOptions } from '../../src/server.js';

export interface Edge {
  url: string;
  collector: Collector;
  dataDir: string;
  logs: string[];
  close(): Promise<void>;
}

export async function startEdge(env: Record<string, string> = {}, options: CollectorOptions = {}): Promise<Edge> {
  const dataDir = mkdtempSync(join(tmpdir(), 'spdt-edge-'));
  const logs: string[] = [];
  const config = loadConfig({ PORT: '0', SPDT_DATA_DIR: dataDir, ...env });
  const collector = await createCollector(config, { log: createLogger({ write: (l) => logs.push(l) }), relay: false, ...options });
  const { url } = await collector.listen();
  return {
    url,
    collector,
    dataDir,
    logs,
    async close() {
      await collector.close().catch(() => undefined);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export const UID = 'e80cb68aa08941c5937911daee4144ea';

let serial = 0;
/** A wire-protocol body (SPEC §6) of `n` events with unique ids, or with the given ids. */
export function wireBody(ids: string[] | number = 1, item: Record<string, unknown> = {}): string {
  const eventIds = typeof ids == 'number' ? Array.from({ length: ids }, () => `ev-${process.pid}-${serial++}`) : ids;
  return JSON.stringify({
    v: 1,
    sent_at: Date.now(),
    batch: [
      {
        pid: 'key-1',
        uid: UID,
        sid: 'sid-1',
        ...item,
        events: eventIds.map((event_id) => ({
          action: 'purchase',
          event_id,
          time: Date.now(),
          body: { url: 'https://shop.example/thanks', value: 79.99, currency: 'USD', order_id: 'SP-1' },
        })),
      },
    ],
  });
}

export const post = (url: string, body: string, headers: Record<string, string> = {}) =>
  fetch(`${url}/v1/ingest`, { method: 'POST', body, headers: { 'content-type': 'text/plain;charset=UTF-8', ...headers } });
