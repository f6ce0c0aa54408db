/**
 * Consent state (SPEC §5). An explicit `spdt('consent', …)` call wins over the `consent` option of
 * `conf`, whichever came first.
 */
export type ConsentState = 'granted' | 'pending' | 'denied';

export const isConsentState = (v: unknown): v is ConsentState => v === 'granted' || v === 'pending' || v === 'denied';

export function createConsent() {
  let state: ConsentState = 'granted';
  let explicit = false;
  return {
    get: () => state,
    /** Applies a state; returns false when an earlier explicit call overrides this option. */
    set(value: ConsentState, fromCommand: boolean): boolean {
      if (explicit && !fromCommand) return false;
      explicit = explicit || fromCommand;
      state = value;
      return true;
    },
  };
}
