/**
 * What an answer from Spotify means for the deliveries it carried (SPEC §9). Pure: the worker hands
 * in the answer, the clock and a random number, and gets back each delivery's outcome.
 */

/** The longest wait between tries, and how long a token-refused connection waits. */
export const MAX_DELAY_MS = 5 * 60_000;
/** How long the relay waits for an answer before it counts as none. */
export const TIMEOUT_MS = 10_000;
/** How much of an answer a delivery keeps. */
export const ERROR_BYTES = 1024;

/** What came back: an HTTP answer, or none (network error, timeout). */
export type HttpAnswer = { status: number; body: string; retryAfter?: string | null };
export type Answer = HttpAnswer | { error: string; timedOut?: boolean };

/**
 * - `delivered`: 2xx, every event of the request is in.
 * - `retry`: 408, 429, 5xx, no answer: the same request may succeed later.
 * - `token`: 401, 403: the connection's token is wrong; nothing about the events.
 * - `refused`: any other 4xx: something in the payload; never sent again unchanged.
 */
export type Verdict = 'delivered' | 'retry' | 'token' | 'refused';

export function verdict(answer: Answer): Verdict {
  if ('error' in answer) return 'retry';
  const { status } = answer;
  if (status >= 200 && status < 300) return 'delivered';
  if (status == 401 || status == 403) return 'token';
  if (status == 408 || status == 429) return 'retry';
  if (status >= 400 && status < 500) return 'refused';
  // 5xx, and anything unexpected (an unfollowed redirect): nothing says the events were taken or refused.
  return 'retry';
}

/** A refused request of several events is split, so one bad event cannot sink its neighbours. */
export const mustSplit = (v: Verdict, events: number): boolean => v == 'refused' && events > 1;

/**
 * The wait before the next try after `attempts` earlier tries: `retryMs` doubling, at most 5
 * minutes, stretched by up to a quarter at random so that retries do not arrive in lockstep.
 * Never shorter than `retryMs`.
 */
export function backoff(attempts: number, retryMs: number, random: number): number {
  const base = Math.min(MAX_DELAY_MS, retryMs * 2 ** Math.min(attempts, 30));
  return Math.min(MAX_DELAY_MS, Math.max(retryMs, base * (1 + 0.25 * random)));
}

/** `Retry-After` in milliseconds from `now`: delta seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null | undefined, now: number): number | undefined {
  if (!header) return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  // An HTTP date names its weekday or month; a bare '-5' would otherwise parse as a year.
  const date = /[a-z]{3}/i.test(value) ? Date.parse(value) : NaN;
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export interface RetryClock {
  now: number;
  /** When the delivery was first tried; undefined: this was its first try. */
  firstAttemptAt?: number;
  maxAgeMs: number;
}

/**
 * After a failed try: pending again at `now + waitMs` (never before `notBeforeMs` from now), or dead
 * once `maxAgeMs` have passed since the first try. The last wait is cut short at the deadline, so a
 * delivery gets a last try at its deadline rather than one 5 minutes past it.
 */
export function nextTry(clock: RetryClock, waitMs: number, notBeforeMs = 0): { state: 'pending'; next_attempt_at: number } | { state: 'dead' } {
  const deadline = (clock.firstAttemptAt ?? clock.now) + clock.maxAgeMs;
  if (clock.now >= deadline) return { state: 'dead' };
  return { state: 'pending', next_attempt_at: Math.max(clock.now + notBeforeMs, Math.min(clock.now + waitMs, deadline)) };
}

/** The text with every occurrence of the secret replaced (an answer may echo the request's header). */
export function scrub(text: string, secret: string): string {
  return secret ? text.split(secret).join('[token]') : text;
}

/** At most `ERROR_BYTES` bytes of UTF-8, never ending inside a character. */
export function firstBytes(text: string, bytes = ERROR_BYTES): string {
  const buffer = Buffer.from(text);
  if (buffer.length <= bytes) return text;
  let end = bytes;
  while (end > 0 && (buffer[end] & 0xc0) == 0x80) end--;
  return buffer.subarray(0, end).toString();
}

/** What a delivery keeps of an answer: scrubbed of the token first, then cut to 1 KiB. */
export function answerText(answer: Answer, token: string): string {
  if ('error' in answer) return firstBytes(scrub(answer.error, token));
  if (answer.status == 401 || answer.status == 403) return `${answer.status} from Spotify: token refused (check the connection's token)`;
  return firstBytes(scrub(answer.body ? `${answer.status} from Spotify: ${answer.body}` : `${answer.status} from Spotify, empty answer`, token));
}

/** The answer of an event refused alone, kept as it came (the first 1 KiB), scrubbed. */
export function refusalText(answer: HttpAnswer, token: string): string {
  return firstBytes(scrub(answer.body || `${answer.status} from Spotify, empty answer`, token));
}
