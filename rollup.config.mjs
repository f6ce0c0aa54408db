import typescript from '@rollup/plugin-typescript';
import terser from '@rollup/plugin-terser';

const ts = (target) => typescript({ tsconfig: './tsconfig.json', target, include: ['src/**/*.ts'], declaration: false, noEmitOnError: true });

export default [
  // The tag: one self-contained IIFE, every byte counted.
  {
    input: 'src/tag.ts',
    output: { file: 'dist/ping.min.js', format: 'iife', strict: false },
    plugins: [
      ts('ES2020'),
      terser({
        ecma: 2020,
        compress: { passes: 3, unsafe_arrows: true, pure_getters: true },
        // Internal method names never leave the bundle (wire, option and public names are not here).
        mangle: { properties: { regex: /^(canSend|header|sent|free)$/ } },
        format: { comments: false },
      }),
    ],
  },
  // The npm entry: readable ESM and CommonJS (bundlers minify), types from tsc.
  {
    input: 'src/index.ts',
    output: [
      { file: 'dist/index.mjs', format: 'es' },
      { file: 'dist/index.cjs', format: 'cjs', exports: 'named' },
    ],
    plugins: [ts('ES2020')],
  },
];
