/**
 * SHA-256 in plain JavaScript, synchronous on purpose.
 *
 * `crypto.subtle` is missing on plain-http pages and is asynchronous everywhere else; an async hash
 * would make events wait (and could lose them at `pagehide`). Identifiers are a few dozen bytes, so
 * a synchronous hash costs microseconds and keeps the send path simple: no call ever waits.
 */

const K: number[] = [];
const H0: number[] = [];

/**
 * The constants are the first 32 bits of the fractional parts of the square roots (H0) and cube
 * roots (K) of the first primes: computing them is smaller than shipping the table. Computed on the
 * first hash, not when the tag loads (most pages never hash anything).
 */
function constants() {
  for (let n = 2, found = 0; found < 64; n++) {
    let divisor = 2;
    while (n % divisor) divisor++;
    if (divisor == n) {
      if (found < 8) H0[found] = ((n ** (1 / 2) % 1) * 2 ** 32) | 0;
      K[found++] = ((n ** (1 / 3) % 1) * 2 ** 32) | 0;
    }
  }
}

// @noinline: Closure Compiler would inline it at its twelve calls, 24 B more gzip.
/** @noinline */
const rotate = (x: number, n: number) => (x >>> n) | (x << (32 - n));

/** Lower-case hex SHA-256 of the UTF-8 bytes of `text`. */
export function sha256(text: string): string {
  const data = new TextEncoder().encode(text);
  const length = data.length;
  // The message, a 1 bit, zeros, and the 64-bit bit length, in whole 64-byte blocks.
  const bytes = new Uint8Array((length + 72) & ~63);
  bytes.set(data);
  bytes[length] = 0x80;
  const view = new DataView(bytes.buffer);
  view.setUint32(bytes.length - 4, length * 8);

  if (!K[0]) constants();
  let hash = H0;
  for (let j = 0; j < bytes.length; j += 64) {
    const w: number[] = [];
    let s = hash;
    for (let i = 0; i < 64; i++) {
      const x = w[i - 15];
      const y = w[i - 2];
      w[i] =
        i < 16
          ? view.getInt32(j + i * 4)
          : (w[i - 16] + (rotate(x, 7) ^ rotate(x, 18) ^ (x >>> 3)) + w[i - 7] + (rotate(y, 17) ^ rotate(y, 19) ^ (y >>> 10))) | 0;
      const [a, b, c, d, e, f, g, h] = s;
      const t1 = h + (rotate(e, 6) ^ rotate(e, 11) ^ rotate(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
      const t2 = (rotate(a, 2) ^ rotate(a, 13) ^ rotate(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      s = [(t1 + t2) | 0, a, b, c, (d + t1) | 0, e, f, g];
    }
    hash = hash.map((v, i) => (v + s[i]) | 0);
  }
  return hash.map((v) => (v >>> 0).toString(16).padStart(8, '0')).join('');
}

/**
 * Normalises and hashes an email or phone number the way Spotify's Conversions API expects.
 * A value that is already a SHA-256 (64 hex) is passed through, lower-cased, never hashed twice.
 * Returns undefined when nothing is left after normalising.
 */
export function hashIdentifier(field: string, value: string): string | undefined {
  if (/^[0-9a-f]{64}$/i.test(value)) return value.toLowerCase();
  const normal = field == 'email' ? value.toLowerCase() : value.replace(/\D/g, '').replace(/^00/, '');
  return normal ? sha256(normal) : undefined;
}
