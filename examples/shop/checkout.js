// Checkout: spdt('checkout') when it starts; placing the order saves it for thanks.html.
(function () {
  'use strict';
  var shop = window.PodShop, el = shop.el;

  document.addEventListener('DOMContentLoaded', function () {
    var lines = shop.getCart();
    if (!lines.length) {
      document.getElementById('form').hidden = true;
      document.getElementById('empty').hidden = false;
      return;
    }

    var items = shop.lineItems(lines);
    var sum = shop.totals(lines);
    var summary = document.getElementById('summary');
    items.forEach(function (item) {
      summary.append(el('li', null, item.quantity + ' × ' + item.product_name + ' (' + item.variant_name + ')',
        el('span', { class: 'num', text: shop.money(item.value * item.quantity) })));
    });
    document.getElementById('total').textContent = shop.money(sum.value);

    window.spdt('checkout', {
      value: sum.value, currency: shop.CURRENCY, quantity: sum.quantity, line_items: items
    });

    var form = document.getElementById('form');
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      // A real shop would take payment here. The demo makes up an order id and keeps the cart
      // with it in sessionStorage for the thank-you page.
      var order = {
        id: 'POD-' + Date.now().toString(36).toUpperCase(),
        lines: lines,
        is_new_customer: !shop.read(localStorage, 'podshop:customer', false)
      };
      shop.write(sessionStorage, 'podshop:order', order);
      // Identify the buyer: the pixel hashes the email (SHA-256) in the browser before sending it.
      var email = form.elements.email.value.trim();
      if (email) window.spdt('alias', { email: email });
      location.href = 'thanks.html';
    });
  });
})();
