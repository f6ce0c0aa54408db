// Unit tests of src/hashing.ts: the synchronous pure-JS SHA-256 (SPEC §5: hashing must work on
// plain-http pages, where crypto.subtle is missing) and the identifier normalisation of `alias` and
// of the PII guard.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { hashIdentifier, sha256 } from '../src/hashing';

/** Node's own SHA-256 of the UTF-8 bytes of `text`: the reference. */
const reference = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** A deterministic PRNG (mulberry32), so a failure can be reproduced. */
function seeded(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random string mixing ASCII, 2-, 3- and 4-byte UTF-8 characters. */
function randomText(random: () => number, length: number): string {
  const ranges: [number, number][] = [
    [0x20, 0x7e],
    [0x00, 0x1f],
    [0xa0, 0x7ff],
    [0x800, 0xd7ff],
    [0xe000, 0xfffd],
    [0x10000, 0x10ffff],
  ];
  let out = '';
  for (let i = 0; i < length; i++) {
    const [lo, hi] = ranges[Math.floor(random() * ranges.length)];
    out += String.fromCodePoint(lo + Math.floor(random() * (hi - lo + 1)));
  }
  return out;
}

const HEX64 = /^[0-9a-f]{64}$/;

describe('sha256: published test vectors (FIPS 180-2)', () => {
  it.each([
    ['the empty string', '', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
    ['"abc"', 'abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
    [
      'the 448-bit message',
      'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq',
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
    ],
    [
      'the 896-bit message',
      'abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu',
      'cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1',
    ],
    ['one million "a"', 'a'.repeat(1_000_000), 'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0'],
  ])('hashes %s', (_name, input, expected) => {
    expect(sha256(input)).toBe(expected);
  });
});

describe('sha256: agrees with node:crypto', () => {
  it('on a 1,000-character string', () => {
    const text = 'The quick brown fox jumps over the lazy dog. '.repeat(23).slice(0, 1000);
    expect(text).toHaveLength(1000);
    expect(sha256(text)).toBe(reference(text));
  });

  it('hashes the UTF-8 bytes of multi-byte text', () => {
    for (const text of ['é', '😀', 'é😀', '€', 'ü@exämple.de', '日本語のメール', '\u0000', '\uffff']) {
      expect(sha256(text), JSON.stringify(text)).toBe(reference(text));
    }
  });

  it('around the padding boundaries (55, 56, 63, 64, 65 bytes and the next block)', () => {
    for (const bytes of [0, 1, 54, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129]) {
      const ascii = 'x'.repeat(bytes);
      expect(sha256(ascii), `${bytes} ASCII bytes`).toBe(reference(ascii));
      // The same byte lengths reached with 2-byte characters (and one ASCII byte when odd).
      const wide = 'é'.repeat(bytes >> 1) + (bytes & 1 ? 'a' : '');
      expect(Buffer.byteLength(wide)).toBe(bytes);
      expect(sha256(wide), `${bytes} bytes of 2-byte characters`).toBe(reference(wide));
    }
  });

  it('on every length from 0 to 200 bytes', () => {
    for (let n = 0; n <= 200; n++) {
      const text = String.fromCharCode(...Array.from({ length: n }, (_, i) => 33 + ((i * 7 + n) % 90)));
      expect(sha256(text), `length ${n}`).toBe(reference(text));
    }
  });

  it('on a seeded set of random strings', () => {
    const random = seeded(20250101);
    for (let i = 0; i < 300; i++) {
      const text = randomText(random, Math.floor(random() * 300));
      expect(sha256(text), JSON.stringify(text)).toBe(reference(text));
    }
  });

  it('always returns 64 lower-case hex characters', () => {
    const random = seeded(7);
    for (let i = 0; i < 50; i++) expect(sha256(randomText(random, i))).toMatch(HEX64);
  });
});

describe('hashIdentifier (SPEC §5 alias and PII guard)', () => {
  describe('email', () => {
    it('is lower-cased, then hashed', () => {
      expect(hashIdentifier('email', 'Jane.Doe@Example.COM')).toBe(reference('jane.doe@example.com'));
    });

    it('is the same hash for every casing of one address', () => {
      const hashes = new Set(['a@b.co', 'A@B.CO', 'a@B.co'].map((v) => hashIdentifier('email', v)));
      expect(hashes.size).toBe(1);
      expect([...hashes][0]).toBe(reference('a@b.co'));
    });

    it('keeps multi-byte characters (hashing their UTF-8 bytes)', () => {
      expect(hashIdentifier('email', 'Ünïcode@Exämple.de')).toBe(reference('ünïcode@exämple.de'));
    });

    it('returns undefined for an empty value', () => {
      expect(hashIdentifier('email', '')).toBeUndefined();
    });
  });

  describe('phone_number', () => {
    it.each([
      ['+44 20 7946 0958', '442079460958'],
      ['0044 20 7946 0958', '442079460958'],
      ['+1 (555) 010-9999', '15550109999'],
      ['555.010.9999', '5550109999'],
      ['07700 900123', '07700900123'],
      ['+0044 7700 900123', '447700900123'],
    ])('%s is hashed as the digits %s', (input, digits) => {
      expect(hashIdentifier('phone_number', input)).toBe(reference(digits));
    });

    it('adds no country code', () => {
      expect(hashIdentifier('phone_number', '7946 0958')).toBe(reference('79460958'));
      expect(hashIdentifier('phone_number', '7946 0958')).not.toBe(reference('4479460958'));
    });

    it('removes only a leading 00, not zeros elsewhere', () => {
      expect(hashIdentifier('phone_number', '1 00 200')).toBe(reference('100200'));
    });

    it.each(['', '+', '00', '()- .', 'no digits here'])('returns undefined when no digits are left: %j', (input) => {
      expect(hashIdentifier('phone_number', input)).toBeUndefined();
    });
  });

  describe('a value that is already a SHA-256', () => {
    const hashed = reference('jane@example.com');

    it.each(['email', 'phone_number'])('is passed through for %s, not hashed twice', (field) => {
      expect(hashIdentifier(field, hashed)).toBe(hashed);
      expect(hashIdentifier(field, hashed)).not.toBe(reference(hashed));
    });

    it.each(['email', 'phone_number'])('is lower-cased for %s', (field) => {
      expect(hashIdentifier(field, hashed.toUpperCase())).toBe(hashed);
    });

    it('is recognised only at exactly 64 hex characters', () => {
      const short = hashed.slice(0, 63);
      expect(hashIdentifier('email', short)).toBe(reference(short));
      const long = hashed + 'a';
      expect(hashIdentifier('email', long)).toBe(reference(long));
    });
  });
});
