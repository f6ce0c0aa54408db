/**
 * The SQLite store's modules as plain JavaScript in a temporary directory, for what must run
 * outside vitest's TypeScript transform: the store's worker thread, and the durability test's child
 * process. TypeScript's transpileModule (no type check; `npm run build` does that), and a
 * node_modules link so the compiled files find better-sqlite3.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';

const sources = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'store');
const MODULES = ['sqlite', 'sqlite-core', 'sqlite-worker', 'schema', 'ip', 'types'];

export interface BuiltStore {
  /** file: URL of the compiled sqlite.js (exports openSqliteStore). */
  url: string;
  remove(): void;
}

export function buildStore(): BuiltStore {
  const root = mkdtempSync(join(tmpdir(), 'spdt-store-build-'));
  const out = join(root, 'store');
  mkdirSync(out);
  for (const name of MODULES) {
    const { outputText } = ts.transpileModule(readFileSync(join(sources, `${name}.ts`), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
    });
    writeFileSync(join(out, `${name}.js`), outputText);
  }
  writeFileSync(join(root, 'package.json'), '{"type":"module"}');
  const entry = createRequire(import.meta.url).resolve('better-sqlite3');
  symlinkSync(entry.slice(0, entry.lastIndexOf('/node_modules/') + '/node_modules'.length), join(root, 'node_modules'));
  return { url: pathToFileURL(join(out, 'sqlite.js')).href, remove: () => rmSync(root, { recursive: true, force: true }) };
}
