/**
 * The rules the tag and the collector share (SPEC §2, §5): validation, normalisation and hashing.
 * The collector re-applies them to what anyone may post, so it imports this entry (`spdt-pixel/rules`)
 * instead of keeping a copy. Pure: no browser global is touched.
 */
export { validate, isEventCommand, text, type Warn, type Validated } from './validate';
export { sha256, hashIdentifier } from './hashing';
