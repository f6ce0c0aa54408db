// Unit tests of src/validate.ts: the validation and normalisation rules of SPEC §2 (and the PII
// guard of §5), called directly as `validate(command, props, body, warn)`.
import { createHash } from 'node:crypto';
import vm from 'node:vm';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { isEventCommand, validate, type Warn } from '../src/validate';

type Props = Record<string, unknown>;

const PAGE = 'https://shop.example.co.uk/products/1?ref=x';
const REFERRER = 'https://search.example/?q=shirt';
const sha = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** Every warn spy created by a test, checked for well-formed calls after it. */
let spies: ReturnType<typeof vi.fn<Warn>>[] = [];

afterEach(() => {
  // Every warning is one call naming the field and giving a reason.
  for (const spy of spies)
    for (const call of spy.mock.calls) {
      expect(call).toHaveLength(2);
      expect(typeof call[0]).toBe('string');
      expect(typeof call[1]).toBe('string');
      expect((call[1] as string).length).toBeGreaterThan(0);
    }
  spies = [];
});

/** Runs `validate` on a body that already holds url and referrer, as the pixel does. */
function run(command: string, props: unknown) {
  const warn = vi.fn<Warn>(() => undefined);
  spies.push(warn);
  const body: Props = { url: PAGE, referrer: REFERRER };
  const result = validate(command, props, body, warn);
  const fields = () => warn.mock.calls.map((c) => c[0]);
  return { body: result.body, free: result.free, warn, fields, same: result.body === body };
}

/** The body minus the url and referrer that were there before validation. */
function props(body: Props): Props {
  const { url, referrer, ...rest } = body;
  return rest;
}

/** Runs `fn`, failing (instead of hanging the test run) when it takes longer than `ms`. */
function finishesWithin(ms: number, fn: () => void): boolean {
  try {
    vm.runInNewContext('fn()', { fn }, { timeout: ms });
    return true;
  } catch (e) {
    if ((e as { code?: string }).code == 'ERR_SCRIPT_EXECUTION_TIMEOUT') return false;
    throw e;
  }
}

const own = (o: object, key: string) => Object.prototype.hasOwnProperty.call(o, key);

const throwing = () => {
  throw new Error('hostile');
};

describe('§2 validate: the result', () => {
  it('fills the body it was given, keeping url and referrer, and lists the free props', () => {
    const r = run('view', { plan: 'pro' });
    expect(r.same).toBe(true);
    expect(r.body).toEqual({ url: PAGE, referrer: REFERRER, plan: 'pro' });
    expect(r.free).toEqual(['plan']);
    expect(r.warn).not.toHaveBeenCalled();
  });

  it('hands a valid event_id back in the body, not as a free prop (the pixel sends it beside the body)', () => {
    const r = run('purchase', { event_id: 'abc-123', order_id: 'A1' });
    expect(r.body).toEqual({ url: PAGE, referrer: REFERRER, event_id: 'abc-123', order_id: 'A1' });
    expect(r.free).toEqual([]);
  });

  it('skips null and undefined props silently', () => {
    const r = run('purchase', { value: null, currency: undefined, order_id: null, plan: undefined });
    expect(props(r.body)).toEqual({});
    expect(r.warn).not.toHaveBeenCalled();
  });
});

describe('§2 value', () => {
  it.each([0, 1, 79.99, 5000, 1e9])('keeps the number %s', (value) => {
    const r = run('purchase', { value, currency: 'USD' });
    expect(r.body.value).toBe(value);
    expect(r.warn).not.toHaveBeenCalled();
  });

  it.each([
    ['5000', 5000],
    ['79.99', 79.99],
    ['0', 0],
    ['0.5', 0.5],
  ])('turns the numeric string %j into the number %s', (value, expected) => {
    const r = run('purchase', { value, currency: 'USD' });
    expect(r.body.value).toBe(expected);
    expect(r.warn).not.toHaveBeenCalled();
  });

  it.each([
    ['a negative number', -1],
    ['a negative numeric string', '-5'],
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['-Infinity', -Infinity],
    ['a word', 'abc'],
    ['a boolean', true],
    ['an object', { amount: 5 }],
  ])('drops %s with one warning naming value', (_name, value) => {
    const r = run('purchase', { value, currency: 'USD', order_id: 'A1' });
    expect(r.body).not.toHaveProperty('value');
    expect(r.fields()).toEqual(['value']);
    // The event is still sent with its other fields.
    expect(props(r.body)).toEqual({ currency: 'USD', order_id: 'A1' });
  });

  it('validates value on every command that names it', () => {
    for (const command of ['product', 'addtocart', 'checkout', 'purchase', 'lead', 'custom', 'custom_event_1', 'custom_event_5']) {
      const r = run(command, { value: '12.5', currency: 'EUR' });
      expect(r.body.value, command).toBe(12.5);
      const bad = run(command, { value: -3, currency: 'EUR' });
      expect(bad.body, command).not.toHaveProperty('value');
      expect(bad.fields(), command).toEqual(['value']);
    }
  });
});

