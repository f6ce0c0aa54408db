// `npm run bench`: our tag against Plausible, Snowplow and Segment in one Chromium run, interleaved
// and repeated; prints the table and writes docs/performance.md. Not part of CI.
//
//   node bench/run.mjs [--quick] [--no-write] [--no-profile]
//   BENCH_ROUNDS (15) load rounds; the first BENCH_BURST_ROUNDS (3) also run the 1,000-event burst;
//   BENCH_BACKLOG_ROUNDS (3) rounds of the 3,000-event backlog, ours and the sendBeacon floor;
//   BENCH_NAV_TRIALS (20) navigation trials per tracker; BENCH_SEED the shuffle's seed.
//
// Each round measures every tracker once, in a shuffled order, each in a fresh browser context.
// Nothing leaves the machine: one server on 127.0.0.1 serves every page, tracker and endpoint,
// and any other request is aborted and fails the bench.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BURST, MEASURED, TRACKERS, staticFiles } from './pages.mjs';
import { startReceiver } from './receiver.mjs';
import { launch, loadAndBurst, navTrial } from './measure.mjs';
import { BACKLOG, backlogFloor, backlogTag } from './backlog.mjs';
import { mdTable, ratioRows, shortfalls, summarise, tableRows, targets, textTable } from './report.mjs';
import { profileOurLoad } from './profile.mjs';
import { moduleSizes } from './sizes.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const args = new Set(process.argv.slice(2));
const quick = args.has('--quick');
const ROUNDS = Number(process.env.BENCH_ROUNDS || (quick ? 1 : 15));
const BURST_ROUNDS = Math.min(ROUNDS, Number(process.env.BENCH_BURST_ROUNDS || (quick ? 1 : 3)));
const NAV_TRIALS = Number(process.env.BENCH_NAV_TRIALS || (quick ? 3 : 20));
const BACKLOG_ROUNDS = Number(process.env.BENCH_BACKLOG_ROUNDS || (quick ? 1 : 3));
const SEED = Number(process.env.BENCH_SEED || Date.now() % 100000);

const log = (...a) => console.error('[bench]', ...a);

/** A seeded shuffle (mulberry32), so an order can be replayed with BENCH_SEED. */
function shuffler(seed) {
  let a = seed >>> 0;
  const random = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return (list) => {
    const out = [...list];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  };
}

const version = (pkg) => JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')).version;

