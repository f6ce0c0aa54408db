// Product page: spdt('product') when it is shown, spdt('addtocart') when it goes into the cart.
(function () {
  'use strict';
  var shop = window.PodShop, el = shop.el;

  document.addEventListener('DOMContentLoaded', function () {
    var id = new URLSearchParams(location.search).get('id');
    var p = shop.find(id) || shop.PRODUCTS[0];
    document.title = p.name + ' · Pod Shop';

    document.getElementById('art').src = p.image;
    document.getElementById('name').textContent = p.name;
    document.getElementById('blurb').textContent = p.blurb;
    document.getElementById('price').textContent = shop.money(p.price);

    var variant = document.getElementById('variant');
    p.variants.forEach(function (v) { variant.append(el('option', { value: v.id, text: v.name })); });
    variant.closest('label').hidden = p.variants.length < 2;

    function productProps() {
      var v = p.variants.filter(function (x) { return x.id === variant.value; })[0] || p.variants[0];
      return {
        value: p.price, currency: shop.CURRENCY,
        product_id: p.id, product_name: p.name, product_type: p.type, product_vendor: shop.VENDOR,
        variant_id: v.id, variant_name: v.name
      };
    }

    window.spdt('product', productProps());

    var form = document.getElementById('add');
    var added = document.getElementById('added');
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var quantity = Math.max(1, parseInt(form.elements.quantity.value, 10) || 1);
      var props = productProps();
      props.quantity = quantity;
      props.value = p.price * quantity; // the value of what was added
      window.spdt('addtocart', props);
      shop.addToCart(p.id, props.variant_id, quantity);
      added.hidden = false;
      added.querySelector('span').textContent = quantity + ' × ' + p.name + ' (' + props.variant_name + ') added.';
    });
  });
})();
