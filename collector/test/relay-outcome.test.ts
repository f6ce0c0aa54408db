import { describe, expect, it } from 'vitest';
import {
  MAX_DELAY_MS,
  answerText,
  backoff,
  firstBytes,
  mustSplit,
  nextTry,
  refusalText,
  retryAfterMs,
  scrub,
  verdict,
} from '../src/relay/outcome.js';

describe('verdict', () => {
  it.each([
    [200, 'delivered'],
    [202, 'delivered'],
    [204, 'delivered'],
    [408, 'retry'],
    [429, 'retry'],
    [500, 'retry'],
    [502, 'retry'],
    [503, 'retry'],
    [504, 'retry'],
    [401, 'token'],
    [403, 'token'],
    [400, 'refused'],
    [404, 'refused'],
    [409, 'refused'],
    [413, 'refused'],
    [422, 'refused'],
    [302, 'retry'],
  ])('%i → %s', (status, expected) => {
    expect(verdict({ status, body: '' })).toBe(expected);
  });

  it('no answer is retried', () => {
    expect(verdict({ error: 'no answer within 10 s' })).toBe('retry');
  });

  it('only a refused request of several events is split', () => {
    expect(mustSplit('refused', 2)).toBe(true);
    expect(mustSplit('refused', 1)).toBe(false);
    expect(mustSplit('token', 50)).toBe(false);
    expect(mustSplit('retry', 50)).toBe(false);
  });
});

describe('backoff', () => {
  it('doubles from retryMs, stretched by at most a quarter, never below retryMs', () => {
    for (const random of [0, 0.5, 0.999]) {
      for (let attempts = 0; attempts < 8; attempts++) {
        const base = 1000 * 2 ** attempts;
        const wait = backoff(attempts, 1000, random);
        expect(wait).toBeGreaterThanOrEqual(base);
        expect(wait).toBeLessThanOrEqual(Math.min(MAX_DELAY_MS, base * 1.25));
      }
    }
    expect(backoff(0, 1000, 0)).toBe(1000);
    expect(backoff(3, 1000, 0)).toBe(8000);
    expect(backoff(3, 1000, 1)).toBe(10_000);
  });

  it('jitter spreads the waits', () => {
    expect(new Set([0, 0.3, 0.6, 0.9].map((r) => backoff(2, 1000, r))).size).toBe(4);
  });

  it('never more than 5 minutes, even after many tries', () => {
    expect(backoff(9, 1000, 1)).toBe(MAX_DELAY_MS);
    expect(backoff(1000, 1000, 0.5)).toBe(MAX_DELAY_MS);
    expect(MAX_DELAY_MS).toBe(300_000);
  });
});

describe('Retry-After', () => {
  const now = Date.parse('2026-01-23T12:00:00Z');
  it('delta seconds', () => {
    expect(retryAfterMs('7', now)).toBe(7000);
    expect(retryAfterMs(' 0 ', now)).toBe(0);
  });
  it('an HTTP date', () => {
    expect(retryAfterMs('Fri, 23 Jan 2026 12:00:30 GMT', now)).toBe(30_000);
    expect(retryAfterMs('Fri, 23 Jan 2026 11:00:00 GMT', now)).toBe(0);
  });
  it('absent or unreadable: nothing', () => {
    expect(retryAfterMs(null, now)).toBeUndefined();
    expect(retryAfterMs('', now)).toBeUndefined();
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs('-5', now)).toBeUndefined();
  });
});

describe('nextTry', () => {
  const maxAgeMs = 86_400_000;
  it('pending after the wait', () => {
    expect(nextTry({ now: 1000, maxAgeMs }, 500)).toEqual({ state: 'pending', next_attempt_at: 1500 });
    expect(nextTry({ now: 1000, firstAttemptAt: 0, maxAgeMs }, 500)).toEqual({ state: 'pending', next_attempt_at: 1500 });
  });

  it('never sooner than Retry-After, even past the 5-minute cap', () => {
    expect(nextTry({ now: 1000, maxAgeMs }, 500, 2000)).toEqual({ state: 'pending', next_attempt_at: 3000 });
    expect(nextTry({ now: 0, maxAgeMs }, MAX_DELAY_MS, 600_000)).toEqual({ state: 'pending', next_attempt_at: 600_000 });
  });

  it('dead once max age has passed since the first try', () => {
    expect(nextTry({ now: maxAgeMs, firstAttemptAt: 0, maxAgeMs }, 500)).toEqual({ state: 'dead' });
    expect(nextTry({ now: maxAgeMs + 1, firstAttemptAt: 0, maxAgeMs }, 500)).toEqual({ state: 'dead' });
    expect(nextTry({ now: maxAgeMs - 1, firstAttemptAt: 0, maxAgeMs }, 500)).toEqual({ state: 'pending', next_attempt_at: maxAgeMs });
  });

  it('the first failure starts the clock (no first try yet)', () => {
    expect(nextTry({ now: 5000, maxAgeMs: 1000 }, 300)).toEqual({ state: 'pending', next_attempt_at: 5300 });
    expect(nextTry({ now: 5000, maxAgeMs: 0 }, 300)).toEqual({ state: 'dead' });
  });

  it('the last wait is cut at the deadline', () => {
    expect(nextTry({ now: 900, firstAttemptAt: 0, maxAgeMs: 1000 }, 5000)).toEqual({ state: 'pending', next_attempt_at: 1000 });
  });
});

describe('what a delivery keeps of an answer', () => {
  const token = 'tok-SECRET-123';
  it('scrubs the token wherever it is echoed', () => {
    expect(scrub(`Bearer ${token} is not ${token}`, token)).toBe('Bearer [token] is not [token]');
    expect(scrub('nothing', '')).toBe('nothing');
    expect(answerText({ status: 400, body: `bad header Bearer ${token}` }, token)).not.toContain(token);
    expect(answerText({ error: `connect to ${token}` }, token)).not.toContain(token);
    expect(refusalText({ status: 400, body: `{"auth":"${token}"}` }, token)).toBe('{"auth":"[token]"}');
  });

  it('scrubs before cutting, so no piece of a token survives at the cut', () => {
    const body = 'x'.repeat(1020) + token;
    expect(refusalText({ status: 400, body }, token)).toBe('x'.repeat(1020) + '[tok');
  });

  it('the first 1 KiB, never inside a character', () => {
    expect(Buffer.byteLength(firstBytes('y'.repeat(5000)))).toBe(1024);
    const cut = firstBytes('z'.repeat(1023) + 'é');
    expect(cut).toBe('z'.repeat(1023));
    expect(firstBytes('short')).toBe('short');
  });

  it('says who answered what', () => {
    expect(answerText({ status: 503, body: 'busy' }, token)).toBe('503 from Spotify: busy');
    expect(answerText({ status: 502, body: '' }, token)).toBe('502 from Spotify, empty answer');
    expect(answerText({ status: 401, body: 'whatever' }, token)).toMatch(/^401 from Spotify: token refused/);
    expect(refusalText({ status: 400, body: '' }, token)).toBe('400 from Spotify, empty answer');
  });
});
