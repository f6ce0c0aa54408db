// The demo behind `npm start`: the product collector (spdt-collector) in its loopback dev mode,
// with the demo pages mounted on its Fastify app under /demo/. The collector itself serves no demo
// file (SPEC §8); its own `/` is the live view.
//   npm run build && node examples/build.mjs   # first: the tag, the collector, the SPA bundle
//   node examples/serve.mjs                    # PORT (default 8080); data in ./.data
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import { createCollector, createLogger, loadConfig } from 'spdt-collector';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

// Only what the demo needs: loopback (so the live view needs no token), no Spotify connection.
const config = loadConfig({ PORT: process.env.PORT || '8080', HOST: '127.0.0.1', SPDT_DATA_DIR: path.join(ROOT, '.data') });
const collector = await createCollector(config, { log: createLogger({ level: 'warn' }) });
const { app } = collector;

// The landing page shows the live view in an iframe; the collector forbids framing it at all
// (frame-ancestors 'none', against clickjacking its replay button). The demo lets its own origin.
app.addHook('onSend', async (_request, reply, payload) => {
  const csp = reply.getHeader('content-security-policy');
  if (typeof csp == 'string') reply.header('content-security-policy', csp.replace("frame-ancestors 'none'", "frame-ancestors 'self'"));
  return payload;
});

// The pages and their assets; not the build scripts or the READMEs next to them.
await app.register(fastifyStatic, {
  root: path.join(ROOT, 'examples'),
  prefix: '/demo/',
  redirect: true,
  allowedPath: (pathName) => !/\.(mjs|mts|md)$/.test(pathName),
});
app.get('/demo', (_request, reply) => reply.redirect('/demo/'));

const { port } = await collector.listen();
const url = `http://localhost:${port}`;
console.log(`spdt demo: open ${url}/demo/ (shop ${url}/demo/shop/, SPA ${url}/demo/spa/, live view ${url}/); Ctrl-C stops`);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => collector.close().then(() => process.exit(0), () => process.exit(1)));
}
