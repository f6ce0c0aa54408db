// The cart: change quantities, remove lines, go to checkout. Only the page view is tracked here.
(function () {
  'use strict';
  var shop = window.PodShop, el = shop.el;

  function render() {
    var lines = shop.getCart();
    var body = document.getElementById('lines');
    body.replaceChildren();
    document.getElementById('empty').hidden = lines.length > 0;
    document.getElementById('full').hidden = lines.length === 0;

    shop.lineItems(lines).forEach(function (item, i) {
      var qty = el('input', { type: 'number', min: '0', max: '99', value: String(item.quantity),
        'aria-label': 'Quantity of ' + item.product_name });
      qty.addEventListener('change', function () {
        var all = shop.getCart();
        all[i].quantity = Math.max(0, parseInt(qty.value, 10) || 0);
        shop.saveCart(all.filter(function (l) { return l.quantity > 0; }));
        render();
      });
      body.append(el('tr', null,
        el('td', null, el('a', { href: 'product.html?id=' + encodeURIComponent(item.product_id), text: item.product_name }),
          el('span', { class: 'muted', text: ' · ' + item.variant_name })),
        el('td', { class: 'num', text: shop.money(item.value) }),
        el('td', { class: 'num' }, qty),
        el('td', { class: 'num', text: shop.money(item.value * item.quantity) })));
    });
    document.getElementById('total').textContent = shop.money(shop.totals(lines).value);
  }

  document.addEventListener('DOMContentLoaded', render);
})();
