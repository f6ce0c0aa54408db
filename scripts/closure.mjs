// A rollup plugin that runs Google Closure Compiler in ADVANCED mode over the tag's chunk, before
// terser. ADVANCED inlines and folds across the whole program (it reuses variables and
// parameters, inlines one-use helpers and constants) where terser stays more cautious: 94 B of
// gzip on the tag when it came in, against terser alone. Where its inlining costs bytes, the source
// says `@noinline` (it reads the annotation from the JSDoc comments TypeScript keeps).
//
// ADVANCED also renames properties, which would break every name the tag shares with the world:
// option names read from the site's `conf`, command names, wire and storage fields, browser APIs.
// So every property name the chunk uses is declared as an extern, except the internal ones named by
// `internal`: the compiler renames those alone. A new property name is therefore kept by default;
// renaming one has to be asked for.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { JAR_PATH } from 'google-closure-compiler';
import { getNativeImagePath } from 'google-closure-compiler/lib/utils.js';

const run = promisify(execFile);

/** Every property name in an ESTree program: `a.name`, `{ name: … }`, `{ name }`, `{ name() {} }`, `({ name }) =>`. */
function propertyNames(node, names = new Set()) {
  if (Array.isArray(node)) node.forEach((n) => propertyNames(n, names));
  else if (node && typeof node.type == 'string') {
    if (node.type == 'MemberExpression' && !node.computed) names.add(node.property.name);
    if (node.type == 'Property' && !node.computed && node.key.type == 'Identifier') names.add(node.key.name);
    for (const key in node) if (key != 'type') propertyNames(node[key], names);
  }
  return names;
}

// Globals that the browser externs bundled with the compiler define on Window only.
const GLOBALS = ['addEventListener', 'localStorage'];

export default function closure({ internal }) {
  return {
    name: 'closure-compiler',
    async renderChunk(code) {
      const kept = [...propertyNames(this.parse(code))].filter((name) => !internal.test(name)).sort();
      const externs = [
        '/** @externs */',
        ...GLOBALS.map((name) => `var ${name};`),
        '/** @type {?} */ var kept;',
        ...kept.map((name) => `kept.${name};`),
      ].join('\n');
      const dir = await mkdtemp(path.join(tmpdir(), 'closure-'));
      try {
        const file = (name) => path.join(dir, name);
        await writeFile(file('in.js'), code);
        await writeFile(file('externs.js'), externs);
        const args = [
          '--compilation_level=ADVANCED',
          '--language_in=ECMASCRIPT_2020',
          '--language_out=ECMASCRIPT_2020',
          '--warning_level=QUIET',
          `--externs=${file('externs.js')}`,
          `--js=${file('in.js')}`,
          `--js_output_file=${file('out.js')}`,
          `--create_source_map=${file('out.js.map')}`,
        ];
        // The native build where one exists for this platform, else the Java one.
        const native = getNativeImagePath();
        await run(native || 'java', native ? args : ['-jar', JAR_PATH, ...args], { maxBuffer: 1 << 26 }).catch((error) => {
          if (error.code != 'ENOENT') throw error;
          // No native build of this version for this platform (macOS and Linux on ARM have none yet).
          throw new Error(`Closure Compiler: no native build for ${process.platform}-${process.arch}, and no java on PATH to run its Java build: install a Java runtime (17 or later)`);
        });
        // The map points into the chunk as it came in: rollup chains it to the sources.
        return { code: await readFile(file('out.js'), 'utf8'), map: await readFile(file('out.js.map'), 'utf8') };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
