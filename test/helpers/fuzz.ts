/**
 * The fault/fuzz generator shared by test/fuzz.test.ts (jsdom) and e2e/fuzz.spec.ts (Chromium).
 *
 * `makeFuzz(seed)` is one self-contained function: it references nothing outside its own body,
 * so the Playwright spec ships it into the page with `makeFuzz.toString()` and the page builds
 * its hostile values in its own realm. Keep it that way: no imports, no module-level values used
 * inside it, nothing a transpiler would turn into a helper call (classes with fields, enums,
 * decorators); types only outside.
 *
 * Each call is generated from its own PRNG stream, seeded from (seed, index), so
 * `makeFuzz(seed).call(index)` reproduces any single call exactly, without replaying the run.
 * A call's `describe()` prints it safely (hostile values are labelled when they are made, never
 * touched when printed).
 *
 * Besides calls, the factory gives the oracles both runners share: `checkBody(text)` (a request
 * body against SPEC §2/§6) and `snapshot()` / `pollution(snapshot)` (built-in prototypes and
 * constructors unchanged, no `polluted` name reachable from plain values).
 */

export interface FuzzOptions {
  /** Pixel keys the generator uses for `conf({key})` and `{key}` options, besides random strings. */
  keys?: string[];
  /**
   * Endpoints `conf` may set. Default: a few absolute and relative URLs plus random strings.
   * With a list given, only its entries are used as string endpoints (a real browser would
   * otherwise send beacons to unreachable hosts); non-string endpoints are still generated.
   */
  endpoints?: string[];
  /** Allow `conf({debug: true})` (logs every command to the console). Default true. */
  debug?: boolean;
  /**
   * Allow pixel keys (and endpoints) of huge random strings, up to 100 KB. Default true. With false,
   * keys are at most 4,000 characters.
   */
  hugeKeys?: boolean;
}

export interface FuzzCall {
  seed: number;
  index: number;
  /** `call`: the pixel function; `on` / `off`: listener methods (args = [type, fn]). */
  method: 'call' | 'on' | 'off';
  /** The arguments, exactly as passed (their count varies: trailing ones may be missing). */
  args: unknown[];
  /** A number in [0, 1) a runner may use to choose how the call enters (function, method, stub…). */
  route: number;
  /** A printable description of the call (hostile values by their labels). */
  describe(): string;
}

export interface Fuzz {
  seed: number;
  /** The event commands of SPEC §2 (not conf / consent). */
  events: string[];
  call(index: number): FuzzCall;
  /** Problems with one request body (empty when it is valid v1 per SPEC §2 and §6). */
  checkBody(text: string): string[];
  /** UTF-8 byte length (no Buffer needed: works in the page too). */
  byteLength(text: string): number;
  /** The built-ins' own properties, to compare after the run. */
  snapshot(): unknown;
  /** What changed since `snapshot` (added, removed or replaced properties), and polluted probes. */
  pollution(before: unknown): string[];
}

