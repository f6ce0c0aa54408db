/**
 * `ping.min.js`: installs the pixel as `window.spdt` and drains whatever the page queued before it
 * loaded (SPEC §1). Loading it twice installs it once.
 */
import { createCore } from './pixel';
import { safely } from './util';

/** A function stub (Spotify's, or ours) or the older object stub with `emit`/`on`/`off` and `_q`. */
type Stub = { q?: ArrayLike<any>; _q?: ArrayLike<any[]>; version?: string; emit?: unknown; on?: unknown; off?: unknown };
type Method = (a?: any, b?: any, c?: any) => void;

safely(() => {
  const w = window as unknown as { spdt?: unknown };
  const stub = w.spdt as Stub | undefined;
  if (stub && stub.version) return;

  const script = document.currentScript as HTMLScriptElement | null;
  const src = (script && script.src) || '';
  // The collector defaults to the directory the tag was served from.
  const core = createCore(src ? src.split(/[?#]/)[0].replace(/\/[^/]*$/, '') : location.origin);

  const spdt = (command: unknown, props?: unknown, options?: unknown) => core.call(command, props, options);
  const { on, off } = core;
  // Entries of `q`: Spotify's stub pushes `arguments`; ours pushes [time, url, arguments].
  const fromQ = (entry: any) =>
    Array.isArray(entry) && typeof entry[0] == 'number'
      ? core.call(entry[2][0], entry[2][1], entry[2][2], entry[0], entry[1])
      : core.call(entry[0], entry[1], entry[2]);
  // Entries of `_q`: [method, ...args] from the object stub; `emit` is a call.
  const fromObjectQ = (entry: any[]) => ((entry[0] == 'on' ? on : entry[0] == 'off' ? off : entry[0] == 'emit' ? spdt : () => {}) as Method)(entry[1], entry[2], entry[3]);
  // Stubs kept by page scripts keep pushing into `q`/`_q`: these sinks forward to the pixel.
  const q = { push: (entry: unknown) => safely(() => fromQ(entry)) };
  const _q = { push: (entry: any[]) => safely(() => fromObjectQ(entry)) };

  const queued = [stub && stub.q, stub && stub._q];
  w.spdt = Object.assign(spdt, { version: '1', on, off, emit: spdt, q, _q });
  // The old stub's methods push into its `q`/`_q`: page scripts holding it reach the pixel too.
  if (stub) safely(() => Object.assign(stub, { q, _q }));

  queued.forEach((list, i) => {
    for (let j = 0; list && j < list.length; j++) (i ? _q : q).push(list[j]);
  });
  core.capture(location.href);
});
