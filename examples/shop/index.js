// The product list. The page view itself is sent by the snippet in <head>.
(function () {
  'use strict';
  var shop = window.PodShop, el = shop.el;

  document.addEventListener('DOMContentLoaded', function () {
    var list = document.getElementById('products');
    shop.PRODUCTS.forEach(function (p) {
      var href = 'product.html?id=' + encodeURIComponent(p.id);
      list.append(el('li', { class: 'card' },
        el('a', { href: href, class: 'card-link' },
          el('img', { class: 'art', src: p.image, alt: '' }),
          el('h3', { text: p.name })),
        el('p', { class: 'muted', text: p.blurb }),
        el('p', { class: 'price', text: shop.money(p.price) })));
    });
  });
})();
