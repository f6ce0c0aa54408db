// Makes sure the e2e suite has its three engines, all Debian packages (Playwright's own browser
// downloads are not available everywhere): Chromium, Firefox ESR, and WebKitGTK's WebDriver with
// an X server to draw in and iproute2 for its contexts' network namespaces. As root (CI) it
// installs what is missing; otherwise it says what to install. ENGINES=chromium,firefox narrows
// the check (and the run: see playwright.config.ts); CHROMIUM_PATH, FIREFOX_PATH,
// WEBKIT_DRIVER_PATH and WEBKIT_BROWSER_PATH point elsewhere.
import { existsSync } from 'node:fs';
import { execSync } from 'node:child_process';

/** Where `name` is on PATH (or the bare name, which then counts as missing). */
const onPath = (name) => (process.env.PATH ?? '').split(':').map((dir) => `${dir}/${name}`).find((path) => existsSync(path)) ?? name;

const needs = {
  chromium: [[process.env.CHROMIUM_PATH || '/usr/bin/chromium', 'chromium']],
  firefox: [[process.env.FIREFOX_PATH || '/usr/bin/firefox-esr', 'firefox-esr']],
  webkit: [
    [process.env.WEBKIT_DRIVER_PATH || '/usr/bin/WebKitWebDriver', 'webkit2gtk-driver'],
    [process.env.WEBKIT_BROWSER_PATH || '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser', 'webkit2gtk-driver'],
    ...(process.env.DISPLAY ? [] : [['/usr/bin/Xvfb', 'xvfb']]),
    // Each context's own network namespace, for context.setOffline (e2e/engines/offline.ts).
    [onPath('ip'), 'iproute2'],
    [onPath('unshare'), 'util-linux'],
    [onPath('nsenter'), 'util-linux'],
  ],
};
const engines = process.env.ENGINES ? process.env.ENGINES.split(',') : Object.keys(needs);
const missing = engines.flatMap((engine) => (needs[engine] ?? []).filter(([path]) => !existsSync(path)));
if (missing.length) {
  const packages = [...new Set(missing.map(([, pkg]) => pkg))].join(' ');
  const paths = missing.map(([path]) => path).join(', ');
  if (process.getuid?.() !== 0) {
    console.error(`The e2e suite needs ${paths}. Install Debian's packages (apt-get install -y ${packages}), or narrow the run with ENGINES=…`);
    process.exit(1);
  }
  console.log(`Installing ${packages} (apt-get install -y) for the e2e suite…`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execSync(`apt-get update -qq && apt-get install -y -qq ${packages}`, { stdio: 'inherit', env });
}
