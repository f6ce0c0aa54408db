// The trackers under test: which files each one needs served, how a page loads and initialises
// it (each vendor's own loader pattern), and the purchase call. Everything is served from the
// bench's own server on 127.0.0.1 (see receiver.mjs), under a per-run prefix `/r/<id>/`.
import fs from 'node:fs';
import path from 'node:path';
import { rollup } from 'rollup';
import terser from '@rollup/plugin-terser';

export const BURST = 1000;

/**
 * Every page of a run: one inline script first (the vendors' loaders insert their tag before the
 * page's first script) and a link for the navigation trials.
 */
export const page = (title) =>
  `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>${title}</title>` +
  `<script>window.bench = {};</script></head>` +
  `<body><h1>${title}</h1><p><a id="go" href="next.html">Next page</a></p></body></html>`;

/** Where a link leads in the navigation trials: another page of the site, with no tracker on it. */
export const nextPage = page('next page (no tracker)');

// Plausible's npm package ships ES modules only; a site bundles it. This is that bundle: rollup +
// terser (defaults), an IIFE exposing `Plausible`, i.e. what the page would load.
async function plausibleBundle(root) {
  const bundle = await rollup({
    input: path.join(root, 'node_modules/plausible-tracker/build/module/index.js'),
    plugins: [terser({ format: { comments: false } })],
    onwarn: () => {},
  });
  const { output } = await bundle.generate({ format: 'iife', name: 'Plausible' });
  await bundle.close();
  return Buffer.from(output[0].code);
}

const SEGMENT_KEY = 'benchWriteKey0123456789';
const SEGMENT_DIR = 'node_modules/@segment/analytics-next/dist/umd';

/** Files served under `/r/<id>/`, by path relative to that prefix. */
export async function staticFiles(root) {
  const read = (rel) => fs.readFileSync(path.join(root, rel));
  const files = new Map([
    ['blank.js', Buffer.alloc(0)],
    ['ping.min.js', read('dist/ping.min.js')],
    ['plausible.js', await plausibleBundle(root)],
    ['snowplow.js', read('node_modules/@snowplow/browser-tracker/dist/index.umd.min.js')],
    // The Segment snippet loads analytics.min.js from its CDN: that file is the standalone build.
    [`segment-cdn/analytics.js/v1/${SEGMENT_KEY}/analytics.min.js`, read(`${SEGMENT_DIR}/standalone.js`)],
  ]);
  // Chunks it may load lazily, from `${cdn}/analytics-next/bundles/`.
  for (const name of fs.readdirSync(path.join(root, SEGMENT_DIR)))
    if (/\.bundle\.[0-9a-f]+\.js$/.test(name)) files.set(`segment-cdn/analytics-next/bundles/${name}`, read(`${SEGMENT_DIR}/${name}`));
  return files;
}

/**
 * The source settings Segment's CDN would answer for a new source with no destinations
 * (`/v1/projects/<writeKey>/settings`), but with the API host pointing at the bench server and
 * remote metrics off (they would go to api.segment.io).
 */
export function segmentSettings(host, base) {
  return JSON.stringify({
    integrations: {
      'Segment.io': {
        apiKey: SEGMENT_KEY,
        unbundledIntegrations: [],
        addBundledMetadata: true,
        maybeBundledConfigIds: {},
        versionSettings: { version: '4.4.7', componentTypes: ['browser'] },
        apiHost: `${host}${base}/seg/v1`,
        protocol: 'http',
      },
    },
    plan: { track: { __default: { enabled: true, integrations: {} } }, identify: { __default: { enabled: true } }, group: { __default: { enabled: true } } },
    edgeFunction: {},
    analyticsNextEnabled: true,
    middlewareSettings: {},
    enabledMiddleware: {},
    metrics: { sampleRate: 0 },
    legacyVideoPluginsEnabled: false,
    remotePlugins: [],
  });
}

/** Answers for a run's dynamic paths (Segment's settings), or undefined. */
export function dynamicFile(rel, { host, base }) {
  if (rel == `segment-cdn/v1/projects/${SEGMENT_KEY}/settings`) return { type: 'application/json', body: segmentSettings(host, base) };
}

// The purchase every tracker records, `I` being the expression for its index.
const PROPS = (I) => `{ value: 79.99, currency: 'USD', order_id: ${I} }`;

/**
 * Per tracker:
 *  - `load({ url, key })`: the inline script a site pastes (it loads and initialises the tracker
 *    and sends a page view); `url` is the run's base URL;
 *  - `purchase(I)`: one tracked purchase, `I` an expression for the order index;
 *  - `files`: the test for which served files are this tracker's code.
 */