async function main() {
  const started = Date.now();
  const loadBefore = os.loadavg()[0];
  const shuffle = shuffler(SEED);
  const files = await staticFiles(ROOT);
  const sizes = await moduleSizes(ROOT); // before any server or browser is started
  const receiver = await startReceiver({ root: ROOT, files });
  const browser = await launch();
  const leaks = [];
  const names = ['blank', ...MEASURED];
  const raw = {
    bundles: {},
    loads: Object.fromEntries(names.map((n) => [n, []])),
    bursts: Object.fromEntries(MEASURED.map((n) => [n, []])),
    navs: Object.fromEntries(MEASURED.map((n) => [n, []])),
    backlog: { spdt: [], floor: [] },
  };
  const problems = [];
  const check = (name, result) => {
    for (const e of result.errors) problems.push(`${name}: page error: ${e}`);
    if (result.run.rejected.length) problems.push(`${name}: collector rejected: ${result.run.rejected[0]}`);
    if (result.run.preflights) problems.push(`${name}: ${result.run.preflights} CORS preflights (should be same-origin)`);
  };
  let profile;
  try {
    log(`Chromium ${browser.version()}, seed ${SEED}: ${ROUNDS} rounds (${BURST_ROUNDS} with a ${BURST}-event burst), ${NAV_TRIALS} navigation trials per tracker`);
    // Sanity pass, with the routing guard: every tracker loads, sends its page view and 20
    // purchases that the server counts (ours: stores), and nothing tries to leave.
    for (const name of MEASURED) {
      const r = await loadAndBurst(browser, receiver, name, leaks, { n: 20, guard: true });
      check(name, r);
      const got = name == 'spdt' ? r.burst.stored : r.burst.delivered;
      if (got != 20 || r.run.count('view') != 1) throw new Error(`sanity: ${name} sent ${r.run.count('view')} page views and ${got} of 20 purchases`);
      if (leaks.length) throw new Error(`sanity: ${name} tried to leave the machine: ${leaks.join(', ')}`);
    }
    log('sanity pass: every tracker sent 1 page view and 20 of 20 purchases, nothing tried to leave');
    for (let round = 0; round < ROUNDS; round++) {
      const withBurst = round < BURST_ROUNDS;
      const order = shuffle(names);
      log(`round ${round + 1}/${ROUNDS}${withBurst ? ' (with burst)' : ''}: ${order.join(', ')}`);
      for (const name of order) {
        const r = await loadAndBurst(browser, receiver, name, leaks, { burst: withBurst });
        check(name, r);
        raw.loads[name].push(r.load);
        if (!raw.bundles[name]) raw.bundles[name] = new Map([...r.run.served].filter(([rel]) => TRACKERS[name].files.test(rel)));
        if (r.burst) {
          raw.bursts[name].push(r.burst);
          const b = r.burst;
          log(`  ${name}: load ${r.load.task.toFixed(1)} ms; burst ${b.main.task.toFixed(0)} ms main thread, ${b.delivered} delivered in ${b.requests} requests, last after ${b.lastMs} ms`);
          // Sanity: ours is counted where it is stored, and what arrived must be what was stored.
          if (name == 'spdt' && b.stored != b.delivered) problems.push(`spdt: ${b.delivered} purchases arrived but ${b.stored} distinct orders stored`);
        } else log(`  ${name}: load ${r.load.task.toFixed(1)} ms`);
      }
    }
    // The backlog: ours and the browser's floor side by side, in a shuffled order each round.
    const backlogs = { spdt: backlogTag, floor: backlogFloor };
    for (let round = 0; round < BACKLOG_ROUNDS; round++) {
      for (const name of shuffle(Object.keys(backlogs))) {
        const b = await backlogs[name](browser, receiver, leaks);
        check(`backlog ${name}`, b);
        raw.backlog[name].push(b);
        const calls = name == 'spdt' ? ` (the calls: ${b.callMs.toFixed(0)} ms)` : '';
        const tasks = `; longest task ${b.longestTaskCpu.toFixed(1)} ms CPU, ${b.longestTask.toFixed(0)} ms wall${calls}`;
        log(`backlog ${round + 1}/${BACKLOG_ROUNDS} ${name}: ${b.delivered} of ${BACKLOG} in ${b.requests} requests (${(b.bytes / 1e6).toFixed(2)} MB), the last after ${b.lastMs} ms${tasks}`);
        if (name == 'spdt' && b.stored != b.delivered) problems.push(`backlog: ${b.delivered} purchases arrived but ${b.stored} distinct orders stored`);
      }
    }
    for (let trial = 0; trial < NAV_TRIALS; trial++) {
      for (const name of shuffle(MEASURED)) {
        const t = await navTrial(browser, receiver, name, leaks);
        check(name, t);
        if (name == 'spdt' && t.arrived && !t.stored) problems.push('spdt: a navigation purchase arrived but was not stored');
        raw.navs[name].push(t);
      }
      log(`navigation trial ${trial + 1}/${NAV_TRIALS}: ${MEASURED.map((n) => `${n} ${raw.navs[n].filter((t) => t.arrived).length}/${trial + 1}`).join(', ')}`);
    }
    if (!args.has('--no-profile') && !quick) profile = await profileOurLoad(browser, receiver, leaks, { root: ROOT, files });
  } finally {
    await browser.close().catch(() => {});
    await receiver.close();
  }
  if (leaks.length) throw new Error(`requests tried to leave the machine: ${[...new Set(leaks)].join(', ')}`);
  if (receiver.unknown.length) problems.push(`unanswered requests: ${[...new Set(receiver.unknown)].slice(0, 5).join(', ')}`);
  for (const name of MEASURED) {
    const b = raw.bursts[name];
    if (b.some((x) => x.delivered == 0)) problems.push(`${name}: a burst delivered nothing (misconfigured?)`);
  }

  const s = summarise(raw);
  const header = ['', ...MEASURED.map((n) => TRACKERS[n].label)];
  const rows = tableRows(s);
  const ratios = ratioRows(s);
  const ratioHeader = ['ours ÷', ...MEASURED.slice(1).map((n) => TRACKERS[n].label)];
  const verdicts = targets(s);
  const seconds = Math.round((Date.now() - started) / 1000);
  const load = [loadBefore, os.loadavg()[0]].map((x) => x.toFixed(1)).join(' and ');

  console.log('\n' + textTable(header, rows));
  console.log('\n' + textTable(ratioHeader, ratios));
  console.log('\nTargets for spdt-pixel:');
  for (const v of verdicts) console.log(`  ${v.met ? 'met    ' : 'NOT MET'}  ${v.target}: ${v.numbers}`);
  for (const m of shortfalls(s, raw)) console.log(`  - ${m}`);
  console.log(`\nblank page (control): ${s.blank.loadRaw.med.toFixed(1)} ms main thread, subtracted from every load figure`);
  console.log(`\nWhere the tag's bytes go (marginal gzip bytes of each module of src/, of ${sizes.total} in all):`);
  for (const m of sizes.modules) console.log(`  ${String(m.gzip).padStart(5)}  ${m.name} (${m.raw} B minified)`);
  if (profile) console.log('\n' + profile.text);
  if (problems.length) console.log('\nProblems:\n  ' + problems.join('\n  '));
  console.log(`\n${seconds} s`);

  if (!args.has('--no-write') && !quick) {
    const doc = document({ s, raw, header, rows, ratioHeader, ratios, verdicts, seconds, load, chromium: browser.version(), profile, sizes, problems });
    const file = path.join(ROOT, 'docs/performance.md');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    // The collector's benchmarks write their own sections at the end (## Collector, ## Relay, …): keep them.
    const old = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    const collectorAt = old.indexOf('\n## Collector');
    fs.writeFileSync(file, doc.trimEnd() + '\n' + (collectorAt < 0 ? '' : old.slice(collectorAt)));
    log('wrote docs/performance.md');
  }
}

