/**
 * What an engine reports on the page by itself (Firefox: as a script error, over BiDi) about
 * something the tag did and cannot do otherwise: kept apart from the errors a tag must never
 * cause, so that expectClean() still fails on any other message.
 *
 * Firefox reports every cookie write it refuses. The tag finds the root domain (SPEC §4) by writing
 * a probe cookie at each wider domain until one is refused — the public suffix (`co.uk` for
 * www.example.co.uk) always is, and with no public-suffix list in a 5 kB tag, trying is the only
 * way to know. Chromium and WebKit refuse such a write silently.
 */
const NOTICES = [/^(Error: )?Cookie “__spdt_probe” has been rejected for invalid domain\.$/];

export const isEngineNotice = (text: string): boolean => NOTICES.some((n) => n.test(text));

/** Globals the automation itself puts on a page (Playwright's BiDi driver for Firefox), not the tag. */
export const DRIVER_GLOBALS = ['__pw_bidiInsertText'];