describe('§2 currency', () => {
  it.each([
    ['usd', 'USD'],
    ['Eur', 'EUR'],
    ['GBP', 'GBP'],
    [' sek ', 'SEK'],
  ])('%j is sent as %j', (currency, expected) => {
    const r = run('purchase', { value: 1, currency });
    expect(r.body.currency).toBe(expected);
    expect(r.warn).not.toHaveBeenCalled();
  });

  it.each(['£', '$', 'US', 'USDX', 'U$D', '€UR', 840, true])('drops %j with one warning naming currency', (currency) => {
    const r = run('purchase', { currency, order_id: 'A1' });
    expect(r.body).not.toHaveProperty('currency');
    expect(r.fields()).toEqual(['currency']);
    expect(r.body.order_id).toBe('A1');
  });

  it('warns about an event with a value and no currency, and still keeps the value', () => {
    const r = run('purchase', { value: 10 });
    expect(r.body.value).toBe(10);
    expect(r.fields()).toEqual(['currency']);
  });

  it('warns about an event with a value and an invalid currency, keeping the value', () => {
    const r = run('lead', { value: 10, currency: '£' });
    expect(r.body.value).toBe(10);
    expect(r.body).not.toHaveProperty('currency');
    expect(r.fields().length).toBeGreaterThan(0);
    expect(r.fields().every((f) => f == 'currency')).toBe(true);
  });

  it('does not warn about a missing currency when there is no value', () => {
    expect(run('purchase', { order_id: 'A1' }).warn).not.toHaveBeenCalled();
  });
});

describe('§2 quantity', () => {
  it.each([
    [0, 0],
    [3, 3],
    ['3', 3],
    ['12', 12],
  ])('%j is sent as %j', (quantity, expected) => {
    const r = run('addtocart', { quantity });
    expect(r.body.quantity).toBe(expected);
    expect(r.warn).not.toHaveBeenCalled();
  });

  it.each([2.5, '2.5', -1, '-1', 'abc', NaN, Infinity, true])('drops %s with one warning naming quantity', (quantity) => {
    const r = run('addtocart', { quantity, product_id: 'p1' });
    expect(r.body).not.toHaveProperty('quantity');
    expect(r.fields()).toEqual(['quantity']);
    expect(r.body.product_id).toBe('p1');
  });

  it('is validated on checkout and purchase too', () => {
    expect(run('checkout', { quantity: '4' }).body.quantity).toBe(4);
    expect(run('purchase', { quantity: 2.5 }).fields()).toEqual(['quantity']);
  });
});

describe('§2 is_new_customer', () => {
  it.each([
    [true, true],
    [false, false],
    ['true', true],
    ['false', false],
  ])('%j is sent as %j', (is_new_customer, expected) => {
    const r = run('purchase', { is_new_customer });
    expect(r.body.is_new_customer).toBe(expected);
    expect(r.warn).not.toHaveBeenCalled();
  });

  it.each(['yes', 1, 0, 'no', {}])('drops %j with one warning naming is_new_customer', (is_new_customer) => {
    const r = run('purchase', { is_new_customer, order_id: 'A1' });
    expect(r.body).not.toHaveProperty('is_new_customer');
    expect(r.fields()).toEqual(['is_new_customer']);
    expect(r.body.order_id).toBe('A1');
  });
});

/** Every named string field, by a command that names it. */
const STRING_FIELDS: [string, string][] = [
  ['product', 'product_id'],
  ['product', 'product_name'],
  ['product', 'product_type'],
  ['product', 'product_vendor'],
  ['product', 'variant_id'],
  ['product', 'variant_name'],
  ['addtocart', 'product_id'],
  ['checkout', 'discount_code'],
  ['purchase', 'order_id'],
  ['purchase', 'discount_code'],
  ['purchase', 'variant_name'],
  ['lead', 'type'],
  ['lead', 'category'],
  ['signup', 'sign_up_method'],
  ['custom', 'event_name'],
  ['alias', 'id'],
  ['alias', 'partner_user_id'],
  ['alias', 'click_id'],
];

