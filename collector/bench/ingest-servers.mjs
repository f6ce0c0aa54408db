/**
 * The two servers the ingest benchmark compares, each run in its own child process so the load
 * generator never shares their event loop:
 *   node ingest-servers.mjs floor      a bare Node http server: reads the body, answers 204
 *   node ingest-servers.mjs collector  the real collector (dist/), real SQLite store in SPDT_DATA_DIR
 *                                      (or the PostgreSQL of SPDT_BENCH_DATABASE_URL)
 * Each sends {port} to its parent over IPC once listening, and answers {rss} to 'memory'.
 */
import { createServer } from 'node:http';

const kind = process.argv[2];
let port;
let close = async () => {};

if (kind == 'floor') {
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      Buffer.concat(chunks).toString('utf8');
      res.writeHead(204, { 'access-control-allow-origin': '*' }).end();
    });
  });
  server.keepAliveTimeout = 5000;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = server.address().port;
  close = () => new Promise((resolve) => server.close(resolve));
} else {
  const { createCollector, loadConfig, createLogger } = await import('../dist/index.js');
  // SPDT_BENCH_DATABASE_URL: the same node on PostgreSQL instead (bench/scale.mjs).
  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', SPDT_DATA_DIR: process.env.SPDT_DATA_DIR, DATABASE_URL: process.env.SPDT_BENCH_DATABASE_URL, SPDT_ROLE: 'ingest' });
  const collector = await createCollector(config, { log: createLogger({ level: 'warn' }) });
  ({ port } = await collector.listen());
  close = () => collector.close();
}

process.on('message', async (message) => {
  if (message == 'memory') {
    globalThis.gc?.();
    process.send({ rss: process.memoryUsage().rss, heapUsed: process.memoryUsage().heapUsed });
  } else if (message == 'close') {
    await close();
    process.send({ closed: true });
    process.exit(0);
  }
});
process.send({ port });