export function makeFuzz(seed: number, options: FuzzOptions = {}): Fuzz {
  // ------------------------------------------------------------------------------------------
  // PRNG: mulberry32, one stream per call, seeded by a 32-bit mix of (seed, index).
  function mulberry32(a: number) {
    return function () {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  function mix(a: number, b: number): number {
    let h = Math.imul((a ^ 0x9e3779b9) >>> 0, 0x85ebca6b) ^ Math.imul(b + 0x7f4a7c15, 0xc2b2ae35);
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  }
  let rand = mulberry32(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const chance = (p: number) => rand() < p;
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)];
  /** Picks by weight: [[weight, make], …]. */
  function weighted<T>(table: [number, () => T][]): T {
    let total = 0;
    for (const row of table) total += row[0];
    let x = rand() * total;
    for (const row of table) if ((x -= row[0]) < 0) return row[1]();
    return table[table.length - 1][1]();
  }
  /** 0–120, mostly small (about 4 on average): the count of free props or line items. */
  const count = (max: number) => weighted<number>([[85, () => int(0, 3)], [13, () => int(4, 20)], [2, () => int(21, max)]]);

  // ------------------------------------------------------------------------------------------
  // The contract's tables (SPEC §2).
  const PRODUCT = ['product_id', 'product_name', 'product_type', 'product_vendor', 'variant_id', 'variant_name'];
  const MONEY = ['value', 'currency'];
  const NAMED: Record<string, string[]> = {
    view: [],
    product: MONEY.concat(PRODUCT),
    addtocart: MONEY.concat(PRODUCT, ['quantity']),
    checkout: MONEY.concat(['discount_code', 'quantity', 'line_items']),
    purchase: MONEY.concat(['discount_code', 'order_id', 'is_new_customer', 'quantity', 'line_items'], PRODUCT),
    lead: MONEY.concat(['type', 'category']),
    signup: ['sign_up_method'],
    custom: MONEY.concat(['event_name']),
    alias: ['id', 'partner_user_id', 'click_id'],
  };
  for (let i = 1; i <= 5; i++) NAMED['custom_event_' + i] = MONEY;
  const EVENTS = Object.keys(NAMED);
  const LINE_ITEM = PRODUCT.concat(['value', 'quantity']);
  const ALL_NAMED = ['discount_code', 'order_id', 'is_new_customer', 'quantity', 'line_items', 'type', 'category',
    'sign_up_method', 'event_name', 'id', 'partner_user_id', 'click_id'].concat(MONEY, PRODUCT);
  const CONF = ['key', 'endpoint', 'cookies', 'cookie_domain', 'cookie_days', 'click_days', 'consent', 'spa', 'debug'];
  const FREE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
  const RESERVED = /^(__proto__|constructor|prototype|url|referrer|trunc|hashed_\w*)$/;
  const HEX32 = /^[0-9a-f]{32}$/;
  const HEX64 = /^[0-9a-f]{64}$/;
  /** Names the pollution payloads try to plant on prototypes. */
  const PROBES = ['polluted', 'isAdmin', '__spdtFuzz'];

  // ------------------------------------------------------------------------------------------
  // Labels: hostile values are described by what they are, never by touching them.
  // One map for the whole run: its keys are held weakly, so labelled values are still collected.
  const labels = new WeakMap<object, string>();
  function label<T>(value: T, text: string): T {
    labels.set(value as unknown as object, text);
    return value;
  }
  // One Error per message, thrown again and again: capturing a stack for every throw is slow.
  const errors: Record<string, Error> = {};
  const boom = (what: string) => () => {
    throw (errors[what] = errors[what] || new Error('fuzz: ' + what));
  };
  /** An own, enumerable property, whatever its name (`__proto__` included: never a prototype set). */
  function put(target: object, name: string, value: unknown): void {
    try {
      // Assignment is much faster; only `__proto__` would set a prototype instead of a property.
      if (name === '__proto__') Object.defineProperty(target, name, { value, enumerable: true, writable: true, configurable: true });
      else (target as Record<string, unknown>)[name] = value;
    } catch {
      // an array's `length`, say: that prop is simply not there
    }
  }
  const own = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);
  /** `table[name]` for own entries only (a prop named `hasOwnProperty` must not find Object.prototype's). */
  const entry = <T>(table: Record<string, T>, name: string): T | undefined => (own(table, name) ? table[name] : undefined);

  // ------------------------------------------------------------------------------------------
  // Strings and numbers.
  let hugeCache: string[] | undefined;
  /** Strings of about 100 KB (kept: building them for every call would be slow). */
  function huge(): string {
    hugeCache = hugeCache || [
      'x'.repeat(100000),
      '  ' + '\u00e9'.repeat(50000) + '  ',
      '\ud83d\ude00'.repeat(30000),
      '\u0000\u001f"\\<'.repeat(20000),
      'ab'.repeat(4000) + ' ' + 'c'.repeat(92000),
    ];
    return pick(hugeCache);
  }
  const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_';
  const word = (min: number, max: number) => {
    let s = '';
    for (let n = int(min, max); n > 0; n--) s += ALNUM[int(0, ALNUM.length - 1)];
    return s;
  };
  const ODD = [
    '', ' ', '   ', '\t\n', '\u00a0\u2003', '\ufeff', 'null', 'undefined', 'NaN', '0', '-1', 'true',
    '\u00fcn\u00efc\u00f8d\u00e9', '\u4e2d\u6587', '\ud83d\ude00\ud83c\udf89', 'e\u0301', '\u202eevil', '\ud800', '\udfff', 'a\ud800b',
    '</script><script>alert(1)</script>', '"\'\\`${x}', '%00%zz', '\u0000', '\r\n\u2028\u2029', '__proto__', 'constructor',
    '{"__proto__":{"polluted":1}}', 'https://evil.example/?a=1&b=2#h', 'x'.repeat(255), 'y'.repeat(256), 'z'.repeat(257),
    ' ' + 'w'.repeat(256) + ' ', 'v'.repeat(255) + '\ud83d\ude00', 'u'.repeat(254) + ' \ud83d\ude00',
  ];
  function str(): string {
    return weighted<string>([
      [55, () => word(1, 12)],
      [10, () => (chance(0.5) ? ' ' : '') + word(1, 20) + ' ' + word(1, 20) + (chance(0.5) ? '  ' : '')],
      [22, () => pick(ODD)],
      [8, () => word(200, 300)],
      [4, () => 'm'.repeat(int(257, 4000))],
      [1, huge],
    ]);
  }
  const NUMBERS = [0, -0, 1, -1, 0.1, 79.99, 5000, 1e21, 1e-7, Number.MAX_VALUE, Number.MIN_VALUE,
    Number.MAX_SAFE_INTEGER + 2, NaN, Infinity, -Infinity, 2 ** 53, -(2 ** 31)];
  const num = () => (chance(0.5) ? pick(NUMBERS) : chance(0.5) ? int(0, 100000) : Math.round(rand() * 1e6) / 100);

  // ------------------------------------------------------------------------------------------
  // Hostile values.
  function throwingGetters(): object {
    const o = {};
    const names = ['value', 'currency', 'line_items', 'event_id', 'key', 'email', word(1, 8)];
    for (let n = int(1, 4); n > 0; n--) {
      Object.defineProperty(o, pick(names), { get: boom('getter'), enumerable: true, configurable: true });
    }
    return label(o, '{throwing getters}');
  }
  function changingGetters(): object {
    const o = {};
    let reads = 0;
    for (const name of ['value', 'currency', 'event_id', 'key', 'product_id', 'email']) {
      Object.defineProperty(o, name, {
        get: () => [5, 'usd', 'id-' + reads, undefined, {}, 'a@b.c'][reads++ % 6],
        enumerable: true,
        configurable: true,
      });
    }
    return label(o, '{getters returning a different value on each read}');
  }
  function throwingProxy(target: object = {}): object {
    const b = boom('trap');
    const traps = weighted<ProxyHandler<object>>([
      [3, () => ({ get: b, has: b, ownKeys: b, getOwnPropertyDescriptor: b, getPrototypeOf: b, set: b, defineProperty: b, apply: b })],
      [2, () => ({ get: b })],
      [2, () => ({ ownKeys: b })],
      [2, () => ({ getOwnPropertyDescriptor: b })],
      [1, () => ({ getPrototypeOf: b, has: b })],
      [1, () => ({ ownKeys: () => ['a', 'a'] })], // duplicates: Object.keys throws a TypeError
      [1, () => ({ ownKeys: () => [1 as unknown as string] })], // not a property key
    ]);
    return label(new Proxy(target, traps), 'Proxy(throwing ' + Object.keys(traps).join('/') + ')');
  }
  function revoked(): object {
    const r = Proxy.revocable({ value: 1 }, {});
    r.revoke();
    return label(r.proxy, 'Proxy(revoked)');
  }
  function nestingProxy(): object {
    const handler: ProxyHandler<object> = {
      ownKeys: () => ['value', 'currency', 'line_items', 'key', 'x'],
      getOwnPropertyDescriptor: () => ({ enumerable: true, configurable: true, value: undefined }),
      get: () => p,
    };
    const p: object = new Proxy({}, handler);
    return label(p, 'Proxy(every property is the proxy itself)');
  }
  function cyclic(): object {
    const o: Record<string, unknown> = { a: 1, value: 3, currency: 'EUR' };
    put(o, 'self', o);
    const list: unknown[] = [o];
    list.push(list);
    put(o, 'list', list);
    put(o, 'line_items', list);
    label(list, '[cyclic array]');
    return label(o, '{cyclic}');
  }
  function deep(): object {
    const o: Record<string, unknown> = {};
    let at = o;
    for (let i = 0; i < 1000; i++) {
      const next = {};
      put(at, 'd', next);
      at = next;
    }
    return label(o, '{1000 levels deep}');
  }
  function coercionTrap(): object {
    const o = {};
    for (const name of ['toString', 'valueOf', 'toJSON']) put(o, name, boom(name));
    put(o, Symbol.toPrimitive as unknown as string, boom('toPrimitive'));
    return label(o, '{throwing toString/valueOf/toJSON/toPrimitive}');
  }
  function pollutionPayload(): object {
    const text = pick([
      '{"__proto__":{"polluted":true}}',
      '{"constructor":{"prototype":{"polluted":true}}}',
      '{"__proto__":{"isAdmin":true},"prototype":{"__spdtFuzz":1}}',
      '{"__proto__":{"__proto__":{"polluted":"deep"}}}',
    ]);
    return label(JSON.parse(text), text);
  }
  function oddObject(): unknown {
    return weighted<unknown>([
      [2, () => label(Object.create(null), 'Object.create(null)')],
      [1, () => label(new Date(chance(0.5) ? 0 : NaN), 'Date')],
      [1, () => label(/re/g, '/re/g')],
      [1, () => label(new Map([['value', 1]]), 'Map')],
      [1, () => label(new Set([1]), 'Set')],
      [1, () => label(new Error('e'), 'Error')],
      [1, () => label(new Uint8Array(4), 'Uint8Array(4)')],
      [1, () => label(new ArrayBuffer(8), 'ArrayBuffer(8)')],
      [1, () => label(Promise.resolve(1), 'Promise(resolved)')],
      [1, () => label(new String('usd'), "new String('usd')")],
      [1, () => label(new Number(5), 'new Number(5)')],
      [1, () => label(new Boolean(false), 'new Boolean(false)')],
      [1, () => label(Object.freeze({ value: 1, currency: 'EUR' }), 'frozen {value:1,currency:EUR}')],
      [1, () => label(new WeakMap(), 'WeakMap')],
      [1, () => label(Object.create({ value: 7, key: 'inherited' }), 'object inheriting value/key')],
    ]);
  }
  function fn(): unknown {
    return weighted<unknown>([
      [2, () => label(function named() {}, 'function')],
      [1, () => label(() => 1, 'arrow')],
      [1, () => label(boom('called'), 'throwing function')],
      [1, () => {
        const f = function withProps() {};
        put(f, 'value', 5);
        put(f, 'currency', 'usd');
        return label(f, 'function with value/currency props');
      }],
      [1, () => label(class K {}, 'class')],
    ]);
  }
  /** Any value at all, mostly wrong for whatever wants it. */
  function atom(): unknown {
    return weighted<unknown>([
      [6, () => str()],
      [5, () => num()],
      [3, () => undefined],
      [3, () => null],
      [2, () => chance(0.5)],
      [2, () => Symbol(word(0, 4))],
      [2, () => BigInt(int(0, 1000))],
      [3, () => oddObject()],
      [2, () => fn()],
      [2, () => label([1, 'a', null], '[1,"a",null]')],
      [1, () => ({ nested: { value: 1 } })],
      [1, throwingGetters],
      [1, changingGetters],
      [1, () => throwingProxy()],
      [1, revoked],
      [1, nestingProxy],
      [1, cyclic],
      [1, coercionTrap],
      [1, pollutionPayload],
      [0.05, deep],
    ]);
  }

  // ------------------------------------------------------------------------------------------
  // Field values: valid ones (as SPEC §2 accepts them) and invalid ones.
  const VALID: Record<string, () => unknown> = {
    value: () => pick<unknown>([0, 1, 79.99, 5000, 1e21, Number.MIN_VALUE, '5000', '79.99', ' 12.5 ', '.5', '5.', int(0, 1e6), Math.round(rand() * 1e5) / 100]),
    currency: () => pick(['usd', 'EUR', ' gbp ', 'sek', 'Jpy', 'NOK\n']),
    quantity: () => pick<unknown>([0, 1, 2, '3', ' 4 ', '2.0', int(0, 1000), 1e21]),
    is_new_customer: () => pick<unknown>([true, false, 'true', 'false']),
    line_items: () => lineItems(),
  };
  const INVALID: Record<string, () => unknown> = {
    value: () => pick<unknown>([-1, -0.01, NaN, Infinity, -Infinity, '', ' ', 'abc', '1e3', '-5', '0x10', '1,000', '\uff15', '5 5', true]),
    currency: () => pick<unknown>(['\u00a3', 'US', 'USDD', '12A', '', 'u$d', 840, '\u00c4\u00d6\u00dc', 'usd;', 'us d']),
    quantity: () => pick<unknown>([-1, 2.5, '2.5', NaN, 'two', Infinity, true, '-3', '1e2']),
    is_new_customer: () => pick<unknown>(['TRUE', 'yes', 1, 0, '', 'False']),
    line_items: () => hostileLineItems(),
  };
  function named(name: string): unknown {
    if (chance(0.75)) return (entry(VALID, name) || str)();
    return ((chance(0.5) && entry(INVALID, name)) || atom)();
  }

  function lineItem(): unknown {
    if (chance(0.12)) return atom();
    const entry: Record<string, unknown> = {};
    for (const name of LINE_ITEM) if (chance(0.45)) put(entry, name, named(name));
    if (chance(0.2)) put(entry, pick(['color', 'email', 'phone_number', 'sku', '__proto__', 'nested', 'url', 'hashed_x']), atom());
    if (chance(0.02)) return throwingProxy(entry);
    return entry;
  }
  function lineItems(): unknown[] {
    const list: unknown[] = [];
    for (let n = count(120); n > 0; n--) list.push(lineItem());
    return list;
  }
  function hostileLineItems(): unknown {
    return weighted<unknown>([
      [4, () => atom()],
      [2, () => label(lineItems().concat(new Array(int(1, 10))), 'line items with holes')],
      [1, () => {
        const sparse: unknown[] = [];
        sparse.length = 4294967295;
        sparse[5] = { product_id: 'p', value: 1 };
        return label(sparse, 'sparse array of length 2^32-1');
      }],
      [1, () => label(new Proxy([lineItem(), lineItem()], { get: boom('array get') }), 'Proxy([items], throwing get)')],
      [1, () => {
        const a = lineItems();
        put(a, 'slice', boom('slice'));
        put(a, 'forEach', boom('forEach'));
        return label(a, 'array with throwing own slice/forEach');
      }],
      [1, () => {
        const a = [lineItem()];
        Object.defineProperty(a, 'constructor', { get: boom('constructor'), configurable: true });
        return label(a, 'array with throwing constructor (species)');
      }],
      [1, () => label({ length: 3, 0: { product_id: 'a' }, 1: null }, 'array-like object')],
      [1, () => label(Object.freeze(lineItems()), 'frozen line items')],
      [1, () => {
        const a = lineItems();
        put(a, 'extra', 'x');
        put(a, '__proto__', { polluted: true });
        return label(a, 'line items with own extra and __proto__ props');
      }],
      [1, cyclic],
    ]);
  }

  const EMAILS = ['User@Example.com', '  a.b+tag@shop.example.co.uk  ', 'A@B.C', 'not-an-email', '@', '\u00fc@\u00e9.de',
    'ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789', 'e'.repeat(64), 'f'.repeat(65), 'g'.repeat(64)];
  const PHONES = ['+46 70-123 45 67', '0046701234567', '(555) 123-4567', '+', 'abc', '00', '+0046', '1'.repeat(300),
    'ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789'];
  const pii = (name: string) =>
    weighted<unknown>([
      [6, () => pick(name == 'email' ? EMAILS : PHONES)],
      [1, () => (name == 'email' ? word(1, 10) + '@' + word(1, 10) + '.com' : int(1e6, 1e11))],
      [2, () => atom()],
      [0.3, huge],
    ]);

  // ------------------------------------------------------------------------------------------
  // Free prop names and values.
  const SPECIAL_NAMES = ['__proto__', 'constructor', 'prototype', 'hashed_x', 'hashed_email', 'hashed_phone_number', 'url',
    'referrer', 'trunc', 'email', 'phone_number', 'event_id', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf',
    'action', 'body', 'pid', 'uid', 'sid', 'v', 'batch', 'time', 'length', '0', '1', '', ' ', 'a-b', 'a b', '1abc', '$x',
    '\u00fcml\u00e4ut', '\u4e2d', '\ud83d\ude00', 'x'.repeat(64), 'y'.repeat(65), '_', '_'.repeat(64), 'A'.repeat(1000)];
  const freeName = () =>
    weighted<string>([
      [70, () => pick(['utm_', 'gift_', 'note', 'x', '_', 'Score', 'a1']) + word(0, 10)],
      [20, () => pick(SPECIAL_NAMES)],
      [8, () => pick(ALL_NAMED.concat(CONF))],
      [1, () => 'k'.repeat(chance(0.9) ? int(65, 300) : int(301, 5000))],
      [1, () => (chance(0.1) ? huge() : str())],
    ]);
  const freeValue = () =>
    weighted<unknown>([
      [40, str],
      [20, num],
      [10, () => chance(0.5)],
      [30, atom],
    ]);

  // ------------------------------------------------------------------------------------------
  // Props, options, conf.
  function container(): Record<string, unknown> {
    return weighted<Record<string, unknown>>([
      [90, () => ({})],
      [5, () => label(Object.create(null), 'Object.create(null) props')],
      [3, () => label(Object.create({ value: 5, currency: 'usd', product_id: 'inherited' }), 'props inheriting value/currency')],
      [2, () => label([] as unknown as Record<string, unknown>, 'array used as props')],
    ]);
  }
  function wrap(props: Record<string, unknown>): unknown {
    return weighted<unknown>([
      [92, () => props],
      [2, () => label(Object.freeze(props), 'frozen props')],
      [2, () => label(new Proxy(props, {}), 'Proxy(props, transparent)')],
      [2, () => throwingProxy(props)],
      [1, () => {
        Object.defineProperty(props, 'value', { get: boom('value getter'), enumerable: true, configurable: true });
        return label(props, 'props with throwing value getter');
      }],
      [1, () => {
        put(props, 'later', 'x');
        Object.defineProperty(props, 'hidden', { value: 'h', enumerable: false });
        put(props, Symbol('s') as unknown as string, 'symbol-keyed');
        return label(props, 'props with non-enumerable and symbol keys');
      }],
    ]);
  }
  function props(command: string): unknown {
    if (chance(0.07)) return atom();
    const p = container();
    const fields = NAMED[command] || [];
    for (const name of fields) if (chance(command == 'custom' && name == 'event_name' ? 0.85 : 0.5)) put(p, name, named(name));
    if (chance(0.2)) put(p, 'event_id', weighted<unknown>([[5, () => 'evt-' + word(4, 12)], [2, () => pick(['', 'e'.repeat(128), 'e'.repeat(129)])], [2, atom]]));
    if (chance(command == 'alias' ? 0.7 : 0.06)) put(p, 'email', pii('email'));
    if (chance(command == 'alias' ? 0.6 : 0.06)) put(p, 'phone_number', pii('phone_number'));
    if (chance(0.08)) {
      const other = pick(ALL_NAMED);
      put(p, other, named(other));
    }
    for (let n = count(120); n > 0; n--) put(p, freeName(), freeValue());
    if (chance(0.02)) {
      const payload = pollutionPayload() as Record<string, unknown>;
      for (const name of Object.keys(payload)) put(p, name, payload[name]);
    }
    return wrap(p);
  }

  const KEYS = (options.keys || []).concat(['5a1c965e567a45f7832cc5ba7a37faf7', 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb']);
  const DEFAULT_ENDPOINTS = ['https://collector.example', 'https://collector.example/px/', '', '/relative', 'https://cdn.example.com/px',
    'javascript:alert(1)', 'not a url', ' https://spaced.example/ ', 'https://collector.example///'];
  const ENDPOINTS = options.endpoints || DEFAULT_ENDPOINTS;
  const hugeKeys = options.hugeKeys !== false;
  const key = () =>
    weighted<unknown>([
      [60, () => pick(KEYS)],
      [15, () => word(1, 40)],
      [8, () => pick(['', ' ', ' ' + KEYS[0] + ' ', KEYS[0].toUpperCase(), '\u00fcnicode-key', '__proto__'])],
      [12, () => {
        const v = atom();
        return !hugeKeys && typeof v == 'string' ? v.slice(0, 4000) : v;
      }],
      [hugeKeys ? 0.5 : 0, () => (chance(0.5) ? huge() : 'K'.repeat(70000))],
    ]);
  function eventOptions(): unknown {
    return weighted<unknown>([
      [75, () => undefined],
      [13, () => ({ key: key() })],
      [6, atom],
      [2, () => label(Object.defineProperty({}, 'key', { get: boom('key getter'), enumerable: true }), '{key: throwing getter}')],
      [2, () => label({ key: throwingProxy() }, '{key: Proxy(throwing)}')],
      [2, () => throwingProxy({ key: pick(KEYS) })],
    ]);
  }
  const CONF_VALUES: Record<string, () => unknown> = {
    key,
    endpoint: () =>
      weighted<unknown>([
        [80, () => pick(ENDPOINTS)],
        [options.endpoints ? 0 : 10, str],
        [10, () => pick<unknown>([5, null, true, {}, label(['https://a.example'], '[url]')])],
        [hugeKeys && !options.endpoints ? 0.5 : 0, huge],
      ]),
    cookies: () => pick<unknown>([true, true, false, 'false', 0, null, 1]),
    cookie_domain: () => pick<unknown>(['', '', 'example.co.uk', '.shop.example.co.uk', 'co.uk', 'evil.example', 'localhost', 5, ' example.co.uk ']),
    cookie_days: () => pick<unknown>([1, 365, 400, 0, 401, 365.5, NaN, '30', Infinity, -1]),
    click_days: () => pick<unknown>([1, 30, 31, 0, 29.5, '7', NaN]),
    consent: () => pick<unknown>(['granted', 'granted', 'pending', 'denied', 'GRANTED', ' granted', '', 1, null]),
    spa: () => pick<unknown>([true, false, 'true', 0]),
    debug: () => (options.debug === false ? pick<unknown>([false, 'true', 0]) : pick<unknown>([false, false, false, 'true', 0, true])),
  };
  function conf(): unknown {
    if (chance(0.1)) return atom();
    const p = container();
    for (let n = int(0, 5); n > 0; n--) {
      const name = chance(0.85) ? pick(CONF) : freeName();
      put(p, name, (entry(CONF_VALUES, name) || atom)());
    }
    return wrap(p);
  }
  const consentState = () =>
    weighted<unknown>([
      [55, () => 'granted'],
      [15, () => 'denied'],
      [15, () => 'pending'],
      [15, () => (chance(0.5) ? pick(['Granted', 'granted ', 'yes', '', 'grantedx', 'denied\n']) : atom())],
    ]);
  const UNKNOWN = ['', 'VIEW', 'Purchase', ' view', 'view ', 'custom_event_0', 'custom_event_6', 'custom_event_10', '__proto__',
    'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'q', '_q', 'emit', 'on', 'off', 'init', 'track', 'page', 'identify',
    'conf ', 'consent\u0000', '\u4e2d'];
  const unknownCommand = () => weighted<unknown>([[6, () => pick(UNKNOWN)], [2, () => word(1, 20)], [6, atom], [0.3, huge]]);

  /** Listeners for `on` / `off`: one pool, so that `off` finds what `on` added. */
  const LISTENERS = [
    label(() => {}, 'noop listener'),
    label(boom('listener'), 'throwing listener'),
    label(() => {
      throw label(throwingProxy(), 'thrown proxy');
    }, 'listener throwing a proxy'),
    label((info: unknown) => {
      if (info && typeof info == 'object') put(info, 'body', 'mutated');
    }, 'listener mutating its argument'),
  ];

  // ------------------------------------------------------------------------------------------
  // Description.
  function describe(value: unknown, depth = 0, seen: unknown[] = []): string {
    try {
      if (typeof value == 'string') {
        return value.length > 80 ? JSON.stringify(value.slice(0, 40)) + '\u2026(' + value.length + ' chars)' : JSON.stringify(value);
      }
      if (typeof value == 'number') return Object.is(value, -0) ? '-0' : String(value);
      if (typeof value == 'bigint') return value + 'n';
      if (typeof value == 'symbol') return value.toString();
      if (value === undefined || value === null || typeof value == 'boolean') return String(value);
      const object = value as object;
      if (labels.has(object)) return labels.get(object)!;
      if (typeof value == 'function') return 'function';
      if (seen.indexOf(value) >= 0) return '<cycle>';
      if (depth > 3) return '\u2026';
      seen = seen.concat([value]);
      if (Array.isArray(value)) {
        const items = value.slice(0, 8).map((v) => describe(v, depth + 1, seen));
        return '[' + items.join(', ') + (value.length > 8 ? ', \u2026+' + (value.length - 8) : '') + ']';
      }
      const names = Object.keys(object);
      const shown = names.slice(0, 12).map((k) => describe(k) + ': ' + describe((object as Record<string, unknown>)[k], depth + 1, seen));
      return '{' + shown.join(', ') + (names.length > 12 ? ', \u2026+' + (names.length - 12) + ' keys' : '') + '}';
    } catch (e) {
      return '<undescribable: ' + String(e) + '>';
    }
  }

  // ------------------------------------------------------------------------------------------
  // Calls.
  function call(index: number): FuzzCall {
    rand = mulberry32(mix(seed, index));
    let method: FuzzCall['method'] = 'call';
    let args: unknown[];
    weighted<void>([
      [1, () => {
        method = chance(0.5) ? 'on' : 'off';
        args = [chance(0.85) ? pick(['send', 'warn']) : atom(), chance(0.9) ? pick(LISTENERS) : atom()];
      }],
      [1.2, () => (args = ['consent', consentState()])],
      [3, () => (args = ['conf', conf()])],
      [2.5, () => (args = [unknownCommand(), props('view'), eventOptions()])],
      [92.3, () => {
        const command = pick(EVENTS);
        args = [command, props(command), eventOptions()];
      }],
    ]);
    // Trailing arguments may be missing; rarely, there are none at all, or extra ones.
    let argc = args!.length;
    while (argc > 1 && args![argc - 1] === undefined) argc--;
    if (chance(0.01)) argc = 0;
    args = args!.slice(0, argc);
    if (chance(0.01)) args.push(atom(), atom());
    const route = rand();
    const result: FuzzCall = {
      seed,
      index,
      method,
      args,
      route,
      describe: () =>
        'seed ' + seed + ' call #' + index + ': spdt' + (method == 'call' ? '' : '.' + method) + '(' + args.map((a) => describe(a)).join(', ') + ')',
    };
    return result;
  }

  // ------------------------------------------------------------------------------------------
  // Oracle: one request body (SPEC §2 validation as sent, §5 PII, §6 wire format and size).
  function byteLength(text: string): number {
    return new TextEncoder().encode(text).length;
  }
  const isObject = (v: unknown): v is Record<string, any> => typeof v == 'object' && v !== null && !Array.isArray(v);
  const finite = (v: unknown) => typeof v == 'number' && isFinite(v);
  function checkString(v: unknown, at: string, problems: string[]): void {
    if (typeof v != 'string') problems.push(at + ' is a ' + typeof v + ', not a string');
    else if (!v.length) problems.push(at + ' is empty');
    else if (v.length > 256) problems.push(at + ' is ' + v.length + ' characters (over 256)');
    else if (v != v.trimStart()) problems.push(at + ' is not trimmed: ' + describe(v));
  }
  function checkField(name: string, v: unknown, at: string, problems: string[]): void {
    if (name == 'value') {
      if (!(finite(v) && (v as number) >= 0)) problems.push(at + ' = ' + describe(v) + ' is not a finite number >= 0');
    } else if (name == 'quantity') {
      if (!(Number.isInteger(v) && (v as number) >= 0)) problems.push(at + ' = ' + describe(v) + ' is not an integer >= 0');
    } else if (name == 'currency') {
      if (!(typeof v == 'string' && /^[A-Z]{3}$/.test(v))) problems.push(at + ' = ' + describe(v) + ' is not 3 upper-case letters');
    } else if (name == 'is_new_customer') {
      if (typeof v != 'boolean') problems.push(at + ' = ' + describe(v) + ' is not a boolean');
    } else if (name == 'line_items') {
      if (!Array.isArray(v)) return void problems.push(at + ' is not an array');
      if (v.length > 100) problems.push(at + ' has ' + v.length + ' entries (over 100)');
      v.forEach((entry, i) => {
        if (!isObject(entry)) return void problems.push(at + '[' + i + '] is not an object');
        for (const k of Object.keys(entry)) {
          if (LINE_ITEM.indexOf(k) < 0) problems.push(at + '[' + i + '] has key ' + describe(k));
          else checkField(k, entry[k], at + '[' + i + '].' + k, problems);
        }
      });
    } else checkString(v, at, problems);
  }
  /** Keys that must never appear anywhere in a body: raw PII and prototype names. */
  function forbiddenKeys(value: unknown, at: string, problems: string[]): void {
    const stack: [unknown, string][] = [[value, at]];
    while (stack.length) {
      const [v, where] = stack.pop()!;
      if (typeof v != 'object' || v === null) continue;
      for (const k of Object.keys(v)) {
        if (k == 'email' || k == 'phone_number') problems.push('raw PII key ' + where + '.' + k);
        if (k == '__proto__' || k == 'constructor' || k == 'prototype') problems.push('prototype key ' + where + '.' + k);
        stack.push([(v as Record<string, unknown>)[k], where + '.' + k]);
      }
    }
  }
  function checkEvent(e: unknown, at: string, problems: string[]): void {
    if (!isObject(e)) return void problems.push(at + ' is not an object');
    for (const k of Object.keys(e)) if (['action', 'event_id', 'time', 'body'].indexOf(k) < 0) problems.push(at + ' has key ' + describe(k));
    if (typeof e.action != 'string' || !own(NAMED, e.action)) problems.push(at + '.action ' + describe(e.action) + ' is not an event command');
    if (typeof e.event_id != 'string' || !e.event_id || e.event_id.length > 128) problems.push(at + '.event_id ' + describe(e.event_id) + ' is not a string of 1-128');
    if (!finite(e.time)) problems.push(at + '.time ' + describe(e.time) + ' is not a finite number');
    const body = e.body;
    if (!isObject(body)) return void problems.push(at + '.body is not an object');
    const fields = own(NAMED, e.action) ? NAMED[e.action] : [];
    let free = 0;
    for (const k of Object.keys(body)) {
      const v = body[k];
      const where = at + '.body.' + k;
      if (k == 'url') {
        if (typeof v != 'string') problems.push(where + ' is not a string');
      } else if (k == 'referrer') {
        if (typeof v != 'string' || !v) problems.push(where + ' is not a non-empty string');
      } else if (k == 'trunc') {
        if (v !== 1) problems.push(where + ' = ' + describe(v) + ', not 1');
      } else if (k == 'hashed_email' || k == 'hashed_phone_number') {
        if (typeof v != 'string' || !HEX64.test(v)) problems.push(where + ' = ' + describe(v) + ' is not 64 lower-case hex');
      } else if (fields.indexOf(k) >= 0) {
        checkField(k, v, where, problems);
      } else {
        free++;
        if (!FREE_NAME.test(k) || RESERVED.test(k)) problems.push('free prop name ' + describe(k) + ' at ' + at + '.body');
        if (typeof v == 'string') checkString(v, where, problems);
        else if (!(typeof v == 'boolean' || finite(v))) problems.push(where + ' = ' + describe(v) + ' is not a string/number/boolean');
      }
    }
    if (typeof body.url != 'string') problems.push(at + '.body.url is missing');
    if (free > 100) problems.push(at + '.body has ' + free + ' free props (over 100)');
    if (e.action == 'custom') checkString(body.event_name, at + '.body.event_name', problems);
  }
  function checkItem(item: unknown, at: string, problems: string[], pids: string[]): void {
    if (!isObject(item)) return void problems.push(at + ' is not an object');
    const known = ['pid', 'uid', 'sid', 'cid', 'alias', 'opt_out_targeting', 'events'];
    for (const k of Object.keys(item)) if (known.indexOf(k) < 0) problems.push(at + ' has key ' + describe(k));
    if (typeof item.pid != 'string' || !item.pid) problems.push(at + '.pid ' + describe(item.pid) + ' is not a non-empty string');
    else if (pids.indexOf(item.pid) >= 0) problems.push(at + '.pid ' + describe(item.pid) + ' has two batch items');
    else pids.push(item.pid);
    if (own(item, 'uid') && !(typeof item.uid == 'string' && HEX32.test(item.uid))) problems.push(at + '.uid is not 32 hex');
    if (!(typeof item.sid == 'string' && HEX32.test(item.sid))) problems.push(at + '.sid ' + describe(item.sid) + ' is not 32 hex');
    if (own(item, 'cid') && !(typeof item.cid == 'string' && item.cid)) problems.push(at + '.cid is not a non-empty string');
    if (own(item, 'alias')) {
      const alias = item.alias;
      if (!isObject(alias)) problems.push(at + '.alias is not an object');
      else
        for (const k of Object.keys(alias)) {
          if (k == 'hashed_email' || k == 'hashed_phone_number') {
            if (!(typeof alias[k] == 'string' && HEX64.test(alias[k]))) problems.push(at + '.alias.' + k + ' is not 64 lower-case hex');
          } else if (k == 'id' || k == 'partner_user_id' || k == 'click_id') checkString(alias[k], at + '.alias.' + k, problems);
          else problems.push(at + '.alias has key ' + describe(k));
        }
    }
    if (own(item, 'opt_out_targeting') && item.opt_out_targeting !== true) problems.push(at + '.opt_out_targeting is not true');
    if (!Array.isArray(item.events) || !item.events.length) return void problems.push(at + '.events is not a non-empty array');
    item.events.forEach((e: unknown, i: number) => checkEvent(e, at + '.events[' + i + ']', problems));
  }
  /** Where the longest string (key or value) of a parsed body is, to explain an oversized body. */
  function longest(value: unknown): string {
    let best = '';
    let length = -1;
    const stack: [unknown, string][] = [[value, 'payload']];
    while (stack.length) {
      const [v, at] = stack.pop()!;
      if (typeof v == 'string' && v.length > length) [best, length] = [at, v.length];
      if (typeof v != 'object' || v === null) continue;
      for (const k of Object.keys(v)) {
        if (k.length > length) [best, length] = [at + ' (a key)', k.length];
        stack.push([(v as Record<string, unknown>)[k], at + '.' + k.slice(0, 40)]);
      }
    }
    return best + ', ' + length + ' characters';
  }
  function checkBody(text: string): string[] {
    const problems: string[] = [];
    if (typeof text != 'string') return ['body is a ' + typeof text + ', not a string'];
    const size = byteLength(text);
    if (size > 65536) problems.push('body is ' + size + ' bytes (over 65536)');
    let payload: unknown;
    try {
      payload = JSON.parse(text);
    } catch (e) {
      return problems.concat('body is not JSON: ' + String(e));
    }
    if (!isObject(payload)) return problems.concat('body is not a JSON object');
    if (size > 65536) problems.push('its longest string: ' + longest(payload));
    for (const k of Object.keys(payload)) if (['v', 'sent_at', 'batch'].indexOf(k) < 0) problems.push('payload has key ' + describe(k));
    if (payload.v !== 1) problems.push('v is ' + describe(payload.v) + ', not 1');
    if (!finite(payload.sent_at)) problems.push('sent_at is not a finite number');
    if (!Array.isArray(payload.batch) || !payload.batch.length) return problems.concat('batch is not a non-empty array');
    const pids: string[] = [];
    payload.batch.forEach((item: unknown, i: number) => checkItem(item, 'batch[' + i + ']', problems, pids));
    forbiddenKeys(payload, 'payload', problems);
    return problems.slice(0, 20);
  }

  // ------------------------------------------------------------------------------------------
  // Oracle: built-ins unchanged, nothing polluted.
  function builtins(): [string, object][] {
    const g = globalThis as Record<string, any>;
    const list: [string, object][] = [['JSON', JSON], ['Math', Math], ['Reflect', Reflect]];
    for (const name of ['Object', 'Array', 'Function', 'String', 'Number', 'Boolean', 'Symbol', 'BigInt', 'RegExp', 'Date',
      'Promise', 'Map', 'Set', 'WeakMap', 'Error', 'TypeError', 'Uint8Array', 'URL', 'URLSearchParams', 'Blob', 'TextEncoder']) {
      if (typeof g[name] == 'function') list.push([name, g[name]], [name + '.prototype', g[name].prototype]);
    }
    list.push(['Iterator prototype', Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]()))]);
    list.push(['TypedArray.prototype', Object.getPrototypeOf(Uint8Array.prototype)]);
    return list;
  }
  function snapshot(): unknown {
    return builtins().map(([name, target]) => {
      const props: [PropertyKey, unknown, unknown, unknown][] = [];
      for (const k of Reflect.ownKeys(target)) {
        const d = Object.getOwnPropertyDescriptor(target, k)!;
        props.push([k, d.value, d.get, d.set]);
      }
      return [name, Object.getPrototypeOf(target), props];
    });
  }
  function pollution(before: unknown): string[] {
    const problems: string[] = [];
    const after = snapshot() as [string, unknown, [PropertyKey, unknown, unknown, unknown][]][];
    (before as typeof after).forEach(([name, proto, props], i) => {
      const [, protoNow, propsNow] = after[i];
      if (proto !== protoNow) problems.push(name + ': prototype replaced');
      const key = (k: PropertyKey) => (typeof k == 'symbol' ? k.toString() : k);
      for (const [k, value, get, set] of props) {
        const now = propsNow.find((p) => p[0] === k);
        if (!now) problems.push(name + '.' + String(key(k)) + ' removed');
        else if (now[1] !== value && !(value !== value && now[1] !== now[1])) problems.push(name + '.' + String(key(k)) + ' replaced');
        else if (now[2] !== get || now[3] !== set) problems.push(name + '.' + String(key(k)) + ' accessor replaced');
      }
      for (const [k] of propsNow) if (!props.some((p) => p[0] === k)) problems.push(name + '.' + String(key(k)) + ' added');
    });
    const plain: [string, unknown][] = [['{}', {}], ['[]', []], ['function', function () {}], ["''", ''], ['0', 0], ['Object.create(Object.prototype)', Object.create(Object.prototype)]];
    for (const [name, v] of plain) for (const probe of PROBES) if ((v as Record<string, unknown>)[probe] !== undefined) problems.push(name + '.' + probe + ' is polluted');
    return problems;
  }

  return { seed, events: EVENTS, call, checkBody, byteLength, snapshot, pollution };
}
