// Reference collector for spdt-pixel (SPEC §6 wire protocol, §8 collector).
//
// Zero dependencies: Node 20 built-ins only. Run it with
//   node examples/collector/server.mjs        (PORT, HOST and SPDT_DATA_DIR are read from the env)
// or import { startServer } from it (the tests do).
//
// Endpoints (details in README.md next to this file):
//   POST /v1/ingest      batches sent by navigator.sendBeacon
//   GET  /v1/img         image fallback and <noscript> pixel: always a 1x1 GIF
//   GET  /api/events     stored events (?key= filters); DELETE clears the store
//   GET  /api/stream     server-sent events, one per newly stored event
//   GET  /               the live "pixel helper" page
//   GET  /dist/*, /ping.min.js, /examples/*   static files

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MAX_BODY = 64 * 1024; // SPEC §6: a request body never exceeds 64 KiB
const HEX32 = /^[0-9a-f]{32}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const RAW_PII = new Set(['email', 'phone_number']);
// 1x1 transparent GIF89a.
const GIF = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.gif': 'image/gif',
};
// Only the ingestion endpoints are cross-origin: any site may send events, but no other
// site may read or clear the store through /api/*.
const CORS = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
  'Access-Control-Max-Age': '86400',
};

// The live page has no inline script or style, so it runs under this strict policy.
const LIVE_CSP = "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// ---------------------------------------------------------------------------
// Storage: an append-only JSON-lines file plus in-memory copies (see README for why).

function openStore(dataDir) {
  fs.mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, 'events.jsonl');
  const events = []; // oldest first
  const seen = new Set(); // dedup index of (key, event_id)
  const idOf = (e) => JSON.stringify([e.key, e.event_id]);

  if (fs.existsSync(file)) {
    let data = fs.readFileSync(file);
    // A crash in the middle of a write leaves a partial last line. Cut it off, or the next
    // append would be glued to it and that good event would be lost too.
    const end = data.lastIndexOf(0x0a) + 1;
    if (end < data.length) {
      fs.truncateSync(file, end);
      data = data.subarray(0, end);
    }
    for (const line of data.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      try {
        const e = JSON.parse(line);
        if (!seen.has(idOf(e))) events.push(e);
        seen.add(idOf(e));
      } catch {
        console.error(`[collector] skipping unreadable line in ${file}`);
      }
    }
  }

  return {
    events,
    /** Stores the records not seen before (one synchronous write); returns the ones stored. */
    add(records) {
      const fresh = [];
      for (const r of records) {
        if (seen.has(idOf(r))) continue;
        seen.add(idOf(r));
        fresh.push(r);
      }
      if (fresh.length === 0) return fresh;
      // Synchronous, so the events are in the file before the response goes out: a restart
      // right after a 204 still knows them (and still drops a re-sent duplicate).
      try {
        fs.appendFileSync(file, fresh.map((r) => JSON.stringify(r) + '\n').join(''));
      } catch (err) {
        for (const r of fresh) seen.delete(idOf(r));
        throw err;
      }
      events.push(...fresh);
      return fresh;
    },
    clear() {
      fs.writeFileSync(file, '');
      events.length = 0;
      seen.clear();
    },
  };
}

// ---------------------------------------------------------------------------
// Validation of POST /v1/ingest bodies (SPEC §6). Each check returns a reason or nothing.

const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
const isFiniteNumber = (v) => typeof v === 'number' && Number.isFinite(v);

/** Finds a raw `email` / `phone_number` key anywhere in the payload (iterative: input may nest deeply). */
function findRawPii(payload) {
  const stack = [[payload, 'body']];
  while (stack.length) {
    const [value, where] = stack.pop();
    if (typeof value !== 'object' || value === null) continue;
    for (const [k, v] of Object.entries(value)) {
      const at = Array.isArray(value) ? `${where}[${k}]` : `${where}.${k}`;
      if (RAW_PII.has(k)) return at;
      stack.push([v, at]);
    }
  }
  return null;
}

function checkHashed(obj, where) {
  for (const k of ['hashed_email', 'hashed_phone_number']) {
    if (k in obj && !(typeof obj[k] === 'string' && HEX64.test(obj[k]))) {
      return `${where}.${k} must be 64 lower-case hex characters (a SHA-256)`;
    }
  }
}

