// Compile-time tests of the npm entry's types (run by `npm run typecheck`): each line under an
// expect-error directive must fail to type-check, every other line must pass.
import { createPixel, snippet, type Pixel, type PurchaseProps } from '../../src/index';

const pixel: Pixel = createPixel({ key: '5a1c965e567a45f7832cc5ba7a37faf7', consent: 'pending' });

pixel.purchase({ value: 79.99, currency: 'USD', order_id: 'SP-1', line_items: [{ product_id: 'p', quantity: 2 }] });
pixel.purchase({ value: '79.99', is_new_customer: 'true', coupon_campaign: 'free props are allowed' });
pixel('purchase', { value: 1, currency: 'EUR' }, { key: 'another-key' });
pixel.view();
pixel('view');
pixel.custom({ event_name: 'quiz_done' });
pixel.alias({ email: 'a@b.c', phone_number: 5551234 });
pixel.consent('granted');
pixel.conf({ cookies: false, spa: false });
pixel.on('send', (info) => info.transport satisfies 'beacon' | 'image');
pixel.on('warn', (message) => message.toUpperCase());

// @ts-expect-error value is a number or numeric string
pixel.purchase({ value: { amount: 5 } });
// @ts-expect-error currency is a string
pixel.purchase({ currency: 840 });
// @ts-expect-error line_items is an array of line items
pixel.purchase({ line_items: 'p1,p2' });
// @ts-expect-error is_new_customer is a boolean
pixel('purchase', { is_new_customer: 1 });
// @ts-expect-error custom needs event_name
pixel.custom({ value: 5 });
// @ts-expect-error no such command
pixel('purchse', {});
// @ts-expect-error consent takes one of three states
pixel.consent('yes');
// @ts-expect-error unknown option
pixel.conf({ cookie: false });
// @ts-expect-error send listeners receive the request, not a string
pixel.on('send', (info: string) => info);

const props: PurchaseProps = { value: 5, currency: 'SEK' };
pixel.purchase(props);
snippet({ key: 'k', src: 'https://cdn.example.com/ping.min.js', nonce: 'n' }).trim();
