// Makes sure the e2e suite has a Chromium: Debian's package (Playwright's own browser download is
// not available everywhere). CHROMIUM_PATH overrides the default /usr/bin/chromium.
import { existsSync } from 'node:fs';
import { execSync } from 'node:child_process';

const path = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
if (!existsSync(path)) {
  if (process.env.CHROMIUM_PATH || process.getuid?.() !== 0) {
    console.error(`No Chromium at ${path}. Install Debian's (apt-get install -y chromium) or set CHROMIUM_PATH.`);
    process.exit(1);
  }
  console.log('Installing Chromium (apt-get install -y chromium) for the e2e suite…');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execSync('apt-get update -qq && apt-get install -y -qq chromium', { stdio: 'inherit', env });
}