function checkEvent(e, at) {
  if (!isObject(e)) return `${at} must be an object`;
  if (typeof e.action !== 'string' || e.action === '') return `${at}.action must be a non-empty string`;
  if (typeof e.event_id !== 'string' || e.event_id === '' || e.event_id.length > 128) {
    return `${at}.event_id must be a non-empty string of at most 128 characters`;
  }
  if (!isFiniteNumber(e.time)) return `${at}.time must be a number (epoch milliseconds)`;
  if (!isObject(e.body)) return `${at}.body must be an object`;
  return checkHashed(e.body, `${at}.body`);
}

function checkItem(item, at) {
  if (!isObject(item)) return `${at} must be an object`;
  if (typeof item.pid !== 'string' || item.pid === '') return `${at}.pid must be a non-empty string`;
  for (const k of ['uid', 'sid']) {
    if (k in item && !(typeof item[k] === 'string' && HEX32.test(item[k]))) {
      return `${at}.${k} must be 32 lower-case hex characters`;
    }
  }
  if ('cid' in item && typeof item.cid !== 'string') return `${at}.cid must be a string`;
  if ('alias' in item) {
    if (!isObject(item.alias)) return `${at}.alias must be an object`;
    const bad = checkHashed(item.alias, `${at}.alias`);
    if (bad) return bad;
  }
  if ('opt_out_targeting' in item && item.opt_out_targeting !== true) {
    return `${at}.opt_out_targeting must be true when present`;
  }
  if (!Array.isArray(item.events) || item.events.length === 0) return `${at}.events must be a non-empty array`;
  for (let i = 0; i < item.events.length; i++) {
    const bad = checkEvent(item.events[i], `${at}.events[${i}]`);
    if (bad) return bad;
  }
}

function validateIngest(payload) {
  if (!isObject(payload)) return 'body must be a JSON object';
  const pii = findRawPii(payload);
  if (pii) return `raw PII: ${pii} must not be sent; send its SHA-256 as hashed_*`;
  if (payload.v !== 1) return 'v must be 1';
  if (!isFiniteNumber(payload.sent_at)) return 'sent_at must be a number (epoch milliseconds)';
  if (!Array.isArray(payload.batch) || payload.batch.length === 0) return 'batch must be a non-empty array';
  for (let i = 0; i < payload.batch.length; i++) {
    const bad = checkItem(payload.batch[i], `batch[${i}]`);
    if (bad) return bad;
  }
}

// ---------------------------------------------------------------------------
// Turning requests into stored records:
// { key, action, event_id, time, received_at, uid, sid, cid, alias, opt_out_targeting, transport, ns, body }

function recordsFromBatch(payload, received_at) {
  return payload.batch.flatMap((item) =>
    item.events.map((e) => ({
      key: item.pid,
      action: e.action,
      event_id: e.event_id,
      time: e.time,
      received_at,
      uid: item.uid ?? null,
      sid: item.sid ?? null,
      cid: item.cid ?? null,
      alias: item.alias ?? null,
      opt_out_targeting: item.opt_out_targeting === true,
      transport: 'beacon',
      ns: false,
      body: e.body,
    })),
  );
}

