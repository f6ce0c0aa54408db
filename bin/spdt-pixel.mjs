#!/usr/bin/env node
// npx spdt-pixel snippet --key KEY --src URL [--endpoint URL] [--nonce NONCE] [--trusted-types] [--consent pending]
import { snippet } from '../dist/index.mjs';

const USAGE = 'usage: spdt-pixel snippet --key KEY --src URL [--endpoint URL] [--nonce NONCE] [--trusted-types] [--consent pending|granted|denied]';
const [command, ...rest] = process.argv.slice(2);
const options = {};
for (let i = 0; i < rest.length; i++) {
  const name = rest[i].replace(/^--/, '');
  if (name == 'trusted-types') options.trustedTypes = true;
  else if (['key', 'src', 'endpoint', 'nonce', 'consent'].includes(name) && rest[i + 1] != null) options[name] = rest[++i];
  else fail(`unknown or incomplete option: ${rest[i]}`);
}
if (command != 'snippet') fail(command ? `unknown command: ${command}` : 'missing command');
if (!options.key || !options.src) fail('--key and --src are required');
if (options.consent && !['pending', 'granted', 'denied'].includes(options.consent)) fail('--consent must be pending, granted or denied');
for (const name of ['src', 'endpoint']) {
  if (options[name] && !/^(https?:\/)?\//.test(options[name])) fail(`--${name} must be an http(s) URL or a path starting with /`);
}
process.stdout.write(snippet(options));

function fail(message) {
  console.error(`spdt-pixel: ${message}\n${USAGE}`);
  process.exit(2);
}
