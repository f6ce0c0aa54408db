// Thank-you page: spdt('purchase') for the order saved by checkout.js, sent once per order.
(function () {
  'use strict';
  var shop = window.PodShop, el = shop.el;

  document.addEventListener('DOMContentLoaded', function () {
    var order = shop.read(sessionStorage, 'podshop:order', null);
    if (!order || !Array.isArray(order.lines) || !order.lines.length) {
      document.getElementById('none').hidden = false;
      return;
    }
    document.getElementById('done').hidden = false;
    document.getElementById('order-id').textContent = order.id;

    var items = shop.lineItems(order.lines);
    var sum = shop.totals(order.lines);
    var summary = document.getElementById('summary');
    items.forEach(function (item) {
      summary.append(el('li', null, item.quantity + ' × ' + item.product_name + ' (' + item.variant_name + ')',
        el('span', { class: 'num', text: shop.money(item.value * item.quantity) })));
    });
    document.getElementById('total').textContent = shop.money(sum.value);

    if (!order.reported) {
      window.spdt('purchase', {
        order_id: order.id,
        // The same id a server-side Conversions API send would use, so the two are deduplicated.
        event_id: order.id,
        value: sum.value,
        currency: shop.CURRENCY,
        quantity: sum.quantity,
        is_new_customer: order.is_new_customer === true,
        line_items: items
      });
      // Reloading this page must not count the purchase twice.
      order.reported = true;
      shop.write(sessionStorage, 'podshop:order', order);
      shop.write(localStorage, 'podshop:customer', true);
      shop.saveCart([]);
    }
  });
})();