describe('§2 strings', () => {
  it.each(STRING_FIELDS)('%s.%s: a number becomes a string', (command, field) => {
    const r = run(command, { [field]: 12345 });
    expect(r.body[field]).toBe('12345');
    expect(r.warn).not.toHaveBeenCalled();
  });

  it.each(STRING_FIELDS)('%s.%s: is trimmed', (command, field) => {
    expect(run(command, { [field]: '  Blue shirt \n' }).body[field]).toBe('Blue shirt');
  });

  it.each(STRING_FIELDS)('%s.%s: an empty string is dropped silently', (command, field) => {
    for (const empty of ['', '   ', '\t\n']) {
      const r = run(command, { [field]: empty });
      expect(r.body).not.toHaveProperty(field);
      expect(r.warn).not.toHaveBeenCalled();
    }
  });

  it.each(STRING_FIELDS)('%s.%s: longer than 256 characters is truncated with one warning', (command, field) => {
    const long = 'abcdefghij'.repeat(30);
    const r = run(command, { [field]: long });
    expect(r.body[field]).toBe(long.slice(0, 256));
    expect(r.fields()).toEqual([field]);
  });

  // An emoji is a surrogate pair (two UTF-16 units): a cut between them would send a lone half,
  // which the collector receives as U+FFFD.
  const EMOJI = '\u{1F600}';
  const wellFormed = (s: string) => !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);

  it.each(STRING_FIELDS)('%s.%s: never cuts an emoji in half at character 256', (command, field) => {
    const r = run(command, { [field]: 'a'.repeat(255) + EMOJI + 'b' });
    expect(r.body[field]).toBe('a'.repeat(255));
    expect(r.fields()).toEqual([field]);
  });

  it.each([
    ['an emoji ending exactly at 256', 'a'.repeat(254) + EMOJI + 'tail', 'a'.repeat(254) + EMOJI],
    ['an emoji starting at 256', 'a'.repeat(256) + EMOJI, 'a'.repeat(256)],
    ['only emoji, the cut between two of them', EMOJI.repeat(200), EMOJI.repeat(128)],
    ['only emoji after one letter, the cut inside one', 'a' + EMOJI.repeat(200), 'a' + EMOJI.repeat(127)],
    ['a flag (two pairs) across the cut', 'a'.repeat(253) + '\u{1F1EC}\u{1F1E7}', 'a'.repeat(253) + '\u{1F1EC}'],
  ])('truncates %s to well-formed text', (_name, value, kept) => {
    for (const r of [run('purchase', { order_id: value }), run('view', { note: value })]) {
      const out = (r.body.order_id ?? r.body.note) as string;
      expect(out).toBe(kept);
      expect(out.length).toBeLessThanOrEqual(256);
      expect(wellFormed(out)).toBe(true);
      expect(r.warn).toHaveBeenCalledTimes(1);
    }
  });

  it('never cuts an emoji in half inside a line item either', () => {
    const r = run('checkout', { line_items: [{ product_name: 'a'.repeat(255) + EMOJI }] });
    expect(r.body.line_items).toEqual([{ product_name: 'a'.repeat(255) }]);
  });

  it('keeps exactly 256 characters without a warning (after trimming)', () => {
    const exact = 'x'.repeat(256);
    const r = run('purchase', { order_id: '  ' + exact + '  ' });
    expect(r.body.order_id).toBe(exact);
    expect(r.warn).not.toHaveBeenCalled();
  });

  it.each([
    ['a boolean', true],
    ['an object', { id: 1 }],
    ['an array', ['a']],
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['a function', () => 'x'],
  ])('drops %s with one warning naming the field', (_name, value) => {
    const r = run('purchase', { order_id: value, discount_code: 'SAVE' });
    expect(r.body).not.toHaveProperty('order_id');
    expect(r.fields()).toEqual(['order_id']);
    expect(r.body.discount_code).toBe('SAVE');
  });
});

describe('§2 line_items', () => {
  const item = (i: number) => ({ product_id: 'p' + i, value: i, quantity: 1 });

  it.each([
    ['a string', 'p1,p2'],
    ['an object', { product_id: 'p1' }],
    ['a number', 3],
  ])('drops %s with one warning naming line_items', (_name, line_items) => {
    const r = run('checkout', { line_items, discount_code: 'SAVE' });
    expect(r.body).not.toHaveProperty('line_items');
    expect(r.fields()).toEqual(['line_items']);
    expect(r.body.discount_code).toBe('SAVE');
  });

  it('keeps a valid list as given, in order', () => {
    const line_items = [item(1), item(2), item(3)];
    const r = run('purchase', { line_items });
    expect(r.body.line_items).toEqual([
      { product_id: 'p1', value: 1, quantity: 1 },
      { product_id: 'p2', value: 2, quantity: 1 },
      { product_id: 'p3', value: 3, quantity: 1 },
    ]);
    expect(r.warn).not.toHaveBeenCalled();
  });

  it('keeps the first 100 entries of a longer list, with one warning', () => {
    const r = run('checkout', { line_items: Array.from({ length: 150 }, (_, i) => item(i)) });
    const kept = r.body.line_items as Props[];
    expect(kept).toHaveLength(100);
    expect(kept[0].product_id).toBe('p0');
    expect(kept[99].product_id).toBe('p99');
    expect(r.fields()).toEqual(['line_items']);
  });

  it('keeps exactly 100 entries without a warning', () => {
    const r = run('checkout', { line_items: Array.from({ length: 100 }, (_, i) => item(i)) });
    expect(r.body.line_items).toHaveLength(100);
    expect(r.warn).not.toHaveBeenCalled();
  });

  it('validates each entry like the flat fields', () => {
    const r = run('purchase', {
      line_items: [
        {
          product_id: 42,
          product_name: '  Blue shirt  ',
          product_type: 'Shirts',
          product_vendor: 'ACME',
          variant_id: 7,
          variant_name: 'L',
          value: '19.90',
          quantity: '2',
        },
      ],
    });
    expect(r.body.line_items).toEqual([
      {
        product_id: '42',
        product_name: 'Blue shirt',
        product_type: 'Shirts',
        product_vendor: 'ACME',
        variant_id: '7',
        variant_name: 'L',
        value: 19.9,
        quantity: 2,
      },
    ]);
    expect(r.warn).not.toHaveBeenCalled();
  });

  it('drops the other keys of an entry', () => {
    const r = run('checkout', {
      line_items: [{ product_id: 'p1', color: 'red', currency: 'USD', order_id: 'A', url: 'x', nested: { a: 1 } }],
    });
    expect(r.body.line_items).toEqual([{ product_id: 'p1' }]);
  });

  it('drops a bad field of an entry, warning with line_items[i].field, and keeps the rest', () => {
    const r = run('checkout', {
      line_items: [
        { product_id: 'p0', value: 'abc' },
        { product_id: 'p1', quantity: 2.5 },
        { product_id: 'x'.repeat(300), value: -1 },
      ],
    });
    expect(r.body.line_items).toEqual([{ product_id: 'p0' }, { product_id: 'p1' }, { product_id: 'x'.repeat(256) }]);
    expect(r.fields()).toEqual([
      'line_items[0].value',
      'line_items[1].quantity',
      'line_items[2].product_id',
      'line_items[2].value',
    ]);
  });

  it('drops an entry that is not an object, with a warning naming it', () => {
    const r = run('checkout', { line_items: [item(0), 'p1', null, item(3)] });
    expect(r.body.line_items).toEqual([item(0), item(3)]);
    expect(r.fields()).toEqual(['line_items[1]', 'line_items[2]']);
  });

  it('does not let an entry pollute a prototype', () => {
    const r = run('checkout', { line_items: JSON.parse('[{"__proto__":{"polluted":1},"product_id":"p1"}]') });
    expect(r.body.line_items).toEqual([{ product_id: 'p1' }]);
    const entry = (r.body.line_items as Props[])[0];
    expect(Object.getPrototypeOf(entry)).toBe(Object.prototype);
    expect(({} as Props).polluted).toBeUndefined();
  });
});

