// Turns the raw measurements into the summary, the table and the target verdicts.
import { gzipSync, brotliCompressSync, constants } from 'node:zlib';
import { BURST, MEASURED, TRACKERS } from './pages.mjs';
import { BACKLOG } from './backlog.mjs';

export const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const stat = (xs) => ({ med: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length });

/** Raw, gzip (level 9) and brotli (quality 11) bytes, each file compressed on its own and summed. */
export function bundleBytes(served) {
  const sizes = { raw: 0, gzip: 0, brotli: 0, files: [] };
  for (const [rel, body] of served) {
    sizes.raw += body.length;
    sizes.gzip += gzipSync(body, { level: 9 }).length;
    sizes.brotli += brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
    sizes.files.push(rel.replace(/^.*\//, ''));
  }
  return sizes;
}

/**
 * raw: { bundles: {name: served Map}, loads: {name: [load]}, bursts: {name: [burst]}, navs: {name: [trial]} }
 * Returns one summary per measured tracker.
 */
export function summarise(raw) {
  const blank = median(raw.loads.blank.map((l) => l.task));
  const blankCpu = median(raw.loads.blank.map((l) => l.cpu));
  const out = {};
  for (const name of MEASURED) {
    const loads = raw.loads[name];
    const bursts = raw.bursts[name];
    const navs = raw.navs[name];
    out[name] = {
      label: TRACKERS[name].label,
      bundle: bundleBytes(raw.bundles[name]),
      loadRaw: stat(loads.map((l) => l.task)),
      // Net of the blank control: the tracker's own main-thread time.
      load: stat(loads.map((l) => l.task - blank)),
      // CPU time of the main thread, net of the blank page's: unlike task time it leaves out the
      // waits on synchronous calls into the browser (storage, cookies), which a busy machine stretches.
      loadCpu: stat(loads.map((l) => l.cpu - blankCpu)),
      loadScript: stat(loads.map((l) => l.script)),
      perEvent: stat(bursts.map((b) => b.main.task / BURST)),
      perEventCpu: stat(bursts.map((b) => b.main.cpu / BURST)),
      syncMs: stat(bursts.map((b) => b.syncMs)),
      delivered: stat(bursts.map((b) => b.delivered)),
      lastMs: stat(bursts.map((b) => b.lastMs)),
      requests: stat(bursts.map((b) => b.requests)),
      bytesPerEvent: stat(bursts.map((b) => b.bytes / Math.max(1, b.delivered))),
      nav: { delivered: navs.filter((t) => t.arrived).length, trials: navs.length, ms: stat(navs.filter((t) => t.arrived).map((t) => t.ms)) },
    };
  }
  out.blank = { loadRaw: stat(raw.loads.blank.map((l) => l.task)) };
  // The backlog (bench/backlog.mjs): ours, and the browser's floor measured beside it.
  const ours = raw.backlog.spdt;
  const floor = raw.backlog.floor;
  out.spdt.backlog = {
    delivered: stat(ours.map((b) => b.delivered)),
    mb: stat(ours.map((b) => b.bytes / 1e6)),
    requests: stat(ours.map((b) => b.requests)),
    lastMs: stat(ours.map((b) => (b.delivered == BACKLOG ? b.lastMs : Infinity))),
    floorMs: stat(floor.map((b) => (b.delivered == BACKLOG ? b.lastMs : Infinity))),
    longestTask: stat(ours.map((b) => b.longestTask)),
    longestTaskCpu: stat(ours.map((b) => b.longestTaskCpu)),
    floorLongestTaskCpu: stat(floor.map((b) => b.longestTaskCpu)),
    callMs: stat(ours.map((b) => b.callMs)),
    mainMs: stat(ours.map((b) => b.mainMs)),
    floorMainMs: stat(floor.map((b) => b.mainMs)),
  };
  return out;
}

const num = (x, digits = 0) => (Number.isFinite(x) ? x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '–');
const range = (s, digits = 0) => (s.min == s.max ? num(s.med, digits) : `${num(s.med, digits)} (${num(s.min, digits)}–${num(s.max, digits)})`);
const ratio = (a, b) => (b ? a / b : NaN);
const times = (r) => (Number.isFinite(r) ? (r >= 0.1 ? `${num(r, 2)}×` : `1/${num(1 / r, 0)}`) : '–');

/** The rows of the comparison table: [label, cell per tracker…]. */
export function tableRows(s) {
  const row = (label, cell) => [label, ...MEASURED.map((n) => cell(s[n], n))];
  return [
    row('bundle: raw bytes', (t) => num(t.bundle.raw)),
    row('bundle: gzip -9 bytes', (t) => num(t.bundle.gzip)),
    row('bundle: brotli -11 bytes', (t) => num(t.bundle.brotli)),
    row('load + init + page view: main thread ms (net of blank page)', (t) => range(t.load, 1)),
    row('  … main-thread CPU ms (ThreadTime, net)', (t) => range(t.loadCpu, 1)),
    row('  … of which script ms (not net)', (t) => range(t.loadScript, 1)),
    row('per purchase, 1,000 burst incl. async until flushed: main thread ms', (t) => range(t.perEvent, 3)),
    row('  … main-thread CPU ms (ThreadTime)', (t) => range(t.perEventCpu, 3)),
    row('  … the 1,000 calls themselves (synchronous) ms', (t) => range(t.syncMs, 0)),
    row('burst: events delivered of 1,000', (t) => range(t.delivered)),
    row('burst: ms until the last arrived', (t) => range(t.lastMs)),
    row('burst: requests', (t) => range(t.requests)),
    row('burst: bytes on the wire per delivered event', (t) => range(t.bytesPerEvent)),
    // Measured for ours only, beside the browser's floor (a bare sendBeacon loop, the same events).
    row('backlog: 3,000 purchases called at once, delivered', (t, n) => (n == 'spdt' ? range(t.backlog.delivered) : '–')),
    row('  … MB on the wire, in requests', (t, n) => (n == 'spdt' ? `${range(t.backlog.mb, 2)} MB, ${range(t.backlog.requests)}` : '–')),
    row('  … ms until the last arrived', (t, n) => (n == 'spdt' ? range(t.backlog.lastMs) : '–')),
    row("  … the browser's floor: a bare sendBeacon loop, ms", (t, n) => (n == 'spdt' ? range(t.backlog.floorMs) : '–')),
    row('  … longest task while it drains: main-thread CPU ms (floor)', (t, n) => (n == 'spdt' ? `${range(t.backlog.longestTaskCpu, 1)} (${range(t.backlog.floorLongestTaskCpu, 1)})` : '–')),
    row('  … that task by wall time (a busy machine stretches it), ms', (t, n) => (n == 'spdt' ? range(t.backlog.longestTask) : '–')),
    row('  … the 3,000 calls themselves (one task), ms', (t, n) => (n == 'spdt' ? range(t.backlog.callMs) : '–')),
    row('  … main thread until the last arrived, ms (floor)', (t, n) => (n == 'spdt' ? `${range(t.backlog.mainMs)} (${range(t.backlog.floorMainMs)})` : '–')),
    row('navigating away: delivered of trials', (t) => `${t.nav.delivered}/${t.nav.trials}`),
    row('navigating away: ms from click to arrival', (t) => range(t.nav.ms)),
  ];
}

/** Ours divided by each peer, for the ratios the targets speak of. */
export function ratioRows(s) {
  const o = s.spdt;
  const peers = MEASURED.slice(1);
  const row = (label, f) => [label, ...peers.map((p) => times(ratio(f(o), f(s[p]))))];
  return [
    row('gzip bytes', (t) => t.bundle.gzip),
    row('load main thread (median, net)', (t) => t.load.med),
    row('main thread per purchase (median)', (t) => t.perEvent.med),
    row('requests per burst (median)', (t) => t.requests.med),
    row('bytes per event (median)', (t) => t.bytesPerEvent.med),
  ];
}

/** The targets for our tag, each with its verdict and numbers. */
export function targets(s) {
  const o = s.spdt;
  const { plausible: pl, snowplow: sp, segment: sg } = s;
  const bl = o.backlog;
  const ms = (x, d = 1) => `${num(x, d)} ms`;
  const list = [
    ['bundle at most 3,500 B gzip', o.bundle.gzip <= 3500, `${num(o.bundle.gzip)} B`],
    ['bundle under a fifth of Snowplow (gzip)', o.bundle.gzip < sp.bundle.gzip / 5, `${num(o.bundle.gzip)} B vs ${num(sp.bundle.gzip / 5)} B (a fifth of ${num(sp.bundle.gzip)} B)`],
    ['load no more than Plausible', o.load.med <= pl.load.med, `${ms(o.load.med)} vs ${ms(pl.load.med)}`],
    ['load under a fifth of Snowplow', o.load.med < sp.load.med / 5, `${ms(o.load.med)} vs ${ms(sp.load.med / 5)} (a fifth of ${ms(sp.load.med)})`],
    ['load under a fifth of Segment', o.load.med < sg.load.med / 5, `${ms(o.load.med)} vs ${ms(sg.load.med / 5)} (a fifth of ${ms(sg.load.med)})`],
    ['per event under a fifth of Snowplow', o.perEvent.med < sp.perEvent.med / 5, `${ms(o.perEvent.med, 3)} vs ${ms(sp.perEvent.med / 5, 3)}`],
    ['per event under a fifth of Segment', o.perEvent.med < sg.perEvent.med / 5, `${ms(o.perEvent.med, 3)} vs ${ms(sg.perEvent.med / 5, 3)}`],
    ['per event under half of Plausible', o.perEvent.med < pl.perEvent.med / 2, `${ms(o.perEvent.med, 3)} vs ${ms(pl.perEvent.med / 2, 3)}`],
    ['all 1,000 events of a burst delivered (every round)', o.delivered.min == BURST, `${range(o.delivered)} of 1,000`],
    [
      '… within 2 s (every round)',
      o.delivered.min == BURST && o.lastMs.max <= 2000,
      `${o.delivered.min == BURST ? 'the last' : 'not all arrived; the last that did'} arrived after ${range(o.lastMs)} ms`,
    ],
    ['… in at most 20 requests (every round)', o.requests.max <= 20, `${range(o.requests)} requests`],
    ['… at most 250 B on the wire per event (every round)', o.bytesPerEvent.max <= 250, `${range(o.bytesPerEvent)} B per delivered event`],
    ['every event fired just before navigating away delivered', o.nav.delivered == o.nav.trials, `${o.nav.delivered}/${o.nav.trials}`],
    ['a backlog of 3,000 (about 4 MB) delivered whole (every round)', bl.delivered.min == BACKLOG, `${range(bl.delivered)} of 3,000`],
    ['… in at most twice the sendBeacon floor’s time (median)', bl.lastMs.med <= 2 * bl.floorMs.med, `${ms(bl.lastMs.med, 0)} vs ${ms(2 * bl.floorMs.med, 0)} (twice ${ms(bl.floorMs.med, 0)})`],
    ['… within 10 s, SPEC §6 (every round)', bl.lastMs.max <= 10000, `the last arrived after ${range(bl.lastMs)} ms`],
    ['… no task over 50 ms of main-thread CPU while it drains (every round)', bl.longestTaskCpu.max <= 50, `longest ${range(bl.longestTaskCpu, 1)} ms (wall time ${range(bl.longestTask)} ms)`],
  ];
  return list.map(([target, met, numbers]) => ({ target, met, numbers }));
}

/** A plain-text table for the terminal. */
export function textTable(header, rows) {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => (i ? String(c).padStart(widths[i]) : String(c).padEnd(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** A Markdown table; the columns after index `left` are right-aligned (numbers). */
export function mdTable(header, rows, left = 0) {
  // Leading spaces (indented sub-rows) as no-break spaces, which Markdown keeps.
  const esc = (c) => String(c).replace(/\|/g, '\\|').replace(/^ +/, (m) => '\u00a0'.repeat(m.length));
  const rule = header.map((_, i) => (i > left ? '---:' : '---'));
  return [header, rule, ...rows].map((r) => `| ${r.map(esc).join(' | ')} |`).join('\n');
}

/** Order indices as runs: [0,1,2,7] → 'O-0…O-2, O-7'. */
function spans(indices) {
  const out = [];
  for (let i = 0; i < indices.length; i++) {
    const start = indices[i];
    while (indices[i + 1] == indices[i] + 1) i++;
    out.push(start == indices[i] ? `O-${start}` : `O-${start}…O-${indices[i]}`);
  }
  return out.join(', ') || 'none';
}

/** For each missed target: by how much, in words (Markdown bullets). */
export function shortfalls(s, raw) {
  const o = s.spdt;
  const { plausible: pl, snowplow: sp, segment: sg } = s;
  const out = [];
  const pct = (a, b) => `${num((a / b - 1) * 100)} %`;
  if (o.bundle.gzip > 3500 || o.bundle.gzip >= sp.bundle.gzip / 5)
    out.push(
      `Bundle: ${num(o.bundle.gzip)} B gzip is ${num(o.bundle.gzip - 3500)} B (${pct(o.bundle.gzip, 3500)}) over the 3,500 B target` +
        ` and ${num(o.bundle.gzip - sp.bundle.gzip / 5)} B over a fifth of Snowplow's ${num(sp.bundle.gzip)} B.`,
    );
  const loadMiss = [
    o.load.med > pl.load.med && `${num(o.load.med - pl.load.med, 1)} ms over Plausible's ${num(pl.load.med, 1)} ms (${num(o.load.med / pl.load.med, 1)} times it)`,
    o.load.med >= sp.load.med / 5 && `${num(o.load.med - sp.load.med / 5, 1)} ms over a fifth of Snowplow's (${num(sp.load.med / 5, 1)} ms)`,
    o.load.med >= sg.load.med / 5 && `${num(o.load.med - sg.load.med / 5, 1)} ms over a fifth of Segment's (${num(sg.load.med / 5, 1)} ms)`,
  ].filter(Boolean);
  if (loadMiss.length) out.push(`Load: ${num(o.load.med, 1)} ms of main thread (median, net of the blank page) is ${loadMiss.join('; ')}.`);
  const bursts = raw.bursts.spdt;
  if (o.delivered.min < BURST) {
    const lost = [...new Set(bursts.map((b) => spans(b.lost)))];
    out.push(`Burst: ${range(o.delivered)} of 1,000 purchases arrived; the orders the collector never stored (of O-0…O-999): ${lost.join('; ')}.`);
  }
  if (o.requests.max > 20) out.push(`Burst requests: ${range(o.requests)}, over 20.`);
  if (o.bytesPerEvent.max > 250) out.push(`Burst bytes: ${range(o.bytesPerEvent)} B per event, over 250.`);
  if (o.nav.delivered < o.nav.trials) out.push(`Navigating away: ${o.nav.trials - o.nav.delivered} of ${o.nav.trials} purchases did not arrive within 2 s.`);
  const bl = o.backlog;
  if (bl.delivered.min < BACKLOG) out.push(`Backlog: ${range(bl.delivered)} of 3,000 purchases arrived.`);
  else if (bl.lastMs.med > 2 * bl.floorMs.med) out.push(`Backlog: ${num(bl.lastMs.med)} ms is ${num(bl.lastMs.med / bl.floorMs.med, 1)} times the floor's ${num(bl.floorMs.med)} ms.`);
  if (bl.longestTaskCpu.max > 50) out.push(`Backlog: a task of ${num(bl.longestTaskCpu.max, 1)} ms of main-thread CPU while it drained.`);
  return out;
}
