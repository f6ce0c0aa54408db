/**
 * `ping.min.js`: installs the pixel as `window.spdt` and drains whatever the page queued before it
 * loaded (SPEC §1). Loading it twice installs it once.
 */
import { createCore } from './pixel';
import { captureClick } from './identity';
import { has, attempt } from './util';

/** A function stub (Spotify's, or ours) or the older object stub with `emit`/`on`/`off` and `_q`. */
type Stub = { q?: ArrayLike<any>; _q?: ArrayLike<any[]>; version?: string; emit?: unknown; on?: unknown; off?: unknown };
type Method = (a?: any, b?: any, c?: any) => void;

attempt(() => {
  const w = window as unknown as { spdt?: unknown };
  const stub = w.spdt as Stub | undefined;
  if (stub?.version) return;

  const script = document.currentScript as HTMLScriptElement | null;
  // The collector defaults to the directory the tag was served from.
  const core = createCore(script?.src ? new URL('.', script.src).href.slice(0, -1) : location.origin);

  const spdt = (command: unknown, props?: unknown, options?: unknown) => core.call(command, props, options);
  const methods: Record<string, Method> = { emit: spdt, on: core.on, off: core.off };
  /**
   * One queued entry, whichever stub queued it: Spotify's pushes `arguments` to `q`, ours pushes
   * [time, url, arguments] to `q`, the object stub pushes [method, ...args] to `_q`.
   */
  const run = (entry: any) =>
    attempt(() =>
      !Array.isArray(entry)
        ? core.call(entry[0], entry[1], entry[2])
        : typeof entry[0] == 'number'
          ? core.call(entry[2][0], entry[2][1], entry[2][2], entry[0], entry[1])
          : has(methods, entry[0]) && methods[entry[0]](entry[1], entry[2], entry[3]),
    );
  // Stubs kept by page scripts keep pushing into `q`/`_q`: this sink forwards to the pixel.
  const q = { push: run };

  const queued = [stub?.q, stub?._q];
  w.spdt = Object.assign(spdt, methods, { version: '1', q, _q: q });
  if (stub) attempt(() => Object.assign(stub, { q, _q: q }));
  for (const list of queued) for (let i = 0; i < list?.length!; i++) run(list![i]);
  captureClick(location.href);
});
