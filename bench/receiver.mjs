// The bench's one server on 127.0.0.1: the product collector (spdt-collector, through its public
// API, on SQLite in a temporary directory) with the bench's routes mounted on its Fastify app under
// /r/*. Every measurement is a "run" with its own prefix `/r/<id>/`, under which the pages, the
// trackers' files and every tracker's receiving endpoint live, so each request is counted for the
// run that made it:
//   /r/<id>/page.html, next.html          the pages
//   /r/<id>/<file>                         tracker files (pages.mjs), counted as served
//   /r/<id>/v1/ingest, /v1/img             ours: forwarded to the collector's own /v1/ingest and
//                                          /v1/img, which store them (per pixel key), then counted
//   /r/<id>/plausible/api/event            Plausible: one event per request
//   /r/<id>/com.snowplowanalytics.snowplow/tp2   Snowplow POST: { schema, data: [events] }
//   /r/<id>/seg/v1/{t,p,i,b,…}             Segment: one event per request, or { batch: [...] } on /b
// What is counted on the wire: each request's body bytes plus its URL length (headers are not).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { createCollector, createLogger, loadConfig } from 'spdt-collector';
import { dynamicFile, nextPage, page } from './pages.mjs';

const json = (text) => {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
};

/** A tracked thing's kind: 'view', 'purchase', or its name. */
const kind = (name) => (/^(view|pageview|page|pv)$/.test(name) ? 'view' : name);

// Per tracker protocol: the events (kinds) a request carries, or undefined when it is not one.
function snowplowEvents(body) {
  const payload = json(body);
  const list = payload && Array.isArray(payload.data) ? payload.data : [];
  return list.map((e) => {
    if (e.e == 'pv') return 'view';
    let ue = e.ue_pr ? json(e.ue_pr) : e.ue_px ? json(Buffer.from(e.ue_px, 'base64').toString()) : undefined;
    const schema = ue && ue.data && ue.data.schema;
    return schema && /\/purchase\//.test(schema) ? 'purchase' : 'snowplow:' + e.e;
  });
}

function segmentEvents(body, type) {
  const payload = json(body);
  if (!payload) return [];
  const list = type == 'b' ? payload.batch || [] : [payload];
  return list.map((e) => (e.type == 'page' ? 'view' : e.type == 'track' ? kind(e.event) : 'segment:' + e.type));
}

function spdtEvents(body) {
  const payload = json(body);
  return payload && Array.isArray(payload.batch) ? payload.batch.flatMap((item) => (item.events || []).map((e) => kind(e.action))) : [];
}