describe('§2 free props', () => {
  it('keeps string, number and boolean values as given', () => {
    const r = run('view', { plan: 'pro', seats: 3, ratio: 0.5, trial: true, paid: false, zero: 0 });
    expect(props(r.body)).toEqual({ plan: 'pro', seats: 3, ratio: 0.5, trial: true, paid: false, zero: 0 });
    expect(r.free).toEqual(['plan', 'seats', 'ratio', 'trial', 'paid', 'zero']);
    expect(r.warn).not.toHaveBeenCalled();
  });

  it('treats string values like the string fields: trimmed, empty dropped silently, truncated at 256 with a warning', () => {
    const r = run('view', { a: '  x  ', b: '   ', c: 'y'.repeat(300) });
    expect(props(r.body)).toEqual({ a: 'x', c: 'y'.repeat(256) });
    expect(r.fields()).toEqual(['c']);
  });

  it.each([
    ['a nested object', { a: 1 }],
    ['an array', [1, 2]],
    ['a function', () => 1],
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['a bigint', BigInt(5)],
    ['a date', new Date(0)],
  ])('drops %s with one warning naming the prop', (_name, value) => {
    const r = run('view', { bad: value, good: 'ok' });
    expect(props(r.body)).toEqual({ good: 'ok' });
    expect(r.free).toEqual(['good']);
    expect(r.fields()).toEqual(['bad']);
  });

  it.each(['a', '_', '_x', 'A1', 'snake_case_name', 'CamelCase', 'x'.repeat(64), '_'.repeat(64)])(
    'accepts the key %j',
    (key) => {
      const r = run('view', { [key]: 'v' });
      expect(r.body[key]).toBe('v');
      expect(r.warn).not.toHaveBeenCalled();
    },
  );

  it.each(['1abc', '9', 'a-b', 'a b', 'a.b', 'é', 'naïve', '$x', 'x'.repeat(65), ' a', 'a\n'])(
    'drops the key %j with one warning',
    (key) => {
      const r = run('view', { [key]: 'v', good: 1 });
      expect(own(r.body, key)).toBe(false);
      expect(props(r.body)).toEqual({ good: 1 });
      expect(r.warn).toHaveBeenCalledTimes(1);
    },
  );

  it.each(['view', 'lead', 'custom_event_1'])('drops an empty key on %s', (command) => {
    const r = run(command, { '': 'v', good: 1 });
    expect(own(r.body, '')).toBe(false);
    expect(props(r.body)).toEqual({ good: 1 });
  });

  it.each(['__proto__', 'constructor', 'prototype', 'url', 'referrer', 'trunc', 'hashed_email', 'hashed_phone_number', 'hashed_x', 'hashed_'])(
    'drops the reserved name %j with one warning naming it',
    (key) => {
      const r = run('view', JSON.parse(JSON.stringify({ [key]: 'evil', good: 1 })));
      expect(r.body.url).toBe(PAGE);
      expect(r.body.referrer).toBe(REFERRER);
      expect(own(r.body, key) && key != 'url' && key != 'referrer').toBe(false);
      expect(props(r.body)).toEqual({ good: 1 });
      expect(r.free).toEqual(['good']);
      expect(r.fields()).toEqual([key]);
    },
  );

  it('keeps the first 100 free props and warns once about the rest', () => {
    const many: Props = {};
    for (let i = 0; i < 150; i++) many['p' + i] = i;
    const r = run('view', many);
    expect(r.free).toHaveLength(100);
    expect(r.free).toEqual(Array.from({ length: 100 }, (_, i) => 'p' + i));
    expect(Object.keys(props(r.body))).toEqual(r.free);
    expect(r.body).not.toHaveProperty('p100');
    expect(r.warn).toHaveBeenCalledTimes(1);
  });

  it('keeps named props beyond the 100 free ones', () => {
    const many: Props = {};
    for (let i = 0; i < 120; i++) many['p' + i] = 'v';
    Object.assign(many, { value: 5, currency: 'usd', order_id: 'A1' });
    const r = run('purchase', many);
    expect(r.body).toMatchObject({ value: 5, currency: 'USD', order_id: 'A1' });
    expect(r.free).toHaveLength(100);
    expect(r.warn).toHaveBeenCalledTimes(1);
  });

  it('keeps exactly 100 free props without a warning', () => {
    const many: Props = {};
    for (let i = 0; i < 100; i++) many['p' + i] = true;
    const r = run('view', many);
    expect(r.free).toHaveLength(100);
    expect(r.warn).not.toHaveBeenCalled();
  });

  it('cannot pollute a prototype (__proto__, constructor, prototype from JSON)', () => {
    const hostile = JSON.parse(
      '{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":2}},"prototype":{"polluted":3},"ok":"yes"}',
    );
    const r = run('view', hostile);
    expect(({} as Props).polluted).toBeUndefined();
    expect((Object.prototype as Props).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(r.body)).toBe(Object.prototype);
    expect(r.body.polluted).toBeUndefined();
    expect(props(r.body)).toEqual({ ok: 'yes' });
    expect(JSON.parse(JSON.stringify(r.body))).toEqual({ url: PAGE, referrer: REFERRER, ok: 'yes' });
  });
});

