/**
 * The rules the tag and the collector share (SPEC §2, §5): validation, normalisation, hashing and
 * the email guard (`hasEmail`, and `redactUrl` for `url`/`referrer` and the image's `url`/`ref`).
 * The collector re-applies them to what anyone may post, so it imports this entry (`spdt-pixel/rules`)
 * instead of keeping a copy. Pure: no browser global is touched.
 */
export { validate, isEventCommand, text, type Warn, type Validated } from './validate';
export { sha256, hashIdentifier } from './hashing';
export { hasEmail, redactUrl } from './redact';
