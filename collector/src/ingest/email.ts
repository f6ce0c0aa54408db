/**
 * The email guard of SPEC §5, re-applied to what anyone may post: an email address in a URL
 * becomes `[email]`, and a free value that holds one is dropped.
 *
 * TODO(privacy branch): the tag's own rule is being added to `spdt-pixel/rules` as `hasEmail` and
 * `redactUrl` (branch `privacy`, `src/redact.ts`). Once merged, import both by name from
 * 'spdt-pixel/rules' and delete the interim fallbacks below. Until then the shared ones are used
 * as soon as the built entry exports them, and these stand in.
 */
import * as rules from 'spdt-pixel/rules';

type Shared = { hasEmail?: (text: string) => boolean; redactUrl?: (url: string) => string };
const shared = rules as unknown as Shared;

/** Interim: something@domain.tld, plain or percent-encoded (`%40`). */
const interimHasEmail = (text: string): boolean => /[^\s@]@[^\s@]+\.[a-z]{2}/i.test(text.replace(/%(25)*40/gi, '@'));
const interimRedactUrl = (url: string): string => url.replace(/[^/?#&=;]+/g, (part) => (hasEmail(part) ? '[email]' : part));

const sharedHasEmail = shared.hasEmail ?? interimHasEmail;
const sharedRedactUrl = shared.redactUrl ?? interimRedactUrl;

/**
 * Neither rule can find an email in a string without `@` and without `%` (nothing else decodes to
 * an `@`): most URLs and props skip the decoding, which is most of ingest's own CPU time.
 */
const mayHoldEmail = (text: string) => text.includes('@') || text.includes('%');

export const hasEmail = (text: string): boolean => mayHoldEmail(text) && sharedHasEmail(text);
export const redactUrl = (url: string): string => (mayHoldEmail(url) ? sharedRedactUrl(url) : url);
