/**
 * The email guard of SPEC §5: no string that holds an email address leaves the browser, and in a
 * URL each part that holds one (a query or fragment value, a path segment) becomes `[email]`.
 * Pure, shared with the collector through `spdt-pixel/rules`.
 */

/**
 * Does `text` hold something@domain.tld, plain or percent-encoded up to three times (`%40`,
 * `%2540`: a URL inside a query)? `unescape`, not `decodeURIComponent`: it never throws on a
 * malformed `%`, and the decoded form is only tested, never sent. Linear in the length of `text`.
 */
export const hasEmail = (text: string): boolean => /[^\s@]@[^\s@]+\.[a-z]{2}/i.test(unescape(unescape(unescape(text))));

/**
 * Replaces each part of `url` between `/ ? # & = ;` that holds an email address by `[email]`; a
 * fragment such as `#/signup?email=…` is split the same way.
 */
export const redactUrl = (url: string): string => url.replace(/[^/?#&=;]+/g, (part) => (hasEmail(part) ? '[email]' : part));
