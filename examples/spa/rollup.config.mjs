// Bundles examples/spa/src/main.js into examples/spa/bundle.js.
// `import ... from 'spdt-pixel'` resolves to this repository's own build (../../dist/index.mjs),
// so the example needs no install: run `npm run build`, then `node examples/build.mjs`.
import { fileURLToPath } from 'node:url';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));

/** Points the package name at the local build, as a published install would. */
const localSpdtPixel = {
  name: 'local-spdt-pixel',
  resolveId(id) {
    return id === 'spdt-pixel' ? here('../../dist/index.mjs') : null;
  },
};

export default {
  input: here('./src/main.js'),
  output: { file: here('./bundle.js'), format: 'iife' },
  plugins: [localSpdtPixel],
};
