/**
 * The base code a site pastes into its `<head>` (SPEC §1, §7): our minified loader, which records
 * each queued call's time and URL, with `conf` and `view`, and the noscript image.
 */

export interface SnippetOptions {
  key: string;
  /** Where `ping.min.js` is served from. */
  src: string;
  /** Collector base URL; default: the directory of `src`. */
  endpoint?: string;
  /** CSP nonce for the inline script. */
  nonce?: string;
  /** For pages enforcing Trusted Types: an inline stub plus a `<script async src>` tag, no script `src` set from script. */
  trustedTypes?: boolean;
  /**
   * `conf`'s consent at load (SPEC §5). `pending` or `denied` also leaves the noscript image out:
   * without script no banner can ask, so nothing may be sent.
   */
  consent?: 'pending' | 'granted' | 'denied';
}

/** A JavaScript string literal that cannot close the surrounding `<script>`. */
const js = (v: string) => JSON.stringify(v).replace(/</g, '\\u003c');
const attr = (v: string) => v.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

/** The stub: queues [time, url, arguments] until the tag replaces it. */
const STUB = 's=w.spdt=function(){s.q.push([Date.now(),location.href,arguments])},s.q=[]';

export function snippet(options: SnippetOptions): string {
  const { key, src, endpoint, trustedTypes, consent } = options;
  const nonce = options.nonce ? ` nonce="${attr(options.nonce)}"` : '';
  const conf = `key:${js(key)}${endpoint ? ',endpoint:' + js(endpoint) : ''}${consent ? ',consent:' + js(consent) : ''}`;
  const calls = `spdt("conf",{${conf}});spdt("view")`;
  const collector = (endpoint || src.split(/[?#]/)[0].replace(/\/[^/]*$/, '')).replace(/\/+$/, '');
  const script = trustedTypes
    ? `<script${nonce}>!function(w,s){w.spdt||(${STUB})}(window);${calls}</script>\n` +
      `<script async id="spdt-capture" src="${attr(src)}"${nonce}></script>`
    : `<script${nonce}>!function(w,d,s,e){w.spdt||(${STUB},e=d.createElement("script"),` +
      `e.id="spdt-capture",e.async=1,e.src=${js(src)},d.head.appendChild(e))}(window,document);${calls}</script>`;
  const noscript =
    `<noscript><img height="1" width="1" style="display:none" alt="" ` +
    `src="${attr(collector)}/v1/img?key=${attr(encodeURIComponent(key))}&amp;a=view&amp;ns=1"></noscript>\n`;
  return script + '\n' + (consent && consent != 'granted' ? '' : noscript);
}
