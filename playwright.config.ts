import { defineConfig } from '@playwright/test';

// Debian's Chromium (Playwright's own browser download is not reachable here); CHROMIUM_PATH overrides.
const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export default defineConfig({
  testDir: 'e2e',
  timeout: 30_000,
  expect: { timeout: 5_000 },
  fullyParallel: true,
  workers: process.env.CI ? 2 : undefined,
  forbidOnly: !!process.env.CI,
  reporter: 'list',
  use: {
    browserName: 'chromium',
    launchOptions: {
      executablePath,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        // Test hostnames resolve to this machine, so cookie domains can be tested on real names.
        '--host-resolver-rules=MAP *.example.co.uk 127.0.0.1, MAP example.co.uk 127.0.0.1',
      ],
    },
  },
});