export async function startReceiver({ files }) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'spdt-bench-'));
  const runs = new Map();
  const unknown = []; // requests nothing answered: a tracker configured wrong
  let collectorUrl;

  /** Records a request and the events it carried; wakes whoever waits on the run. */
  function record(run, req, bodyBytes, events) {
    const at = Date.now();
    run.requests.push({ at, bytes: bodyBytes + (run.origin + req.url).length, events: events.length });
    for (const k of events) run.events.push({ at, kind: k });
    for (const w of [...run.waiters]) w();
  }

  async function forward(run, req, res, rel, body) {
    const query = req.url.includes('?') ? req.url.slice(req.url.indexOf('?')) : '';
    const answer = await fetch(collectorUrl + rel + query, {
      method: req.method,
      headers: { 'content-type': req.headers['content-type'] || 'text/plain' },
      body: req.method == 'POST' ? body : undefined,
    });
    const out = Buffer.from(await answer.arrayBuffer());
    // Counted once the collector has stored them (it answers after its commit).
    if (answer.ok) {
      const events = rel == 'v1/ingest' ? spdtEvents(body.toString()) : [kind(new URLSearchParams(query).get('a') || '')];
      record(run, req, body.length, events);
    } else run.rejected.push(`${answer.status} ${out}`);
    res.writeHead(answer.status, Object.fromEntries(answer.headers));
    res.end(out);
  }

  /** Answers a request under /r/ (true), or leaves it unanswered (false); `body`: the bytes Fastify read. */
  async function handler(req, res, p, body) {
    const m = /^\/r\/([^/]+)\/(.*)$/.exec(p);
    const run = m && runs.get(m[1]);
    if (!run) return false;
    const rel = m[2];
    const cors = { 'Access-Control-Allow-Origin': req.headers.origin || '*', 'Access-Control-Allow-Credentials': 'true' };
    if (req.method == 'OPTIONS') {
      run.preflights++;
      res.writeHead(204, { ...cors, 'Access-Control-Allow-Headers': req.headers['access-control-request-headers'] || '*', 'Access-Control-Allow-Methods': 'GET, POST' });
      return res.end(), true;
    }
    if (req.method == 'GET' && (rel == 'page.html' || rel == 'next.html')) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
      return res.end(rel == 'page.html' ? page(run.tracker) : nextPage), true;
    }
    if (req.method == 'GET' && files.has(rel)) {
      const body = files.get(rel);
      run.served.set(rel, body);
      res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Content-Length': body.length, 'Cache-Control': 'no-cache' });
      res.end(body);
      for (const w of [...run.waiters]) w();
      return true;
    }
    const dynamic = req.method == 'GET' && dynamicFile(rel, run);
    if (dynamic) {
      run.served.set(rel, Buffer.from(dynamic.body));
      res.writeHead(200, { 'Content-Type': dynamic.type, 'Cache-Control': 'no-cache', ...cors });
      return res.end(dynamic.body), true;
    }
    if (rel == 'v1/ingest' || rel == 'v1/img') return forward(run, req, res, rel, body), true;
    if (req.method == 'POST' && rel == 'plausible/api/event') {
      const payload = json(body.toString());
      record(run, req, body.length, payload && payload.n ? [kind(payload.n)] : []);
      res.writeHead(202, { 'Content-Type': 'text/plain', ...cors });
      return res.end('ok'), true;
    }
    if (req.method == 'POST' && rel == 'com.snowplowanalytics.snowplow/tp2') {
      record(run, req, body.length, snowplowEvents(body.toString()));
      res.writeHead(200, { 'Content-Type': 'text/plain', ...cors });
      return res.end('ok'), true;
    }
    const seg = /^seg\/v1\/(\w+)$/.exec(rel);
    if (req.method == 'POST' && seg) {
      record(run, req, body.length, segmentEvents(body.toString(), seg[1]));
      res.writeHead(200, { 'Content-Type': 'application/json', ...cors });
      return res.end('{"success":true}'), true;
    }
    unknown.push(`${req.method} ${p}`);
    return false;
  }

  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', SPDT_DATA_DIR: dataDir });
  const collector = await createCollector(config, { relay: false, log: createLogger({ level: 'warn' }) });
  mountRuns(collector.app, handler);
  collectorUrl = (await collector.listen()).url + '/';
  const origin = collectorUrl.slice(0, -1);
  const host = origin.replace(/^http:\/\//, '');

  return {
    origin,
    unknown,
    /** A new measurement's run: its base URL, pixel key and counters. */
    newRun(tracker) {
      const id = randomBytes(6).toString('hex');
      const run = {
        id,
        tracker,
        origin,
        host,
        base: `/r/${id}`,
        url: `${origin}/r/${id}`,
        key: randomBytes(16).toString('hex'), // our pixel key: the collector stores per key
        requests: [],
        events: [],
        served: new Map(),
        rejected: [],
        preflights: 0,
        waiters: new Set(),
        count: (k) => run.events.reduce((n, e) => n + (e.kind == k), 0),
        /** Resolves true once `test()` holds (checked on each arrival), false after `ms`. */
        until(test, ms) {
          if (test()) return Promise.resolve(true);
          return new Promise((resolve) => {
            const done = (v) => (clearTimeout(timer), run.waiters.delete(check), resolve(v));
            const check = () => test() && done(true);
            const timer = setTimeout(() => done(test()), ms);
            run.waiters.add(check);
          });
        },
      };
      runs.set(id, run);
      return run;
    },
    /** What the collector stored for our pixel key. */
    async stored(key) {
      // The admin API answers 1,000 events unless asked for more; a backlog run stores 3,000.
      const res = await fetch(`${origin}/api/events?key=${key}&limit=10000`);
      if (!res.ok) throw new Error(`/api/events: ${res.status} ${await res.text()}`);
      return res.json();
    },
    async close() {
      await collector.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * The runs' routes on the collector's app (before listen()), in a scope of their own that takes
 * any body as bytes. The reply is hijacked: the handler writes the raw response itself, as the
 * trackers' endpoints need exact status codes, headers and bodies. The collector's own routes
 * (/v1/*, /api/*, /ping.min.js, …) are not under /r/ and stay as they are.
 */
function mountRuns(app, handler) {
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    scope.route({
      method: ['GET', 'HEAD', 'POST', 'OPTIONS'],
      url: '/r/*',
      handler: async (request, reply) => {
        reply.hijack();
        const res = reply.raw;
        const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        try {
          if (await handler(request.raw, res, request.url.split('?')[0], body)) return;
          res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"error":"not found"}');
        } catch (error) {
          if (res.headersSent) res.destroy();
          else res.writeHead(500, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: String(error) }));
        }
      },
    });
  });
}