export const TRACKERS = {
  // A control: the same procedure loading an empty script. Its cost is the measuring overhead.
  blank: {
    label: 'blank page',
    files: /^blank\.js$/,
    load: ({ url }) => `var e = document.createElement('script'); e.async = 1; e.src = '${url}/blank.js';
      var s = document.getElementsByTagName('script')[0]; s.parentNode.insertBefore(e, s);`,
  },

  // Spotify's snippet (SPEC §1), unchanged but for `src`: the tag's endpoint is its directory.
  spdt: {
    label: 'spdt-pixel',
    files: /^ping\.min\.js$/,
    load: ({ url, key }) => `(function(w, d){
  var id='spdt-capture', n='script';
  if (!d.getElementById(id)) {
    w.spdt = w.spdt || function() { (w.spdt.q = w.spdt.q || []).push(arguments); };
    var e = d.createElement(n); e.id = id; e.async = 1;
    e.src = '${url}/ping.min.js';
    var s = d.getElementsByTagName(n)[0]; s.parentNode.insertBefore(e, s);
  }
  w.spdt('conf', { key: '${key}' });
  w.spdt('view');
})(window, document);`,
    purchase: (I) => `spdt('purchase', ${PROPS(I)})`,
  },

  // plausible-tracker (npm), bundled: load it async, then Plausible({...}).trackPageview().
  // trackLocalhost: the bench runs on 127.0.0.1, which the tracker otherwise ignores.
  plausible: {
    label: 'Plausible',
    files: /^plausible\.js$/,
    load: ({ url }) => `var e = document.createElement('script'); e.async = 1; e.src = '${url}/plausible.js';
      e.onload = function () {
        window.plausible = Plausible({ domain: 'shop.example', apiHost: '${url}/plausible', trackLocalhost: true });
        plausible.trackPageview();
      };
      var s = document.getElementsByTagName('script')[0]; s.parentNode.insertBefore(e, s);`,
    purchase: (I) => `plausible.trackEvent('purchase', { props: ${PROPS(I)} })`,
  },

  // @snowplow/browser-tracker's UMD build: newTracker with the defaults (POST, buffer size 1,
  // localStorage event store, webPage context), then trackPageView. The purchase is a
  // self-describing event with the same three props.
  snowplow: {
    label: 'Snowplow',
    files: /^snowplow\.js$/,
    load: ({ url }) => `var e = document.createElement('script'); e.async = 1; e.src = '${url}/snowplow.js';
      e.onload = function () {
        snowplowBrowserTracking.newTracker('sp', '${url}', { appId: 'shop', platform: 'web' });
        snowplowBrowserTracking.trackPageView();
      };
      var s = document.getElementsByTagName('script')[0]; s.parentNode.insertBefore(e, s);`,
    purchase: (I) =>
      `snowplowBrowserTracking.trackSelfDescribingEvent({ event: { schema: 'iglu:com.example/purchase/jsonschema/1-0-0', data: ${PROPS(I)} } })`,
  },

  // Segment's analytics.js snippet (5.2.0, as the Segment app hands it out), with the script
  // from the bench server and `_cdn` set so that settings and lazy chunks come from there too.
  segment: {
    label: 'Segment',
    files: /^segment-cdn\/.*\.js$/,
    load: ({ url }) => `!function(){var i="analytics",analytics=window[i]=window[i]||[];if(!analytics.initialize)if(analytics.invoked)window.console&&console.error&&console.error("Segment snippet included twice.");else{analytics.invoked=!0;analytics.methods=["trackSubmit","trackClick","trackLink","trackForm","pageview","identify","reset","group","track","ready","alias","debug","page","screen","once","off","on","addSourceMiddleware","addIntegrationMiddleware","setAnonymousId","addDestinationMiddleware","register"];analytics.factory=function(e){return function(){if(window[i].initialized)return window[i][e].apply(window[i],arguments);var n=Array.prototype.slice.call(arguments);if(["track","screen","alias","group","page","identify"].indexOf(e)>-1){var c=document.querySelector("link[rel='canonical']");n.push({__t:"bpc",c:c&&c.getAttribute("href")||void 0,p:location.pathname,u:location.href,s:location.search,t:document.title,r:document.referrer})}n.unshift(e);analytics.push(n);return analytics}};for(var n=0;n<analytics.methods.length;n++){var key=analytics.methods[n];analytics[key]=analytics.factory(key)}analytics.load=function(key,n){var t=document.createElement("script");t.type="text/javascript";t.async=!0;t.setAttribute("data-global-segment-analytics-key",i);t.src="${url}/segment-cdn/analytics.js/v1/" + key + "/analytics.min.js";var r=document.getElementsByTagName("script")[0];r.parentNode.insertBefore(t,r);analytics._loadOptions=n};analytics._writeKey="${SEGMENT_KEY}";analytics._cdn="${url}/segment-cdn";analytics.SNIPPET_VERSION="5.2.0";
analytics.load("${SEGMENT_KEY}");
analytics.page();
}}();`,
    purchase: (I) => `analytics.track('purchase', ${PROPS(I)})`,
  },
};

export const PEERS = ['plausible', 'snowplow', 'segment'];
export const MEASURED = ['spdt', ...PEERS];