describe('§2 which props are named per command, and which are free', () => {
  it('quantity on lead is a free prop, kept as given', () => {
    expect(run('lead', { quantity: 2.5 }).body.quantity).toBe(2.5);
    expect(run('lead', { quantity: '2.5' }).body.quantity).toBe('2.5');
    const r = run('lead', { quantity: 2.5 });
    expect(r.free).toEqual(['quantity']);
    expect(r.warn).not.toHaveBeenCalled();
  });

  it('quantity on product is free, on addtocart it is validated', () => {
    expect(run('product', { quantity: 2.5 }).body.quantity).toBe(2.5);
    expect(run('addtocart', { quantity: 2.5 }).body).not.toHaveProperty('quantity');
  });

  it('product_id is named (a string) on purchase, free (kept as a number) on checkout', () => {
    expect(run('purchase', { product_id: 5 }).body.product_id).toBe('5');
    const checkout = run('checkout', { product_id: 5 });
    expect(checkout.body.product_id).toBe(5);
    expect(checkout.free).toEqual(['product_id']);
  });

  it('is_new_customer is free on lead: a string stays a string', () => {
    const r = run('lead', { is_new_customer: 'yes' });
    expect(r.body.is_new_customer).toBe('yes');
    expect(r.warn).not.toHaveBeenCalled();
  });

  it('line_items is free on view and lead: an array is dropped with a warning', () => {
    for (const command of ['view', 'lead', 'signup']) {
      const r = run(command, { line_items: [{ product_id: 'p1' }] });
      expect(r.body, command).not.toHaveProperty('line_items');
      expect(r.fields(), command).toEqual(['line_items']);
    }
  });

  it('event_name is named on custom, free on custom_event_1', () => {
    expect(run('custom', { event_name: 42 }).body.event_name).toBe('42');
    const slot = run('custom_event_1', { event_name: 42 });
    expect(slot.body.event_name).toBe(42);
    expect(slot.free).toEqual(['event_name']);
  });

  it('each command lists only its free props in `free`', () => {
    const r = run('purchase', {
      value: 1,
      currency: 'USD',
      discount_code: 'D',
      order_id: 'O',
      is_new_customer: true,
      quantity: 1,
      line_items: [],
      product_id: 'p',
      product_name: 'n',
      product_type: 't',
      product_vendor: 'v',
      variant_id: 'vi',
      variant_name: 'vn',
      gift: true,
    });
    expect(r.free).toEqual(['gift']);
    expect(r.warn).not.toHaveBeenCalled();
  });

  it('signup names sign_up_method; alias names id, partner_user_id and click_id', () => {
    expect(run('signup', { sign_up_method: 7 }).free).toEqual([]);
    const alias = run('alias', { id: 42, partner_user_id: 7, click_id: 'c', extra: 'x' });
    expect(props(alias.body)).toEqual({ id: '42', partner_user_id: '7', click_id: 'c', extra: 'x' });
    expect(alias.free).toEqual(['extra']);
  });
});

