/**
 * The real collector (`createCollector`, relay off) over HTTP on 127.0.0.1, on the real SQLite store
 * in a temporary directory, with a logger that keeps every line (so tests can search it for tokens).
 *
 * `pollMs` instead builds a bare app with only the admin and conversion routes and that stream poll
 * interval: the one way to show that a stream is woken by the change signal and not by its poll.
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { Registry } from 'prom-client';
import { registerAdmin } from '../../src/admin/routes.js';
import type { CollectorContext, Config, Connection, Logger } from '../../src/context.js';
import { registerConversions } from '../../src/conversions/routes.js';
import { planDeliveries } from '../../src/relay/plan.js';
import { createCollector } from '../../src/server.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { NewEvent } from '../../src/store/types.js';

export const KEY = '5a1c965e567a45f7832cc5ba7a37faf7';
export const UID = 'e80cb68aa08941c5937911daee4144ea';

export interface AdminApp {
  url: string;
  dir: string;
  ctx: CollectorContext;
  logs: string[];
  /** A pixel (beacon) event with its deliveries planned on the app's connections. */
  event(id: string, over?: Partial<NewEvent>): NewEvent;
  close(): Promise<void>;
}

export interface AdminAppOptions {
  adminToken?: string;
  serverToken?: string;
  connections?: Connection[];
  pollMs?: number;
  /** Where the collector listens (default 127.0.0.1). */
  host?: string;
  role?: Config['role'];
}

export const connection = (id = 'conn-1'): Connection => ({ connection_id: id, token: 'capi-token-' + id, custom: {}, url: 'http://127.0.0.1:9/' });

export async function startAdminApp(options: AdminAppOptions = {}): Promise<AdminApp> {
  const dir = mkdtempSync(join(tmpdir(), 'spdt-admin-'));
  const config: Config = {
    port: 0,
    host: options.host ?? '127.0.0.1',
    dataDir: dir,
    adminToken: options.adminToken,
    serverToken: options.serverToken,
    trustProxy: false,
    cookieDays: 365,
    role: options.role ?? 'all',
    connections: options.connections ?? [connection()],
    relay: { batch: 50, retryMs: 1000, maxAgeSeconds: 86_400 },
  };
  const logs: string[] = [];
  const line = (level: string) => (msg: string, fields?: Record<string, unknown>) => void logs.push(JSON.stringify({ level, msg, ...fields }));
  const log: Logger = { info: line('info'), warn: line('warn'), error: line('error') };
  let ctx: CollectorContext;
  let url: string;
  let stop: () => Promise<void>;
  if (options.pollMs === undefined) {
    const collector = await createCollector(config, { log, relay: false });
    ({ url } = await collector.listen());
    ctx = collector.ctx;
    stop = () => collector.close();
  } else {
    const store = openSqliteStore(dir);
    ctx = { config, store, registry: new Registry(), log, changes: new EventEmitter() };
    const app = Fastify();
    registerAdmin(app, ctx, { stream: { pollMs: options.pollMs, heartbeatMs: 200 } });
    registerConversions(app, ctx);
    await app.listen({ host: config.host, port: 0 });
    url = `http://${config.host}:${(app.server.address() as { port: number }).port}`;
    stop = async () => {
      await app.close();
      await store.close();
    };
  }

  return {
    url,
    dir,
    ctx,
    logs,
    event(id, over = {}) {
      const now = Date.now();
      const event: NewEvent = {
        key: KEY,
        action: 'purchase',
        event_id: id,
        time: now - 500,
        received_at: now,
        uid: UID,
        transport: 'beacon',
        action_source: 'WEB',
        ip: '203.0.113.7',
        user_agent: 'Mozilla/5.0 (test)',
        body: { url: 'https://shop.example/thanks', value: 79.99, currency: 'USD' },
        problems: [],
        deliveries: [],
        ...over,
      };
      if (!over.deliveries) event.deliveries = planDeliveries(event, config.connections);
      return event;
    },
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A live `/api/stream` reader: each `data:` line parsed, waited for by predicate. */
export interface StreamReader {
  response: IncomingMessage;
  messages: Array<{ id?: string; data: Record<string, unknown> }>;
  next(predicate: (data: Record<string, any>) => boolean, timeoutMs?: number): Promise<Record<string, any>>;
  close(): void;
}

export function openStream(url: string, headers: Record<string, string> = {}): Promise<StreamReader> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers: { accept: 'text/event-stream', ...headers } }, (response) => {
      const messages: StreamReader['messages'] = [];
      const waiters: Array<() => void> = [];
      let buffer = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        buffer += chunk;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = block.split('\n');
          const data = fields.filter((f) => f.startsWith('data: ')).map((f) => f.slice(6));
          const id = fields.find((f) => f.startsWith('id: '))?.slice(4);
          if (data.length) messages.push({ id, data: JSON.parse(data.join('\n')) });
        }
        waiters.splice(0).forEach((wake) => wake());
      });
      resolve({
        response,
        messages,
        next(predicate, timeoutMs = 5000) {
          return new Promise((done, fail) => {
            const timer = setTimeout(() => fail(new Error('no matching stream message within ' + timeoutMs + ' ms')), timeoutMs);
            const check = () => {
              const found = messages.find((m) => predicate(m.data));
              if (found) {
                clearTimeout(timer);
                done(found.data);
              } else waiters.push(check);
            };
            check();
          });
        },
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
    req.end();
  });
}
