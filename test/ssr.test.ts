// @vitest-environment node
/**
 * SPEC §7: the npm entry imports and runs on a server (SSR) without touching a browser global,
 * and its calls there do nothing. Checked on the built ESM and CommonJS files, as a server loads them.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = new URL('..', import.meta.url).pathname;

beforeAll(() => {
  if (!existsSync(ROOT + 'dist/index.mjs')) execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'ignore' });
});

/**
 * A script for a bare Node process, where window, document, navigator and location do not exist:
 * any use of them other than a typeof check throws a ReferenceError and fails the run.
 */
const script = (load: string) => `
if (typeof window != 'undefined' || typeof document != 'undefined') throw new Error('not a server');
${load}
const pixel = createPixel({ key: 'k', consent: 'pending' });
pixel.purchase({ value: 5, currency: 'USD' });
pixel('view');
pixel.consent('granted');
pixel.on('send', () => {});
console.log(typeof pixel.purchase, typeof snippet({ key: 'k', src: 'https://cdn.example.com/ping.min.js' }));
`;

describe('§7 server-side rendering', () => {
  it('the ESM build imports and runs without a browser global', () => {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script(`const { createPixel, snippet } = await import(${JSON.stringify(ROOT + 'dist/index.mjs')});`)], { encoding: 'utf8' });
    expect(out.trim()).toBe('function string');
  });

  it('the CommonJS build requires and runs without a browser global', () => {
    const out = execFileSync(process.execPath, ['-e', script(`const { createPixel, snippet } = require(${JSON.stringify(ROOT + 'dist/index.cjs')});`)], { encoding: 'utf8' });
    expect(out.trim()).toBe('function string');
  });

  it('package.json exports resolve to those builds and their types', () => {
    const require = createRequire(ROOT + 'package.json');
    const pkg = require('./package.json');
    expect(require.resolve('spdt-pixel')).toBe(ROOT + 'dist/index.cjs');
    expect(pkg.exports['.'].import).toBe('./dist/index.mjs');
    expect(existsSync(ROOT + pkg.exports['.'].types.slice(2))).toBe(true);
    expect(pkg.sideEffects).toBe(false);
  });
});
