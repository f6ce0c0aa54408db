/**
 * The npm entry: `createPixel(options)` for single-page apps and bundlers. Importing it touches no
 * browser global, so server-side rendering is safe; on a server every call does nothing.
 */
import { createCore, type Core } from './pixel';
import { captureClick } from './identity';
import type { EventName, Pixel, PixelOptions } from './types';

export type * from './types';
export { snippet, type SnippetOptions } from './snippet';

const COMMANDS: (EventName | 'conf' | 'consent')[] = [
  'conf', 'consent', 'view', 'product', 'addtocart', 'checkout', 'purchase', 'lead', 'signup',
  'custom_event_1', 'custom_event_2', 'custom_event_3', 'custom_event_4', 'custom_event_5', 'custom', 'alias',
];

export function createPixel(options: PixelOptions = {}): Pixel {
  let core: Core | undefined;
  if (typeof window != 'undefined' && typeof document != 'undefined') {
    core = createCore(location.origin);
    core.call('conf', options);
    captureClick(location.href);
  }
  const pixel = ((command: unknown, props?: unknown, opts?: unknown) => core && core.call(command, props, opts)) as Pixel;
  for (const command of COMMANDS) (pixel as any)[command] = (props?: unknown, opts?: unknown) => pixel(command as any, props as any, opts as any);
  pixel.on = (type, fn) => core && core.on(type, fn);
  pixel.off = (type, fn) => core && core.off(type, fn);
  return pixel;
}
