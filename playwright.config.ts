import { defineConfig, type Project } from '@playwright/test';
import { ENGINE_PATHS, TEST_HOSTS } from './e2e/engines/paths';

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
        `--host-resolver-rules=${TEST_HOSTS.map((h) => `MAP ${h} 127.0.0.1`).join(', ')}`,
      ],
    },
  },
};

// Debian's Firefox ESR over WebDriver BiDi (Playwright's `moz-firefox` channel).
const firefox: Project = {
  name: 'firefox',
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
  use: { browserName: 'webkit' },
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
