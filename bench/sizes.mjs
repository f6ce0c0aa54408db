// Where the tag's bytes go (part of `npm run bench`): the tag is built as rollup.config.mjs builds
// it, with a source map, and each character of the minified output is attributed to the src/ module
// it came from. A module's cost is its *marginal* gzip size: how much smaller the gzipped bundle gets
// without that module's characters. Gzip sizes do not add up exactly (shared strings compress once).
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { pathToFileURL } from 'node:url';
import { rollup } from 'rollup';
import { TraceMap, originalPositionFor } from '@jridgewell/trace-mapping';

const gzip = (s) => gzipSync(s, { level: 9 }).length;

export async function moduleSizes(root) {
  // The config's paths are relative to the project, and its plugins resolve them when the config is
  // imported: both happen with the project as the working directory.
  const cwd = process.cwd();
  process.chdir(root);
  let output;
  try {
    const [tag] = (await import(pathToFileURL(path.join(root, 'rollup.config.mjs')).href)).default;
    const bundle = await rollup({ ...tag, onwarn: () => {} });
    ({ output } = await bundle.generate({ ...tag.output, sourcemap: true, sourcemapExcludeSources: true }));
    await bundle.close();
  } finally {
    process.chdir(cwd);
  }
  const code = output[0].code.replace(/\n\/\/# sourceMappingURL=.*\n?$/, '');
  const map = new TraceMap(output[0].map);
  const owner = [];
  code.split('\n').forEach((line, l) => {
    if (l) owner.push('(glue)'); // the newline before this line
    for (let c = 0; c < line.length; c++) {
      const { source } = originalPositionFor(map, { line: l + 1, column: c });
      owner.push(source ? path.basename(source, '.ts') : '(glue)');
    }
  });
  const total = gzip(code);
  const modules = [...new Set(owner)].map((name) => {
    let rest = '';
    let raw = 0;
    for (let i = 0; i < code.length; i++) owner[i] === name ? raw++ : (rest += code[i]);
    return { name, raw, gzip: total - gzip(rest) };
  });
  return { total, raw: code.length, modules: modules.sort((a, b) => b.gzip - a.gzip) };
}
