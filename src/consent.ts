/**
 * Consent states (SPEC §5). `pending` holds everything, `denied` drops and deletes, `granted`
 * sends. An explicit `spdt('consent', …)` call wins over the `consent` option of `conf`,
 * whichever came first (the pixel keeps that rule where it keeps the state).
 */
export type ConsentState = 'granted' | 'pending' | 'denied';

export const isConsentState = (v: unknown): v is ConsentState => v === 'granted' || v === 'pending' || v === 'denied';
