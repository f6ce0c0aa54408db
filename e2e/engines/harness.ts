/**
 * The one place where the engines differ for the specs: the `browser` each worker launches.
 * Chromium and Firefox are Playwright's own (launched with the project's options from
 * playwright.config.ts), Firefox with its network seen through a recording proxy (./firefox.ts);
 * WebKit is WebKitGTK behind the harness in ./webkit.ts. Everything the
 * specs get from a browser (contexts, pages) comes from here, so they run unchanged in all three.
 */
import { test as base, type Browser } from '@playwright/test';
import { WebKitBrowser } from './webkit';
import { withRecordingProxy } from './firefox';

export const test = base.extend<{}, { browser: Browser }>({
  browser: [
    async ({ playwright, browserName, launchOptions }, use) => {
      const browser =
        browserName === 'webkit'
          ? ((await WebKitBrowser.launch()) as unknown as Browser)
          : browserName === 'firefox'
            ? withRecordingProxy(await playwright.firefox.launch(), (prefs) =>
                playwright.firefox.launch({ ...launchOptions, firefoxUserPrefs: { ...launchOptions.firefoxUserPrefs, ...prefs } }),
              )
            : await playwright.chromium.launch();
      await use(browser);
      await browser.close();
    },
    { scope: 'worker', timeout: 0 },
  ],
});