/** Removes raw email / phone_number keys at any depth, and hashed_* values that are not hashes. */
function scrub(value) {
  if (Array.isArray(value)) return value.map(scrub);
  if (!isObject(value)) return value;
  const out = {};
  for (const [k, v] of Object.entries(value)) {
    if (RAW_PII.has(k) || k === '__proto__') continue;
    if ((k === 'hashed_email' || k === 'hashed_phone_number') && !(typeof v === 'string' && HEX64.test(v))) continue;
    out[k] = scrub(v);
  }
  return out;
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

// Query parameters of /v1/img that are not event props.
const IMG_FIELDS = new Set(['key', 'a', 'eid', 't', 'uid', 'sid', 'cid', 'url', 'ref', 'alias', 'opt_out_targeting', 'ns']);

/** Builds the record for an image hit, or null when `key` or `a` is missing. */
function recordFromImage(q, received_at) {
  const key = q.get('key');
  const action = q.get('a');
  if (!key || !action) return null;

  const body = {};
  if (q.get('url')) body.url = q.get('url');
  if (q.get('ref')) body.referrer = q.get('ref');
  for (const [k, v] of q) {
    if (IMG_FIELDS.has(k) || k in body) continue; // first occurrence wins
    if (k === 'trunc') body.trunc = 1;
    else if ((k === 'value' || k === 'quantity') && v.trim() !== '' && Number.isFinite(Number(v))) body[k] = Number(v);
    else if (k === 'line_items') body[k] = parseJson(v) ?? v;
    else body[k] = v;
  }
  const alias = parseJson(q.get('alias') ?? '');
  const eid = q.get('eid');
  const t = Number(q.get('t'));
  return {
    key,
    action: action === 'init' ? 'view' : action, // Spotify's image pixel calls a page view "init"
    event_id: eid && eid.length <= 128 ? eid : randomUUID(), // noscript hits carry no id
    time: q.get('t') && Number.isFinite(t) ? t : received_at,
    received_at,
    uid: HEX32.test(q.get('uid') ?? '') ? q.get('uid') : null,
    sid: HEX32.test(q.get('sid') ?? '') ? q.get('sid') : null,
    cid: q.get('cid') || null,
    alias: isObject(alias) ? scrub(alias) : null,
    opt_out_targeting: q.get('opt_out_targeting') === '1',
    transport: 'image',
    ns: q.get('ns') === '1',
    body: scrub(body), // drops raw email / phone_number params: never stored
  };
}

// ---------------------------------------------------------------------------
// HTTP helpers

function sendJson(res, status, value, headers = {}) {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', ...headers });
  res.end(JSON.stringify(value));
}

/** Reads the request body, failing with 413 as soon as it goes over `limit` bytes. */
function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    if (Number(req.headers['content-length']) > limit) return reject(new HttpError(413, 'body over 64 KiB'));
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data'); // stop buffering; the connection is closed after the 413
        req.pause();
        reject(new HttpError(413, 'body over 64 KiB'));
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
    req.on('close', () => reject(new HttpError(400, 'request aborted'))); // no-op once settled
  });
}

/** Serves `rel` (already URL-decoded) from inside `baseDir`; false when there is no such file. */
function serveFile(req, res, baseDir, rel, headers = {}) {
  let file = path.resolve(baseDir, '.' + path.sep + rel);
  if (!file.startsWith(baseDir + path.sep)) throw new HttpError(400, 'bad path'); // belt and braces
  let stat = fs.statSync(file, { throwIfNoEntry: false });
  if (stat?.isDirectory()) {
    file = path.join(file, 'index.html');
    stat = fs.statSync(file, { throwIfNoEntry: false });
  }
  if (!stat?.isFile()) return false;
  res.writeHead(200, {
    'Content-Type': TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
    'Content-Length': stat.size,
    'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff',
    ...headers,
  });
  if (req.method === 'HEAD') res.end();
  else fs.createReadStream(file).on('error', () => res.destroy()).pipe(res);
  return true;
}

// ---------------------------------------------------------------------------

