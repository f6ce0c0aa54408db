/** Small helpers shared by every module. Nothing here touches the page. */

export type Props = Record<string, unknown>;

/** 32 lower-case hex characters: a UUID v4 without its dashes. */
export function hexId(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 15) | 64;
  b[8] = (b[8] & 63) | 128;
  return Array.from(b, (x) => (x | 256).toString(16).slice(1)).join('');
}

/**
 * A UUID v4 in its usual 8-4-4-4-12 form (the `event_id` a Conversions API send dedupes on): a dash
 * goes where 12, 16, 20 or 24 characters are left.
 */
export const uuid = (): string => hexId().replace(/(?=(.{4}){3,6}$)/g, '-');

/** Own-property test that `__proto__`, `constructor` and friends cannot fool. */
export const has = (o: object, k: string): boolean => ({}).hasOwnProperty.call(o, k);

/**
 * Runs `fn` and returns what it returns, or undefined when it throws: a tag must never break its
 * page, and the browser refuses many things (blocked cookies and storage, CSP, throwing getters).
 * Every entry point from the page runs inside it. (An alias for the calls that return nothing
 * would cost 11 B of gzip: Closure Compiler keeps it as a second variable.)
 */
export function attempt<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

/** Reads `o[k]`, swallowing throwing getters and proxy traps. */
export const read = (o: any, k: string): unknown => attempt(() => o?.[k]);

/** `JSON.parse` that returns undefined for anything unparseable. */
export const parseJson = (text: string | null): unknown => attempt(() => JSON.parse(text!));
