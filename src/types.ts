/** Public types of the npm entry: the commands, their props and the options of `conf`. */

export type ConsentState = 'granted' | 'pending' | 'denied';

export interface PixelOptions {
  /** Pixel key; Spotify's are 32 lower-case hex characters. */
  key?: string;
  /** Collector base URL (default: the page's origin). `/v1/ingest` and `/v1/img` are appended. */
  endpoint?: string;
  /** `false`: no cookie or storage is read or written; no device id is sent. */
  cookies?: boolean;
  /** Domain for `__spdt` and `sp_click_id` (default: the widest one that accepts a cookie). */
  cookie_domain?: string;
  /** Lifetime of `__spdt` in days, 1–400 (default 365), renewed on every page load. */
  cookie_days?: number;
  /** Lifetime of `sp_click_id` in days, 1–30 (default 30). */
  click_days?: number;
  /** `'pending'` holds everything until `consent('granted')`. */
  consent?: ConsentState;
  /** Automatic `view` on History API route changes (default true). */
  spa?: boolean;
  /** Log every command and request to the console. */
  debug?: boolean;
}

export interface EventOptions {
  /** Sends this one call to another pixel key. */
  key?: string;
}

/** Props any event may carry, plus free props (strings, numbers, booleans). */
export interface BaseProps {
  event_id?: string;
  [prop: string]: unknown;
}

export interface MoneyProps extends BaseProps {
  value?: number | string;
  currency?: string;
}

export interface ProductFields {
  product_id?: string | number;
  product_name?: string;
  product_type?: string;
  product_vendor?: string;
  variant_id?: string | number;
  variant_name?: string;
}

export interface LineItem extends ProductFields {
  value?: number | string;
  quantity?: number | string;
}

export interface ProductProps extends MoneyProps, ProductFields {}

export interface AddToCartProps extends ProductProps {
  quantity?: number | string;
}

export interface CheckoutProps extends MoneyProps {
  discount_code?: string;
  quantity?: number | string;
  line_items?: LineItem[];
}

export interface PurchaseProps extends CheckoutProps, ProductFields {
  order_id?: string | number;
  is_new_customer?: boolean | 'true' | 'false';
}

export interface LeadProps extends MoneyProps {
  type?: string;
  category?: string;
}

export interface SignupProps extends BaseProps {
  sign_up_method?: string;
}

export interface CustomProps extends MoneyProps {
  event_name: string;
}

export interface AliasProps extends BaseProps {
  id?: string | number;
  email?: string;
  phone_number?: string | number;
  partner_user_id?: string | number;
  click_id?: string;
}

/** Each command and the props it takes. */
export interface Commands {
  view: BaseProps;
  product: ProductProps;
  addtocart: AddToCartProps;
  checkout: CheckoutProps;
  purchase: PurchaseProps;
  lead: LeadProps;
  signup: SignupProps;
  custom_event_1: MoneyProps;
  custom_event_2: MoneyProps;
  custom_event_3: MoneyProps;
  custom_event_4: MoneyProps;
  custom_event_5: MoneyProps;
  custom: CustomProps;
  alias: AliasProps;
}

export type EventName = keyof Commands;

/** What a `send` listener receives: one request handed to the browser. */
export interface SendInfo {
  transport: 'beacon' | 'image';
  url: string;
  body?: string;
}

export interface Listeners {
  send: (info: SendInfo) => void;
  warn: (message: string) => void;
}

type Methods = {
  [C in EventName]: {} extends Commands[C]
    ? (props?: Commands[C], options?: EventOptions) => void
    : (props: Commands[C], options?: EventOptions) => void;
};

export interface Pixel extends Methods {
  <C extends EventName>(command: C, ...args: {} extends Commands[C] ? [props?: Commands[C], options?: EventOptions] : [props: Commands[C], options?: EventOptions]): void;
  (command: 'conf', options: PixelOptions): void;
  (command: 'consent', state: ConsentState): void;
  conf(options: PixelOptions): void;
  consent(state: ConsentState): void;
  on<T extends keyof Listeners>(type: T, fn: Listeners[T]): void;
  off<T extends keyof Listeners>(type: T, fn: Listeners[T]): void;
}