function document({ s, raw, header, rows, ratioHeader, ratios, verdicts, seconds, load, chromium, profile, sizes, problems }) {
  const cpus = os.cpus();
  const debian = fs.existsSync('/etc/debian_version') ? `Debian ${fs.readFileSync('/etc/debian_version', 'utf8').trim()}` : os.type();
  const segmentFiles = s.segment.bundle.files.join(', ');
  const notes = fs.readFileSync(new URL('./notes.md', import.meta.url), 'utf8');
  const misses = shortfalls(s, raw);
  return `# Performance

Our tag (\`dist/ping.min.js\`) against three widely used trackers, all measured in the same Chromium
run. Produced by \`npm run bench\` (bench/run.mjs, ${seconds} s); the numbers below are from that
run and are rewritten by the next one.

- Date: ${new Date().toISOString().slice(0, 10)}
- Machine: ${cpus.length} cores (${cpus[0]?.model.trim()}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${debian}, Node ${process.version};
  load average (1 min) ${load} at the start and end of the run (other work shared the machine when above ~0.5)
- Browser: Debian's Chromium ${chromium} (headless), driven by Playwright ${version('@playwright/test')}
- Trackers: spdt-pixel ${JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version} (this checkout),
  plausible-tracker ${version('plausible-tracker')}, @snowplow/browser-tracker ${version('@snowplow/browser-tracker')},
  @segment/analytics-next ${version('@segment/analytics-next')}
- Rounds: ${ROUNDS} of load, the first ${BURST_ROUNDS} of them with the ${BURST.toLocaleString('en-US')}-event burst; ${BACKLOG_ROUNDS} of the
  ${BACKLOG.toLocaleString('en-US')}-event backlog (ours only, beside the sendBeacon floor); ${NAV_TRIALS} navigation
  trials per tracker; each round in a shuffled order (seed ${SEED}), every measurement in a fresh browser context.

Cells are the median, with min–max across rounds in parentheses.

${mdTable(header, rows)}

Ratios of our median to each peer's (below 1 is better for us):

${mdTable(ratioHeader, ratios)}

The blank page (the control, loading an empty script the same way) cost ${s.blank.loadRaw.med.toFixed(1)} ms
(${s.blank.loadRaw.min.toFixed(1)}–${s.blank.loadRaw.max.toFixed(1)}); its median is subtracted from every load figure.
Segment's bundle is what its basic setup fetched: ${segmentFiles} (no lazily loaded chunk was fetched
with a source that has no destinations, middleware or schema; the ${s.segment.bundle.files.length == 1 ? 'settings JSON it also fetches is not counted' : 'settings JSON is not counted'}).
Plausible's is its npm package bundled by rollup + terser into one IIFE (the package ships only modules).

## Targets (from the issue), for our tag

| target | verdict | numbers |
| --- | --- | --- |
${verdicts.map((v) => `| ${v.target} | ${v.met ? 'met' : '**not met**'} | ${v.numbers} |`).join('\n')}

${misses.length ? `By how much:\n\n${misses.map((m) => `- ${m}`).join('\n')}\n` : 'Every target met.\n'}
## Where our bytes go

Each module of \`src/\` by its marginal gzip size: how much the gzipped bundle (${sizes.total.toLocaleString('en-US')} B) shrinks
without that module's characters of the minified output (attributed with the build's source map;
shared strings compress once, so the column does not add up exactly). \`(glue)\` is the bundle's
wrapper and its compile hint.

${mdTable(['module', 'minified bytes', 'gzip bytes (marginal)'], sizes.modules.map((m) => [m.name, m.raw.toLocaleString('en-US'), m.gzip.toLocaleString('en-US')]), 1)}
${profile ? `\n## Where our load time goes\n\n${profile.markdown}\n` : ''}${problems.length ? `\n## Problems the run reported\n\n${problems.map((p) => `- ${p}`).join('\n')}\n` : ''}
${notes}`;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