describe('§5 PII guard: email and phone_number are hashed, never sent raw', () => {
  const EMAIL = '  Jane.Doe@Example.COM ';
  const PHONE = '+44 7700 900123';

  it.each(['view', 'purchase', 'lead', 'signup', 'custom_event_2', 'alias'])('on %s', (command) => {
    const r = run(command, { email: EMAIL, phone_number: PHONE });
    expect(r.body.hashed_email).toBe(sha('jane.doe@example.com'));
    expect(r.body.hashed_phone_number).toBe(sha('447700900123'));
    expect(r.body).not.toHaveProperty('email');
    expect(r.body).not.toHaveProperty('phone_number');
    const json = JSON.stringify(r.body);
    for (const raw of ['Jane', 'jane', 'Example', '7700', '900123']) expect(json).not.toContain(raw);
    expect(JSON.stringify(r.warn.mock.calls)).not.toMatch(/jane|7700/i);
  });

  it('hashes a phone number given as a number', () => {
    expect(run('alias', { phone_number: 447700900123 }).body.hashed_phone_number).toBe(sha('447700900123'));
  });

  it('passes a value that is already 64 hex characters through, lower-cased', () => {
    const hashed = sha('jane@example.com');
    const r = run('alias', { email: hashed.toUpperCase(), phone_number: hashed });
    expect(r.body.hashed_email).toBe(hashed);
    expect(r.body.hashed_phone_number).toBe(hashed);
  });

  it('sends nothing for an empty email or a phone number without digits', () => {
    const r = run('alias', { email: '   ', phone_number: '+()', id: 'u1' });
    expect(props(r.body)).toEqual({ id: 'u1' });
  });

  it('does not count the identifiers as free props', () => {
    const r = run('view', { email: 'a@b.co', phone_number: '123' });
    expect(r.free).toEqual([]);
  });

  it('never keeps raw identifiers inside line_items', () => {
    const r = run('checkout', { line_items: [{ product_id: 'p', email: 'jane@example.com' }] });
    expect(JSON.stringify(r.body)).not.toContain('jane');
  });
});

describe('§5 PII guard: any other string holding an email address never leaves', () => {
  const ADDRESSES = ['ann@example.com', 'Ann.Doe@Example.COM', 'ann%40example.com', 'write to ann@example.com', 'ann%2540example.com'];

  it('drops a free prop whose value is one, with one warning naming it, and keeps the rest', () => {
    for (const address of ADDRESSES) {
      const r = run('lead', { note: address, type: 'demo', plan: 'pro' });
      expect(props(r.body)).toEqual({ type: 'demo', plan: 'pro' });
      expect(r.free).toEqual(['plan']);
      expect(r.warn.mock.calls).toEqual([['note', 'looks like an email']]);
    }
  });

  it('drops such a value before truncating, so no part of an address straddling character 256 goes out', () => {
    const r = run('view', { note: 'x'.repeat(250) + ' ann@example.com' });
    expect(props(r.body)).toEqual({});
    expect(r.fields()).toEqual(['note']);
  });

  // The named string fields too, alias ids included: only email and phone_number, which are hashed,
  // may hold an address.
  it.each(STRING_FIELDS)('drops it from the named string field %s.%s', (command, field) => {
    const r = run(command, { [field]: ' ann@example.com ', value: 1, currency: 'USD' });
    expect(r.body).not.toHaveProperty(field);
    expect(r.warn.mock.calls).toContainEqual([field, 'looks like an email']);
    expect(JSON.stringify(r.body)).not.toContain('ann');
  });

  it('drops it from a line item string, warning with line_items[i].field', () => {
    const r = run('purchase', {
      line_items: [{ product_id: 'p1', product_name: 'gift for ann@example.com', quantity: 1 }, { variant_name: 'ann%40example.com' }],
    });
    expect(r.body.line_items).toEqual([{ product_id: 'p1', quantity: 1 }, {}]);
    expect(r.fields()).toEqual(['line_items[0].product_name', 'line_items[1].variant_name']);
  });

  it('still hashes the email and phone_number props, which are meant to hold one', () => {
    const r = run('lead', { email: 'ann@example.com', phone_number: '+44 7700 900123', note: 'ann@example.com' });
    expect(r.body.hashed_email).toBe(sha('ann@example.com'));
    expect(r.body.hashed_phone_number).toBe(sha('447700900123'));
    expect(r.fields()).toEqual(['note']);
  });

  it('keeps strings with an @ that are no address', () => {
    const r = run('view', { handle: '@ann', pkg: 'lodash@4.17.21', deal: '2 @ $5.00' });
    expect(props(r.body)).toEqual({ handle: '@ann', pkg: 'lodash@4.17.21', deal: '2 @ $5.00' });
    expect(r.warn).not.toHaveBeenCalled();
  });
});

