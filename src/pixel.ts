/**
 * The pixel: commands (SPEC §2), configuration (§3), the rules that hold events until a key and
 * consent allow them, and the wiring of identity, transport and route changes. Shared by the
 * `ping.min.js` tag and the npm entry.
 */
import { watchRoutes } from './spa';
import { captureClick, forgetIds, mergeAlias, resolveIds, type IdentityConfig } from './identity';
import { attempt, has, read, uuid, type Props } from './util';
import { redactUrl } from './redact';
import { isConsentState, type ConsentState } from './consent';
import { createTransport, type OutEvent, type Sent } from './transport';
import { isEventCommand, validate, type Warn } from './validate';

export type EventType = 'send' | 'warn';
export type Listener = (data: any) => void;

export interface Core {
  /** Runs one command; `time` and `url` are those of a call queued before the tag loaded. */
  call(command: unknown, props?: unknown, options?: unknown, time?: number, url?: string): void;
  on(type: EventType, fn: Listener): void;
  off(type: EventType, fn: Listener): void;
}

/** A tracked event that may still lack its key (held until a `conf` sets one). */
type Held = Omit<OutEvent, 'key'> & { key?: string };

const MAX_HELD = 100;
const VIEW_WINDOW = 1000;

export function createCore(defaultEndpoint: string): Core {
  // The defaults double as the schema: an option must have its default's type.
  const config: Props & IdentityConfig & { key: string; endpoint: string; spa: boolean; debug: boolean } = {
    key: '',
    endpoint: defaultEndpoint,
    cookies: true,
    cookie_domain: '',
    cookie_days: 365,
    click_days: 30,
    spa: true,
    debug: /[?&]spdt_debug=1/.test(location.search),
  };
  let held: Held[] = [];
  let lastView = ''; // key and URL of the last view sent
  let lastViewTime = 0;
  let consent: ConsentState = 'granted';
  let consentByCommand = false; // an explicit consent call wins over the conf option
  const listeners: Record<EventType, Listener[]> = { send: [], warn: [] };

  const emit = (type: EventType, data: unknown) => listeners[type].forEach((fn) => attempt(() => fn(data)));
  const log = (...args: unknown[]) => config.debug && console.log('[spdt]', ...args);
  const warner = (command: string): Warn => (field, reason) => {
    const message = `[spdt] ${command} ${field}: ${reason}`;
    console.warn(message);
    emit('warn', message);
  };

  const granted = () => consent == 'granted';
  const transport = createTransport(config, {
    header: (pid) => ({
      pid,
      ...resolveIds(config),
      opt_out_targeting: (navigator as { globalPrivacyControl?: boolean }).globalPrivacyControl || undefined,
    }),
    canSend: granted,
    warn: warner('outbox'),
    sent(info: Sent) {
      log('send', info);
      emit('send', info);
    },
  });

  /** Moves held events to the transport once consent and a key allow it. */
  function release() {
    if (!granted()) return;
    held = held.filter((e) => {
      e.key = e.key || config.key;
      if (e.key) transport.add(e as OutEvent);
      return !e.key;
    });
  }

  function configure(options: unknown) {
    const warn = warner('conf');
    if (!options || typeof options != 'object') return warn('options', 'not an object');
    for (const name of attempt(() => Object.keys(options)) || []) {
      const v = read(options, name);
      const known = has(config, name);
      if (name == 'consent') setConsent(v, false);
      else if (v === undefined) continue;
      // The only numbers are the lifetimes in days: 1–400 for __spdt, 1–30 for the click id. NaN is
      // refused by isFinite, not by the comparisons: the minifier may turn !(v >= 1) into v < 1.
      else if (!known || typeof v != typeof config[name] || (typeof v == 'number' && !(isFinite(v) && v >= 1 && v <= (name == 'click_days' ? 30 : 400))))
        warn(name, known ? 'not a valid ' + typeof config[name] : 'unknown option');
      else config[name] = typeof v == 'string' ? v.trim().replace(/\/+$/, '') : v;
    }
    release();
  }

  function setConsent(state: unknown, fromCommand: boolean) {
    if (!isConsentState(state)) return warner('consent')('state', 'unknown');
    if (consentByCommand && !fromCommand) return;
    consentByCommand = consentByCommand || fromCommand;
    consent = state;
    if (state == 'denied') {
      held = [];
      transport.clear();
      forgetIds();
    }
    release();
  }

  // @noinline: Closure Compiler would inline it into call(), 11 B more gzip.
  /** @noinline */
  function track(command: string, props: unknown, options: unknown, time: number, url: string) {
    if (consent == 'denied') return;
    const warn = warner(command);
    const optionKey = read(options, 'key');
    const eventKey = typeof optionKey == 'string' && optionKey ? optionKey : config.key;
    // The key rides in every batch item: an oversized one could never fit a request.
    if (eventKey.length > 256) return warn('key', 'over 256, not sent');
    // Email addresses in the URLs become [email] here, so beacon and image carry the same (SPEC §5).
    const body: Props = { url: redactUrl(url), referrer: redactUrl(document.referrer) || undefined }; // undefined: left out of the JSON
    const { free } = validate(command, props, body, warn);
    if (command == 'custom' && !body.event_name) return warn('event_name', 'required');
    if (command == 'view') {
      if (lastView == eventKey + ' ' + url && time - lastViewTime < VIEW_WINDOW) return;
      lastView = eventKey + ' ' + url;
      lastViewTime = time;
    }
    if (command == 'alias') mergeAlias(body);
    const event_id = (body.event_id as string) || uuid();
    delete body.event_id;
    if (held.push({ key: eventKey, action: command, event_id, time, body, free }) > MAX_HELD) held.shift();
    release();
  }

  const core: Core = {
    call(command, props, options, time = Date.now(), url) {
      attempt(() => {
        const name = String(command);
        log(name, props);
        if (url) captureClick(url);
        if (name == 'conf') configure(props);
        else if (name == 'consent') setConsent(props, true);
        else if (isEventCommand(name)) track(name, props, options, time, url || location.href);
        else warner(name)('command', 'unknown');
      });
    },
    on: (type, fn) => attempt(() => has(listeners, type) && typeof fn == 'function' && listeners[type].push(fn)),
    off: (type, fn) => attempt(() => has(listeners, type) && (listeners[type] = listeners[type].filter((f) => f !== fn))),
  };

  // A page that froze its History API simply gets no automatic views.
  attempt(() =>
    watchRoutes(() => {
      captureClick(location.href);
      if (config.spa) core.call('view');
    }),
  );
  return core;
}
