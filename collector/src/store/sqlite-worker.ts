/**
 * The SQLite store's thread: runs each operation `sqlite.ts` posts on its own connection, in the
 * order posted, and posts back the result or the error. Its transactions and their commits then
 * take no time from the event loop that answers HTTP.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openSqliteCore, type CoreSettings, type SqliteCore } from './sqlite-core.js';

export type Operation = 'insertBatch' | 'events' | 'changes' | 'cursor' | 'claim' | 'record' | 'replay' | 'deliveries' | 'deliveryCounts' | 'healthy' | 'close';
export interface Request {
  id: number;
  op: Operation;
  args: unknown[];
}
export type Reply = { id: number; value: unknown } | { id: number; error: { message: string; code?: string } };

const { file, settings } = workerData as { file: string; settings: CoreSettings };
const core: SqliteCore = openSqliteCore(file, settings);
const port = parentPort!;

port.on('message', ({ id, op, args }: Request) => {
  let reply: Reply;
  try {
    reply = { id, value: Reflect.apply(core[op], core, args) as unknown };
  } catch (error) {
    const { message, code } = error as { message: string; code?: string };
    reply = { id, error: { message: String(message), code } };
  }
  port.postMessage(reply);
});