describe('§2 event_id', () => {
  /** What validate makes of an event_id, and the warnings it gave. */
  function eventId(value: unknown) {
    const warn = vi.fn<Warn>(() => undefined);
    spies.push(warn);
    const body: Record<string, unknown> = {};
    validate('view', { event_id: value }, body, warn);
    return { id: body.event_id, warn };
  }

  it('keeps a caller-supplied string of at most 128 characters, without a warning', () => {
    for (const id of ['order-123', 'e'.repeat(128)]) {
      const r = eventId(id);
      expect(r.id).toBe(id);
      expect(r.warn).not.toHaveBeenCalled();
    }
  });

  it('gives nothing, without a warning, when absent', () => {
    for (const value of [undefined, null]) {
      const r = eventId(value);
      expect(r.id).toBeUndefined();
      expect(r.warn).not.toHaveBeenCalled();
    }
  });

  it.each([
    ['longer than 128 characters', 'e'.repeat(129)],
    ['an empty string', ''],
    ['an object', { id: 1 }],
    ['an array', ['a']],
    ['a symbol', Symbol('id')],
    ['a boolean', true],
  ])('gives nothing, with one warning naming event_id, for %s', (_name, value) => {
    const r = eventId(value);
    expect(r.id).toBeUndefined();
    expect(r.warn).toHaveBeenCalledTimes(1);
    expect(r.warn.mock.calls[0][0]).toBe('event_id');
  });
});

describe('§2 isEventCommand', () => {
  it.each([
    'view',
    'product',
    'addtocart',
    'checkout',
    'purchase',
    'lead',
    'signup',
    'custom_event_1',
    'custom_event_2',
    'custom_event_3',
    'custom_event_4',
    'custom_event_5',
    'custom',
    'alias',
  ])('%s is an event', (command) => {
    expect(isEventCommand(command)).toBe(true);
  });

  it.each([
    'conf',
    'consent',
    'custom_event_0',
    'custom_event_6',
    'VIEW',
    'Purchase',
    'page_view',
    '',
    '__proto__',
    'constructor',
    'toString',
    'hasOwnProperty',
    'valueOf',
  ])('%j is not an event', (command) => {
    expect(isEventCommand(command)).toBe(false);
  });
});

