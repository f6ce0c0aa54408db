import typescript from '@rollup/plugin-typescript';
import terser from '@rollup/plugin-terser';
import closure from './scripts/closure.mjs';

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
        // reduce_funcs off: after Closure's inlining, terser's own inlining of one-use functions only
        // makes the text less repetitive (20 B more gzip).
        compress: { passes: 3, unsafe_arrows: true, pure_getters: true, unsafe_comps: true, reduce_funcs: false },
        // V8's explicit compile hint: nearly every function of the tag runs on load, so compiling them
        // all while the script streams in (off the main thread) beats compiling each one lazily on
        // the main thread at its first call. About 3 ms less main thread per load (bench/notes.md).
        format: { comments: false, preamble: '//# allFunctionsCalledOnLoad' },
      }),
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
