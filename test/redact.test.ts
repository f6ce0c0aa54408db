// Unit tests of src/redact.ts, the email guard of SPEC §5: `hasEmail` (no string holding an email
// address leaves the browser) and `redactUrl` (such parts of body.url / body.referrer become [email]).
// Both are also what the collector imports from `spdt-pixel/rules`.
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { hasEmail, redactUrl } from '../src/redact';
import * as rules from '../src/rules';

/** Runs `fn`, failing (instead of hanging the test run) when it takes longer than `ms`. */
function finishesWithin(ms: number, fn: () => void): boolean {
  try {
    vm.runInNewContext('fn()', { fn }, { timeout: ms });
    return true;
  } catch (e) {
    if ((e as { code?: string }).code == 'ERR_SCRIPT_EXECUTION_TIMEOUT') return false;
    throw e;
  }
}

describe('§5 hasEmail', () => {
  it.each([
    'ann@example.com',
    'Ann.Doe@Example.COM',
    'ann+news@shop.example.co.uk',
    'ann_o-k@mail.example',
    'contact ann@example.com today',
    'ann%40example.com',
    'ann%2540example.com',
    'ann%252540example.com',
    'ann%40example%2Ecom',
    'ann%2Bnews%40example.com',
    'mailto:ann@example.com',
    'ann@bücher.de',
  ])('finds the address in %j', (text) => {
    expect(hasEmail(text)).toBe(true);
  });

  it.each([
    '',
    'plain text',
    '@ann',
    'hello @ann.example',
    'ann@localhost',
    'pkg@1.2.3',
    'lodash@4.17.21',
    'ann @ example.com',
    'ann@ example.com',
    'x@y.z',
    '50% off @ the shop',
    '%40ann',
    'ann%example.com',
  ])('finds none in %j', (text) => {
    expect(hasEmail(text)).toBe(false);
  });

  it('never throws on a malformed percent sequence', () => {
    for (const text of ['%', '%E0%A4%A', 'ann%4', '%%40', '%uD800', 'ann%40example.com%'])
      expect(() => hasEmail(text)).not.toThrow();
    expect(hasEmail('ann%40example.com%')).toBe(true);
  });

  it('is linear: hostile megabyte strings finish quickly', () => {
    for (const hostile of ['a@'.repeat(1 << 19), 'a%40'.repeat(1 << 18), '%2540a'.repeat(1 << 17), 'a@' + 'b'.repeat(1 << 20), 'a@b.'.repeat(1 << 18) + '1'])
      expect(finishesWithin(2000, () => hasEmail(hostile))).toBe(true);
  });
});

describe('§5 redactUrl', () => {
  it.each([
    ['a percent-encoded query value', 'https://shop.example/welcome?email=ann%40example.com', 'https://shop.example/welcome?email=[email]'],
    ['a plain query value', 'https://shop.example/welcome?email=ann@example.com&step=2', 'https://shop.example/welcome?email=[email]&step=2'],
    ['a plus in the address', 'https://shop.example/?e=ann+news@example.com&x=1', 'https://shop.example/?e=[email]&x=1'],
    ['an encoded plus', 'https://shop.example/?e=ann%2Bnews%40example.com', 'https://shop.example/?e=[email]'],
    ['a double-encoded value', 'https://shop.example/?e=ann%2540example.com', 'https://shop.example/?e=[email]'],
    ['an upper-case address', 'https://shop.example/?E=ANN%40EXAMPLE.COM', 'https://shop.example/?E=[email]'],
    ['a search phrase around it', 'https://shop.example/search?q=contact+ann%40example.com+please', 'https://shop.example/search?q=[email]'],
    ['several addresses', 'https://shop.example/?to=ann@example.com&cc=bob%40example.org&n=3', 'https://shop.example/?to=[email]&cc=[email]&n=3'],
    ['a fragment with its own query', 'https://app.example/#/signup?email=ann%40example.com&plan=pro', 'https://app.example/#/signup?email=[email]&plan=pro'],
    ['a plain fragment value', 'https://app.example/page#email=ann@example.com', 'https://app.example/page#email=[email]'],
    ['a URL inside a query', 'https://shop.example/login?next=%2Fwelcome%3Femail%3Dann%2540example.com&x=1', 'https://shop.example/login?next=[email]&x=1'],
    ['a path segment', 'https://shop.example/unsubscribe/ann@example.com/confirm', 'https://shop.example/unsubscribe/[email]/confirm'],
    ['an encoded path segment', 'https://shop.example/u/ann%40example.com', 'https://shop.example/u/[email]'],
    ['a matrix parameter', 'https://shop.example/p;email=ann@example.com;x=1', 'https://shop.example/p;email=[email];x=1'],
    ['a key that is one', 'https://shop.example/?ann%40example.com', 'https://shop.example/?[email]'],
    ['beside a malformed escape', 'https://shop.example/?bad=%E0%A4%A&e=ann%40example.com%', 'https://shop.example/?bad=%E0%A4%A&e=[email]'],
  ])('redacts %s', (_name, url, redacted) => {
    expect(redactUrl(url)).toBe(redacted);
  });

  it.each([
    'https://shop.example/products/1?ref=x&utm_source=podcast#reviews',
    'https://medium.example/@ann/my-post?source=@home',
    'https://cdn.example/npm/lodash@4.17.21/lodash.min.js',
    'https://shop.example/search?q=50%25+off+%40+the+shop',
    'https://shop.example/?spclid=abc123&sp_click_id=def',
    'http://localhost:8080/examples/shop/index.html',
    '',
  ])('leaves %j as it is', (url) => {
    expect(redactUrl(url)).toBe(url);
  });

  it('leaves no spelling of the address in the result', () => {
    const url =
      'https://shop.example/a/ann@example.com?e=ann%40example.com&d=ann%2540example.com&p=ann+x@example.com#/s?e=ann%40example.com';
    const out = redactUrl(url);
    expect(out).not.toMatch(/ann|example\.com/i);
    expect(out).toBe('https://shop.example/a/[email]?e=[email]&d=[email]&p=[email]#/s?e=[email]');
  });

  it('keeps a redacted URL parseable, with the same origin and path', () => {
    const out = new URL(redactUrl('https://shop.example/welcome?email=ann%40example.com&step=2#top'));
    expect(out.origin).toBe('https://shop.example');
    expect(out.pathname).toBe('/welcome');
    expect(out.searchParams.get('email')).toBe('[email]');
    expect(out.searchParams.get('step')).toBe('2');
    expect(out.hash).toBe('#top');
  });

  it('is linear on a hostile two-megabyte URL', () => {
    const url = 'https://shop.example/?q=' + 'a%40'.repeat(1 << 19) + '&r=' + 'a@'.repeat(1 << 18);
    expect(finishesWithin(3000, () => redactUrl(url))).toBe(true);
  });

  it('is exported by the shared rules entry (spdt-pixel/rules) for the collector', () => {
    expect(rules.redactUrl).toBe(redactUrl);
    expect(rules.hasEmail).toBe(hasEmail);
  });
});
