// Prints the tag's size and fails the build when it is over budget (gzip level 9). The delta is
// against the size SPEC §7 counts from: every byte over it must pay for a feature.
import { readFileSync } from 'node:fs';
import { gzipSync, brotliCompressSync, constants } from 'node:zlib';

const BUDGET = 5250;
const BASELINE = 5064;
const code = readFileSync(new URL('../dist/ping.min.js', import.meta.url));
const gzip = gzipSync(code, { level: 9 }).length;
const brotli = brotliCompressSync(code, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
const delta = gzip - BASELINE;
console.log(
  `dist/ping.min.js: ${code.length} B raw, ${gzip} B gzip (${delta >= 0 ? '+' : ''}${delta} B against ${BASELINE}), ` +
    `${brotli} B brotli (budget ${BUDGET} B gzip)`,
);
if (gzip > BUDGET) {
  console.error(`dist/ping.min.js is ${gzip - BUDGET} B over its ${BUDGET} B gzip budget`);
  process.exit(1);
}
