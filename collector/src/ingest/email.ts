/**
 * The email guard of SPEC §5, re-applied to what anyone may post: the tag's own rule
 * (`spdt-pixel/rules`), so an email address in a URL becomes `[email]` exactly as the tag does it.
 * The tag's `validate()` already drops props that hold one.
 */
import { hasEmail as sharedHasEmail, redactUrl as sharedRedactUrl } from 'spdt-pixel/rules';

/**
 * Neither rule can find an email in a string without `@` and without `%` (nothing else decodes to
 * an `@`): most URLs and props skip the decoding, which is most of ingest's own CPU time.
 */
const mayHoldEmail = (text: string) => text.includes('@') || text.includes('%');

export const hasEmail = (text: string): boolean => mayHoldEmail(text) && sharedHasEmail(text);
export const redactUrl = (url: string): string => (mayHoldEmail(url) ? sharedRedactUrl(url) : url);