describe('§2 hostile input never throws, and the other fields still come through', () => {
  /** Validates `props` on purchase with a good value/currency/order_id beside the hostile part. */
  function survives(command: string, hostile: unknown) {
    let r: ReturnType<typeof run> | undefined;
    expect(() => (r = run(command, hostile))).not.toThrow();
    expect(r!.body.url).toBe(PAGE);
    expect(() => JSON.stringify(r!.body)).not.toThrow();
    return r!;
  }

  it('a Proxy whose ownKeys trap throws', () => {
    const r = survives('purchase', new Proxy({ value: 5 }, { ownKeys: throwing }));
    expect(props(r.body)).toEqual({});
  });

  it('a Proxy whose getOwnPropertyDescriptor trap throws', () => {
    survives('purchase', new Proxy({ value: 5 }, { getOwnPropertyDescriptor: throwing }));
  });

  it('a Proxy whose get trap throws for every key', () => {
    const r = survives('purchase', new Proxy({ value: 5, currency: 'USD' }, { get: throwing }));
    expect(props(r.body)).toEqual({});
  });

  it('a Proxy whose get trap throws for one key', () => {
    const target = { value: 5, currency: 'USD', order_id: 'A1', plan: 'pro' };
    const r = survives(
      'purchase',
      new Proxy(target, {
        get: (t, k) => {
          if (k == 'order_id') throw new Error('hostile');
          return (t as Props)[k as string];
        },
      }),
    );
    expect(props(r.body)).toEqual({ value: 5, currency: 'USD', plan: 'pro' });
  });

  it('a revoked Proxy', () => {
    const { proxy, revoke } = Proxy.revocable({ value: 5 }, {});
    revoke();
    survives('purchase', proxy);
  });

  it('getters that throw', () => {
    const hostile = {
      value: 5,
      currency: 'USD',
      get order_id() {
        return throwing();
      },
      get plan() {
        return throwing();
      },
      get email() {
        return throwing();
      },
      discount_code: 'SAVE',
    };
    const r = survives('purchase', hostile);
    expect(props(r.body)).toEqual({ value: 5, currency: 'USD', discount_code: 'SAVE' });
  });

  it('a line_items entry whose getters throw', () => {
    const entry = {
      product_id: 'p1',
      get value() {
        return throwing();
      },
      quantity: 2,
    };
    const r = survives('purchase', { value: 5, currency: 'USD', line_items: [entry] });
    expect(r.body.line_items).toEqual([{ product_id: 'p1', quantity: 2 }]);
  });

  it('a line_items array whose element getter throws', () => {
    const line_items: unknown[] = [{ product_id: 'p0' }, undefined, { product_id: 'p2' }];
    Object.defineProperty(line_items, 1, { get: throwing, enumerable: true });
    const r = survives('purchase', { value: 5, currency: 'USD', order_id: 'A1', line_items });
    expect(r.body).toMatchObject({ value: 5, currency: 'USD', order_id: 'A1' });
  });

  it('a line_items array behind a Proxy whose get trap throws', () => {
    const line_items = new Proxy([{ product_id: 'p0' }], { get: throwing });
    const r = survives('purchase', { value: 5, currency: 'USD', order_id: 'A1', line_items });
    expect(r.body).toMatchObject({ value: 5, currency: 'USD', order_id: 'A1' });
  });

  it('cyclic objects', () => {
    const cyclic: Props = { value: 5, currency: 'USD', order_id: 'A1' };
    cyclic.self = cyclic;
    const entry: Props = { product_id: 'p1' };
    entry.self = entry;
    const list: unknown[] = [entry];
    list.push(list);
    cyclic.line_items = list;
    const r = survives('purchase', cyclic);
    expect(r.body).toMatchObject({ value: 5, currency: 'USD', order_id: 'A1' });
    expect(r.body).not.toHaveProperty('self');
    expect((r.body.line_items as Props[])[0]).toEqual({ product_id: 'p1' });
  });

  it('symbols as values and as keys', () => {
    const r = survives('purchase', {
      value: 5,
      currency: 'USD',
      order_id: Symbol('order'),
      plan: Symbol('plan'),
      [Symbol('key')]: 'x',
      email: Symbol('email'),
      quantity: Symbol('q'),
      is_new_customer: Symbol('n'),
      line_items: [{ product_id: Symbol('p'), [Symbol('k')]: 1, quantity: 1 }],
      discount_code: 'SAVE',
    });
    expect(props(r.body)).toEqual({ value: 5, currency: 'USD', line_items: [{ quantity: 1 }], discount_code: 'SAVE' });
  });

  it('a symbol as the value of value and currency', () => {
    const r = survives('purchase', { value: Symbol('v'), currency: Symbol('c'), order_id: 'A1' });
    expect(props(r.body)).toEqual({ order_id: 'A1' });
  });

  it('a 1 MB string in a string field, a free prop and a key', () => {
    const huge = 'x'.repeat(1 << 20);
    const r = survives('purchase', { value: 5, currency: 'USD', order_id: huge, plan: huge, [huge]: 'v' });
    expect(r.body.order_id).toBe(huge.slice(0, 256));
    expect(r.body.plan).toBe(huge.slice(0, 256));
    expect(r.body.value).toBe(5);
    expect(JSON.stringify(r.body).length).toBeLessThan(2000);
    for (const [field] of r.warn.mock.calls) expect(field.length).toBeLessThanOrEqual(64);
  });

  it('a 1 MB string in the email and phone_number props', () => {
    const r = survives('view', { email: 'a'.repeat(1 << 20) + '@example.com', phone_number: '1'.repeat(1 << 20) });
    expect(r.body.hashed_email).toMatch(/^[0-9a-f]{64}$/);
    expect(r.body.hashed_phone_number).toMatch(/^[0-9a-f]{64}$/);
  });

  it.each([
    ['value', { value: '1'.repeat(1 << 20) + 'x', currency: 'USD', order_id: 'A1' }],
    ['quantity', { quantity: '1'.repeat(1 << 20) + 'x', currency: 'USD', order_id: 'A1' }],
    ['value', { value: '1'.repeat(1 << 20) + '.' + '1'.repeat(1 << 10) + ' x', currency: 'USD', order_id: 'A1' }],
    ['line_items[0].value', { line_items: [{ value: '1'.repeat(1 << 20) + 'x' }], currency: 'USD', order_id: 'A1' }],
  ])('a 1 MB non-numeric string of digits in %s is dropped promptly', (field, hostile) => {
    let r: ReturnType<typeof run> | undefined;
    // A correct implementation needs milliseconds; 1 s only guards against a hang.
    expect(finishesWithin(1000, () => (r = run('purchase', hostile)))).toBe(true);
    expect(r!.body).toMatchObject({ currency: 'USD', order_id: 'A1' });
    expect(r!.fields()).toContain(field);
  });

  it.each([
    ['a string', 'purchase'],
    ['a number', 42],
    ['a boolean', true],
    ['a function', () => ({ value: 5 })],
    ['a symbol', Symbol('props')],
  ])('props that are %s: no field, no throw', (_name, hostile) => {
    const r = survives('purchase', hostile);
    expect(props(r.body)).toEqual({});
  });

  it.each([null, undefined])('props that are %s: no field, no warning', (hostile) => {
    const r = survives('purchase', hostile);
    expect(props(r.body)).toEqual({});
    expect(r.warn).not.toHaveBeenCalled();
  });

  it('an array as props keeps nothing', () => {
    const r = survives('view', ['a', 'b']);
    expect(props(r.body)).toEqual({});
  });

  it('an object without a prototype is read normally', () => {
    const bare = Object.assign(Object.create(null), { value: '5', currency: 'usd', plan: 'pro' });
    const r = survives('purchase', bare);
    expect(props(r.body)).toEqual({ value: 5, currency: 'USD', plan: 'pro' });
  });

  it('a value object whose toString or valueOf throws is dropped, not converted', () => {
    const evil = { toString: throwing, valueOf: throwing, [Symbol.toPrimitive]: throwing };
    const r = survives('purchase', { value: evil, currency: 'USD', order_id: evil, plan: evil, quantity: evil, email: evil });
    expect(props(r.body)).toEqual({ currency: 'USD' });
  });
});
