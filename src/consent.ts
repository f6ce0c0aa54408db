/**
 * Consent states (SPEC §5). `pending` holds everything, `denied` drops and deletes, `granted`
 * sends. An explicit `spdt('consent', …)` call wins over the `consent` option of `conf`,
 * whichever came first (the pixel keeps that rule where it keeps the state).
 *
 * `test` converts its argument to a string, so a hostile value can throw: callers run inside
 * the pixel's catch-all.
 */
export type ConsentState = 'granted' | 'pending' | 'denied';

export const isConsentState = (v: unknown): v is ConsentState => /^(granted|pending|denied)$/.test(v as string);
