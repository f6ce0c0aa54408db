import { defineConfig, type Project } from '@playwright/test';
import { ENGINE_PATHS } from './e2e/engines/paths';

/**
 * What a test needs of the harness beyond the Page API all three engines have, as test tags: an
 * engine's project leaves out the few tests it cannot drive, and the tag says why.
 *  - @needs-cdp: the Chrome DevTools Protocol (Chromium only).
 *  - @needs-offline: context.setOffline (all three: WebDriver has none, so the WebKit harness runs
 *    each context's browser in a network namespace of its own and takes its default route away,
 *    see e2e/engines/offline.ts).
 *  - @needs-offline-answer: a routed answer for a navigation while offline (Chromium, WebKit;
 *    Firefox refuses the navigation before any route sees it).
 *  - @needs-tab-requests: requests attributed to one of two tabs (Chromium; the harness sees
 *    Firefox's and WebKit's request bodies per context, through a proxy).
 *
 * Not a harness gap but Firefox's own, found by trying: a tab being closed is torn down while its
 * pagehide runs. A beacon sent first thing in a pagehide handler goes out; one sent a millisecond
 * or two later (an event the page calls there, once the pixel has built its request) is lost in
 * most closes, and localStorage throws NS_ERROR_FAILURE by then. It is the user's close, not the
 * automation's: BiDi's browsingContext.close calls tabbrowser's removeTab, as the tab's close
 * button does (ESR 153's remote agent), and the page's own window.close() and a headed Firefox lose
 * it alike. Only events created in that pagehide are at stake: Firefox hides the page before its
 * pagehide, and the pixel sends at that visibilitychange what was called before. So
 * e2e/transport.spec.ts leaves that page by navigation in Firefox, which delivers it.
 */
const cannot = (...tags: string[]) => new RegExp(tags.join('|'));

/**
 * One suite, three engines. Chromium and Firefox are Playwright's own browser types, launched on
 * Debian's browsers (Playwright's browser downloads are not reachable here); WebKit is Debian's
 * WebKitGTK driven over WebDriver by the harness (e2e/engines/webkit.ts), selected by the project
 * name. ENGINES=chromium,firefox narrows a run.
 */
const chromium: Project = {
  name: 'chromium',
  use: {
    browserName: 'chromium',
    launchOptions: {
      executablePath: ENGINE_PATHS.chromium,
      // Playwright turns Chromium's back/forward cache off; real browsers (and the other engines
      // here) have it on, and the tag's pagehide/pageshow handling must be tested with it.
      ignoreDefaultArgs: ['--disable-back-forward-cache'],
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        // Test hostnames resolve to this machine, so cookie domains can be tested on real names.
        // (Firefox and WebKit reach them through the harness's proxy, which serves every host.)
        '--host-resolver-rules=MAP *.example.co.uk 127.0.0.1, MAP example.co.uk 127.0.0.1',
      ],
    },
  },
};

// Debian's Firefox ESR over WebDriver BiDi (Playwright's `moz-firefox` channel).
const firefox: Project = {
  name: 'firefox',
  grepInvert: cannot('@needs-cdp', '@needs-offline-answer', '@needs-tab-requests'),
  workers: 1, // 3 s and 0.5–0.7 GB a launch
  use: {
    browserName: 'firefox',
    channel: 'moz-firefox',
    launchOptions: {
      executablePath: ENGINE_PATHS.firefox,
      firefoxUserPrefs: {
        // Each context's recording proxy (e2e/engines/firefox.ts) sees localhost too.
        'network.proxy.allow_hijacking_localhost': true,
      },
    },
  },
};

// Debian's WebKitGTK over WebDriver, through the harness (e2e/engines/webkit.ts).
const webkit: Project = {
  name: 'webkit',
  grepInvert: cannot('@needs-cdp', '@needs-tab-requests'),
  workers: 1,
  use: { browserName: 'webkit' },
  // Every test starts a browser session of its own (about 0.5 s, more on a busy machine).
  timeout: 60_000,
  // WebKitWebDriver now and then never answers a command sent around a back/forward-cache restore
  // (about one run in four of that test): a second try, which the report lists as flaky.
  retries: 1,
};

const all = [chromium, firefox, webkit];
const wanted = process.env.ENGINES?.split(',');

export default defineConfig({
  testDir: 'e2e',
  timeout: 30_000,
  expect: { timeout: 5_000 },
  fullyParallel: true,
  workers: process.env.CI ? 2 : undefined,
  forbidOnly: !!process.env.CI,
  reporter: 'list',
  projects: wanted ? all.filter((p) => wanted.includes(p.name!)) : all,
});
