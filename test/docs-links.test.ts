// @vitest-environment node
/**
 * The repository documents itself and links nothing outside itself: on GitHub or npm a link to a
 * sibling directory or another site is dead or a dependency. Every markdown file's links must
 * resolve to a file of the repository; web links are allowed only to `http://localhost` examples.
 * Code blocks and code spans are examples, not links, and are not checked.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '..');

/** Markdown without fenced code blocks and code spans, where URLs are examples. */
const prose = (markdown: string) =>
  markdown.replace(/^( {0,3})(```|~~~)[^]*?^\1\2[^\n]*$/gm, '').replace(/(`+)[^`]+?\1/g, '');

/** Every link target in a markdown text: inline, reference, autolink, HTML, and bare URLs GitHub links. */
export function linkTargets(markdown: string): string[] {
  const text = prose(markdown);
  const patterns = [
    /\]\(\s*<?([^)\s>]+)>?(?:\s+["'(][^)]*)?\)/g, // [text](target "title"), ![alt](target)
    /^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm, // [label]: target
    /<((?:https?|ftp|mailto):[^>\s]+)>/gi, // <https://…>
    /\b(?:href|src)\s*=\s*["']([^"']+)["']/gi, // <a href="…">, <img src="…">
    /(?<![(<"'=\w])((?:https?:\/\/|www\.)[^\s)<>"'`]*[^\s)<>"'`.,;:!?*_~])/gi, // bare URLs, which GitHub links (without trailing punctuation)
  ];
  return [...new Set(patterns.flatMap((pattern) => Array.from(text.matchAll(pattern), (m) => m[1])))];
}

/** Why a link in `file` (relative to the repository root) is not allowed, or undefined. */
export function linkProblem(file: string, target: string, exists: (absolute: string) => boolean): string | undefined {
  if (/^http:\/\/localhost(?=[:/]|$)/i.test(target)) return undefined;
  if (/^(?:[a-z][a-z\d+.-]*:|\/\/|www\.)/i.test(target)) return 'leaves the repository';
  const local = decodeURI(target.replace(/[?#].*$/, ''));
  if (!local) return undefined; // #anchor in the same file
  const resolved = local.startsWith('/') ? path.join(ROOT, local) : path.resolve(ROOT, path.dirname(file), local);
  if (path.relative(ROOT, resolved).startsWith('..')) return 'leaves the repository';
  return exists(resolved) ? undefined : 'no such file';
}

const markdownFiles = () =>
  execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '*.md'], { cwd: ROOT, encoding: 'utf8' })
    .split('\n')
    .filter((file) => file && existsSync(path.join(ROOT, file)));

describe('markdown links', () => {
  it('finds the markdown files (README, docs, examples)', () => {
    expect(markdownFiles()).toEqual(expect.arrayContaining(['README.md', 'docs/protocol.md']));
  });

  it('stay inside the repository and point to files that exist', () => {
    const problems = markdownFiles().flatMap((file) =>
      linkTargets(readFileSync(path.join(ROOT, file), 'utf8'))
        .map((target) => [target, linkProblem(file, target, existsSync)])
        .filter(([, problem]) => problem)
        .map(([target, problem]) => `${file}: ${target} ${problem}`),
    );
    expect(problems).toEqual([]);
  });

  it('the checker sees links in prose, not in code', () => {
    const text = [
      'See [the spec](../shared/SPEC.md), <https://example.com>, www.example.org, and',
      '<a href="https://example.net">x</a>, [ok](docs/protocol.md#6-wire-protocol-v1) [top](#top).',
      '[ref]: https://example.com/ref',
      'Code is not a link: `https://cdn.example.com/ping.min.js`',
      '```html',
      '<script src="https://YOUR-HOST/ping.min.js"></script>',
      '```',
    ].join('\n');
    const targets = linkTargets(text);
    expect(targets.sort()).toEqual(
      [
        '../shared/SPEC.md', 'https://example.com', 'www.example.org', 'https://example.net',
        'docs/protocol.md#6-wire-protocol-v1', '#top', 'https://example.com/ref',
      ].sort(),
    );
    const problems = targets.map((t) => linkProblem('README.md', t, existsSync));
    expect(problems.filter(Boolean)).toHaveLength(5);
    expect(linkProblem('README.md', 'docs/protocol.md#6-wire-protocol-v1', existsSync)).toBeUndefined();
    expect(linkProblem('docs/privacy.md', 'protocol.md', existsSync)).toBeUndefined();
    expect(linkProblem('docs/privacy.md', 'nothing-here.md', existsSync)).toBe('no such file');
    expect(linkProblem('README.md', 'http://localhost:8080/', existsSync)).toBeUndefined();
    expect(linkProblem('README.md', 'http://localhost.evil.example/', existsSync)).toBe('leaves the repository');
  });
});
