// Where our tag's load time goes (part of `npm run bench`; `-- --no-profile` skips it): a CPU
// profile (CDP Profiler, 50 µs sampling) of the load measurement, summed over a few loads. The tag
// is rebuilt from src/ with the TypeScript and terser settings of rollup.config.mjs but without
// Closure Compiler (it inlines many functions) and without name mangling, so that the profile names
// the source functions.
import os from 'node:os';
import path from 'node:path';
import { rollup } from 'rollup';
import typescript from '@rollup/plugin-typescript';
import terser from '@rollup/plugin-terser';
import { TRACKERS } from './pages.mjs';
import { inlineScript, open } from './measure.mjs';
import { mdTable } from './report.mjs';

const LOADS = 8;

export async function namedTag(root) {
  const bundle = await rollup({
    input: path.join(root, 'src/tag.ts'),
    plugins: [
      typescript({ tsconfig: path.join(root, 'tsconfig.json'), target: 'ES2020', include: [path.join(root, 'src/**/*.ts')], declaration: false, outDir: os.tmpdir() }),
      // As rollup.config.mjs, compile hint included (without it, lazy compilation lands in the callers' self time).
      terser({
        ecma: 2020,
        compress: { passes: 3, unsafe_arrows: true, pure_getters: true, keep_fnames: true },
        mangle: false,
        format: { comments: false, preamble: '//# allFunctionsCalledOnLoad' },
      }),
    ],
    onwarn: () => {},
  });
  const { output } = await bundle.generate({ format: 'iife', strict: false });
  await bundle.close();
  return Buffer.from(output[0].code);
}

// Functions of src/ whose inclusive time is reported: the phases of a load and what they touch.
const PHASES = [
  ['createCore', 'set-up: config, listeners, History patch (createCore)'],
  ['track', 'the queued conf and view: validation, event id (track)'],
  ['flush', 'sending, in a timer task (flush), of which:'],
  ['claim', '– reading the persisted outbox from localStorage (claim)'],
  ['nextRequest', '– building the request body (nextRequest), of which:'],
  ['resolveIds', '– – device and session ids: cookies, sessionStorage, localStorage (resolveIds)'],
  ['beacon', '– navigator.sendBeacon (beacon)'],
  ['get', 'all localStorage / sessionStorage reads (get)'],
  ['getCookie', 'all document.cookie reads (getCookie)'],
  ['setCookie', 'all document.cookie writes (setCookie)'],
];

/**
 * Sums a profile into `into`: self time per function (`self:<name>\t<where>`) and inclusive time
 * per function name of the tag (`incl:<name>`), in ms.
 */
function addProfile(profile, into) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children || []) parent.set(c, n.id);
  const add = (key, ms) => into.set(key, (into.get(key) || 0) + ms);
  for (let i = 0; i < profile.samples.length; i++) {
    const ms = (profile.timeDeltas[i + 1] || 0) / 1000;
    const { callFrame: f } = nodes.get(profile.samples[i]);
    if (f.functionName == '(idle)') continue;
    const where = f.url.endsWith('/ping.min.js') ? 'tag' : f.url ? 'other script' : f.functionName.startsWith('(') ? 'V8' : 'browser API';
    add(`self:${f.functionName || '(anonymous)'}\t${where}`, ms);
    add('total', ms);
    const seen = new Set();
    let inTag = false;
    for (const n of profile.nodes) if (n.callFrame.url.endsWith('/ping.min.js')) into.set(`fn:${n.callFrame.functionName}`, 0);
    for (let id = profile.samples[i]; id != null; id = parent.get(id)) {
      const frame = nodes.get(id).callFrame;
      if (!frame.url.endsWith('/ping.min.js')) continue;
      inTag = true;
      if (!seen.has(frame.functionName)) seen.add(frame.functionName), add(`incl:${frame.functionName}`, ms);
    }
    if (inTag) add('tag', ms);
  }
}

export async function profileOurLoad(browser, receiver, leaks, { root, files }) {
  const real = files.get('ping.min.js');
  files.set('ping.min.js', await namedTag(root));
  const totals = new Map();
  try {
    for (let k = 0; k < LOADS; k++) {
      const run = receiver.newRun('spdt');
      const { context, page } = await open(browser, receiver.origin, leaks);
      try {
        const cdp = await context.newCDPSession(page);
        await page.goto(`${run.url}/page.html`);
        await inlineScript(page, 'bench.warm = 1');
        await new Promise((r) => setTimeout(r, 300));
        await cdp.send('Profiler.enable');
        await cdp.send('Profiler.setSamplingInterval', { interval: 50 });
        await cdp.send('Profiler.start');
        await inlineScript(page, TRACKERS.spdt.load(run));
        if (!(await run.until(() => run.count('view') > 0, 10000))) throw new Error('profile: no page view');
        await new Promise((r) => setTimeout(r, 300));
        const { profile } = await cdp.send('Profiler.stop');
        addProfile(profile, totals);
      } finally {
        await context.close();
      }
    }
  } finally {
    files.set('ping.min.js', real);
  }
  const per = (key) => (totals.get(key) || 0) / LOADS;
  const self = [...totals]
    .filter(([key]) => key.startsWith('self:'))
    .map(([key, ms]) => [...key.slice(5).split('\t'), (ms / LOADS).toFixed(2)])
    .sort((a, b) => b[2] - a[2])
    .slice(0, 12);
  // A function renamed in src/ drops out of the phases rather than showing as zero.
  const phases = PHASES.filter(([fn]) => totals.has(`fn:${fn}`)).map(([fn, label]) => [label, per(`incl:${fn}`).toFixed(2)]);
  const summary =
    `${per('total').toFixed(1)} ms of sampled non-idle main-thread time per load, ${per('tag').toFixed(1)} ms of it inside the tag's code ` +
    `(${LOADS} loads, 50 µs sampling, profiler overhead included; the tag rebuilt without name mangling)`;
  const text =
    `CPU profile of our tag's load: ${summary}\n` +
    phases.map(([label, ms]) => `  ${ms.padStart(6)}  ${label}`).join('\n') +
    '\n  top self time:\n' +
    self.map(([fn, where, ms]) => `  ${ms.padStart(6)}  ${fn} (${where})`).join('\n');
  const markdown =
    `A CPU profile (CDP Profiler) of the load measurement: ${summary}.\n\n` +
    `Inclusive time by phase:\n\n${mdTable(['phase', 'ms per load'], phases)}\n\n` +
    `Top self time:\n\n${mdTable(['function', 'where', 'ms per load'], self, 1)}`;
  const rows = { phases, self };
  return { text, markdown, rows };
}
