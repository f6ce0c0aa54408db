import typescript from '@rollup/plugin-typescript';
import terser from '@rollup/plugin-terser';
import UglifyJS from 'uglify-js';
import closure from './scripts/closure.mjs';

/**
 * The last step of the tag's build: local names, by uglify-js's mangler, whose names gzip better
 * than terser's (14 B). V8's explicit compile hint goes first: nearly every function of the tag runs
 * on load, so compiling them all while the script streams in (off the main thread) beats compiling
 * each one lazily on the main thread at its first call. About 3 ms less main thread per load
 * (bench/notes.md).
 */
const uglifyMangle = () => ({
  name: 'uglify-mangle',
  renderChunk(code) {
    const { code: out, map, error } = UglifyJS.minify(code, {
      compress: false,
      mangle: true,
      sourceMap: {},
      output: { preamble: '//# allFunctionsCalledOnLoad' },
    });
    if (error) throw error;
    return { code: out, map };
  },
});

const ts = (target) => typescript({ tsconfig: './tsconfig.json', target, include: ['src/**/*.ts'], declaration: false, noEmitOnError: true });

export default [
  // The tag: one self-contained IIFE, every byte counted.
  {
    input: 'src/tag.ts',
    output: { file: 'dist/ping.min.js', format: 'iife', strict: false },
    plugins: [
      ts('ES2020'),
      // Internal method names never leave the bundle (wire, option and public names are not here).
      closure({ internal: /^(canSend|header|sent|free)$/ }),
      terser({
        ecma: 2020,
        // unsafe_comps: comparisons are written so that swapping or negating them keeps their meaning
        // (no NaN reaches a negated one: see configure in pixel.ts).
        // reduce_funcs off: inlining one-use functions again, after Closure, costs 20 B of gzip.
        compress: { passes: 3, unsafe_arrows: true, pure_getters: true, unsafe_comps: true, reduce_funcs: false },
        mangle: false,
        format: { comments: false },
      }),
      uglifyMangle(),
    ],
  },
  // The npm entries: readable ESM and CommonJS (bundlers minify), types from tsc. `rules` is what
  // the collector shares with the tag (validation, hashing).
  ...['index', 'rules'].map((name) => ({
    input: `src/${name}.ts`,
    output: [
      { file: `dist/${name}.mjs`, format: 'es' },
      { file: `dist/${name}.cjs`, format: 'cjs', exports: 'named' },
    ],
    plugins: [ts('ES2020')],
  })),
];
