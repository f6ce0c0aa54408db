/**
 * Route changes in single-page apps (SPEC §3 `spa`): the History API, back/forward, and pages
 * restored from the back/forward cache. A change of hash alone is not a route change. `onChange`
 * must not throw: it runs inside the page's own history calls.
 */
const route = () => location.pathname + location.search;

export function watchRoutes(onChange: () => void): void {
  let last = route();
  const check = () => {
    if (last != (last = route())) onChange(); // compares, then remembers the new route
  };
  for (const name of ['pushState', 'replaceState'] as const) {
    const original = history[name];
    history[name] = function (this: History, ...args: Parameters<History['pushState']>) {
      const result = original.apply(this, args);
      check();
      return result;
    };
  }
  addEventListener('popstate', check);
  addEventListener('pageshow', (e) => e.persisted && onChange());
}