export async function startServer({
  port = 8080,
  host = '127.0.0.1',
  root = path.resolve(HERE, '..', '..'),
  dataDir = process.env.SPDT_DATA_DIR || path.join(root, '.data'),
  // Extra routes (tests mount their pages here): (req, res, path) => true when it answered.
  handler = () => false,
} = {}) {
  root = path.resolve(root);
  const store = openStore(path.resolve(dataDir));
  const streams = new Set(); // open /api/stream responses

  function publish(records) {
    for (const r of records) {
      for (const res of streams) res.write(`data: ${JSON.stringify(r)}\n\n`);
    }
  }

  async function ingest(req, res) {
    let payload;
    try {
      payload = JSON.parse(await readBody(req, MAX_BODY));
    } catch (err) {
      if (err instanceof HttpError) {
        // The rest of the body is never read: close the connection instead of draining it.
        return sendJson(res, err.status, { error: err.message }, { ...CORS, Connection: 'close' });
      }
      return sendJson(res, 400, { error: `malformed JSON: ${err.message}` }, CORS);
    }
    const reason = validateIngest(payload);
    if (reason) return sendJson(res, 400, { error: reason }, CORS);
    publish(store.add(recordsFromBatch(payload, Date.now())));
    res.writeHead(204, CORS).end();
  }

  function image(req, res, query) {
    try {
      const record = recordFromImage(query, Date.now());
      if (record) publish(store.add([record]));
    } catch (err) {
      console.error(`[collector] /v1/img: ${err.message}`); // still answer with the GIF
    }
    res.writeHead(200, {
      'Content-Type': 'image/gif',
      'Content-Length': GIF.length,
      'Cache-Control': 'no-store',
      ...CORS,
    });
    res.end(req.method === 'HEAD' ? undefined : GIF);
  }

  function stream(req, res) {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
    res.write(': connected\n\n'); // sends the headers now, so the client knows it is subscribed
    streams.add(res);
    res.on('close', () => streams.delete(res));
  }

  async function handle(req, res) {
    const { method } = req;
    const url = new URL(req.url, 'http://collector.invalid'); // for the query string
    // Route on the path as sent, decoded. A ".." segment (also written %2e%2e, or hidden behind
    // %2f / %5c) is refused outright rather than resolved; serveFile checks the result again.
    let p;
    try {
      p = decodeURIComponent(req.url.split('?')[0]);
    } catch {
      throw new HttpError(400, 'bad path encoding');
    }
    if (p.includes('\0') || p.split(/[\\/]/).includes('..')) throw new HttpError(400, 'bad path');
    const read = method === 'GET' || method === 'HEAD';

    if (method === 'OPTIONS' && p.startsWith('/v1/')) {
      // Preflight: permissive, so fetch()/XHR senders work too (sendBeacon with a string needs none).
      const asked = req.headers['access-control-request-headers'];
      return res.writeHead(204, { ...CORS, 'Access-Control-Allow-Headers': asked || 'Content-Type' }).end();
    }
    if (p === '/v1/ingest' && method === 'POST') return ingest(req, res);
    if (p === '/v1/img' && read) return image(req, res, url.searchParams);
    if (p === '/api/events' && read) {
      const key = url.searchParams.get('key');
      return sendJson(res, 200, key === null ? store.events : store.events.filter((e) => e.key === key));
    }
    if (p === '/api/events' && method === 'DELETE') {
      store.clear();
      for (const s of streams) s.write('event: clear\ndata: {}\n\n'); // lets the live page empty its list
      return res.writeHead(204).end();
    }
    if (p === '/api/stream' && method === 'GET') return stream(req, res);
    if (read) {
      // `/` is the demo (shop and live view side by side); the live page comes from this
      // directory, whatever `root` is.
      if (p === '/' && serveFile(req, res, path.join(root, 'examples'), 'index.html')) return;
      const page = { '/live': 'live.html', '/live.js': 'live.js', '/live.css': 'live.css' }[p];
      if (page && serveFile(req, res, HERE, page, { 'Content-Security-Policy': LIVE_CSP })) return;
      if (p === '/ping.min.js' && serveFile(req, res, path.join(root, 'dist'), 'ping.min.js')) return;
      for (const dir of ['dist', 'examples']) {
        const prefix = `/${dir}/`;
        if (p.startsWith(prefix) && serveFile(req, res, path.join(root, dir), p.slice(prefix.length))) return;
      }
    }
    if (await handler(req, res, p)) return;
    sendJson(res, 404, { error: 'not found' });
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (!(err instanceof HttpError)) console.error(`[collector] ${req.method} ${req.url}: ${err.stack || err}`);
      if (res.headersSent) return res.destroy();
      sendJson(res, err.status ?? 500, { error: err.status ? err.message : 'internal error' });
    });
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const actual = server.address().port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${actual}/`,
    port: actual,
    close() {
      for (const res of streams) res.end();
      streams.clear();
      return new Promise((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections(); // idle keep-alive sockets would otherwise hold close() open
      });
    },
  };
}

// Run directly: node examples/collector/server.mjs
const isMain = (() => {
  try {
    return fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false; // no script path (node -e, REPL)
  }
})();
if (isMain) {
  const server = await startServer({ port: Number(process.env.PORT || 8080), host: process.env.HOST || '127.0.0.1' });
  console.log(`spdt demo: http://localhost:${server.port}/`);
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => server.close().then(() => process.exit(0)));
}
