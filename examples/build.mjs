// Builds the examples that need a build step: examples/spa/bundle.js.
//   npm run build          # first: dist/ (the SPA imports dist/index.mjs)
//   node examples/build.mjs
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { rollup } from 'rollup';
import config from './spa/rollup.config.mjs';

const dist = fileURLToPath(new URL('../dist/index.mjs', import.meta.url));
if (!fs.existsSync(dist)) {
  console.error('examples/build.mjs: dist/index.mjs is missing; run `npm run build` first.');
  process.exit(1);
}

const bundle = await rollup(config);
try {
  await bundle.write(config.output);
} finally {
  await bundle.close();
}
console.log(`examples/build.mjs: wrote ${path.relative(process.cwd(), config.output.file)}`);
