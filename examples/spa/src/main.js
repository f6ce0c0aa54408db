// A single-page podcast site using the npm build of spdt-pixel.
// Routes are changed with history.pushState; the pixel sends a `view` for each route change by
// itself (its `spa` option, on by default), so this file only sends the first one.
import { createPixel } from 'spdt-pixel';

const pixel = createPixel({ key: '5a1c965e567a45f7832cc5ba7a37faf7', endpoint: location.origin });

// Show the last request the pixel handed to the browser.
const last = document.getElementById('last-request');
pixel.on('send', ({ transport, url, body }) => {
  let text = body || '';
  try {
    text = JSON.stringify(JSON.parse(body), null, 2);
  } catch {
    // image requests have no body; a body that is not JSON is shown as is
  }
  last.textContent = `${transport} ${url}\n${text}`;
});

// ---------------------------------------------------------------------------------------------
// Content

const EPISODES = [
  { id: '1', title: 'Why we started a podcast', minutes: 32, blurb: 'Two friends, one microphone, no plan.' },
  { id: '2', title: 'The perfect intro music', minutes: 41, blurb: 'We listen to 40 jingles so you do not have to.' },
  { id: '3', title: 'Ads that do not annoy', minutes: 38, blurb: 'How host-read ads work, and how they are measured.' },
];
const SEASON_PASS = { id: 'season-pass', name: 'Season pass', price: 5, currency: 'USD' };

/** h('p', { class: 'x' }, 'text', child): builds DOM without innerHTML. */
function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

// Routes live in the query string (?page=episodes), so every URL also works on reload from a
// plain static file server. The pixel counts a path or query change as a new page view.
const routes = {
  home: () => [
    h('h1', null, 'Talking Shop'),
    h('p', null, 'A podcast about the little things behind podcasts. Browse the ',
      h('a', { href: '?page=episodes' }, 'episodes'), ' or grab a ',
      h('a', { href: '?page=checkout' }, 'season pass'), '.'),
  ],
  episodes: () => [
    h('h1', null, 'Episodes'),
    h('ul', { class: 'episodes' }, ...EPISODES.map((e) =>
      h('li', null, h('a', { href: `?page=episode&id=${e.id}` }, `#${e.id} ${e.title}`), ` · ${e.minutes} min`))),
  ],
  episode: (params) => {
    const e = EPISODES.find((x) => x.id === params.get('id'));
    if (!e) return [h('h1', null, 'Episode not found'), h('p', null, h('a', { href: '?page=episodes' }, 'All episodes'))];
    const next = EPISODES[(EPISODES.indexOf(e) + 1) % EPISODES.length];
    return [
      h('h1', null, `#${e.id} ${e.title}`),
      h('p', null, e.blurb),
      h('p', { class: 'muted' }, `${e.minutes} minutes`),
      h('p', null, h('a', { href: `?page=episode&id=${next.id}` }, `Next: #${next.id} ${next.title} →`)),
    ];
  },
  checkout: () => {
    const button = h('button', { type: 'button' }, `Buy the season pass (${SEASON_PASS.price} ${SEASON_PASS.currency})`);
    const done = h('p', { class: 'notice', hidden: '' });
    button.addEventListener('click', () => {
      const orderId = 'SPA-' + Date.now().toString(36).toUpperCase();
      pixel.purchase({
        order_id: orderId,
        event_id: orderId, // what a server-side send of the same purchase would use, to deduplicate
        value: SEASON_PASS.price,
        currency: SEASON_PASS.currency,
        quantity: 1,
        line_items: [{ product_id: SEASON_PASS.id, product_name: SEASON_PASS.name, value: SEASON_PASS.price, quantity: 1 }],
      });
      done.textContent = `Thanks! Order ${orderId} is confirmed.`;
      done.hidden = false;
    });
    return [h('h1', null, 'Checkout'), h('p', null, 'Ad-free episodes for the whole season.'), button, done];
  },
};

// ---------------------------------------------------------------------------------------------
// Router

const main = document.querySelector('main');

function render() {
  const params = new URLSearchParams(location.search);
  const name = routes[params.get('page')] ? params.get('page') : 'home';
  main.replaceChildren(...routes[name](params));
  document.title = `${main.querySelector('h1').textContent} · Talking Shop`;
  for (const a of document.querySelectorAll('nav a')) {
    const page = new URL(a.href).searchParams.get('page') || 'home';
    if (page === name || (name === 'episode' && page === 'episodes')) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

// Same-page links change the route without a reload; everything else behaves as usual.
document.addEventListener('click', (event) => {
  const a = event.target.closest('a[href]');
  if (!a || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  if (a.target || a.hasAttribute('download')) return;
  const url = new URL(a.href);
  if (url.origin !== location.origin || url.pathname !== location.pathname) return;
  event.preventDefault();
  if (url.href !== location.href) history.pushState(null, '', url); // the pixel sees this and sends a view
  render();
  window.scrollTo(0, 0);
});

// Back and forward: the pixel sends the view for these too.
addEventListener('popstate', render);

render();
pixel.view(); // the first page view; later ones are automatic
