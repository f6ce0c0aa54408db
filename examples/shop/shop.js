// Pod Shop: the catalogue, the cart and the page header, shared by every page.
// The cart lives in sessionStorage, so it lasts for this tab and is gone when the tab is closed.
(function () {
  'use strict';

  var CURRENCY = 'USD';
  var VENDOR = 'Pod Shop';
  var CART_KEY = 'podshop:cart';

  var PRODUCTS = [
    { id: 'mug-100', name: 'Episode 100 Mug', type: 'Mugs', price: 14, image: 'img/mug.svg',
      blurb: 'Celebrate a hundred episodes of rambling with a 350 ml stoneware mug.',
      variants: [{ id: 'mug-100-white', name: 'White' }, { id: 'mug-100-black', name: 'Black' }] },
    { id: 'tee', name: 'Listener Tee', type: 'Apparel', price: 29, image: 'img/tee.svg',
      blurb: 'Heavyweight organic cotton, with an embroidered soundwave on the chest.',
      variants: [{ id: 'tee-s', name: 'S' }, { id: 'tee-m', name: 'M' }, { id: 'tee-l', name: 'L' }] },
    { id: 'tote', name: 'Studio Tote', type: 'Bags', price: 19, image: 'img/tote.svg',
      blurb: 'Big enough for a laptop, two microphones and a very long cable.',
      variants: [{ id: 'tote-natural', name: 'Natural' }] },
    { id: 'stickers', name: 'Sticker Pack', type: 'Stickers', price: 6, image: 'img/stickers.svg',
      blurb: 'Eight vinyl stickers, one for every inside joke of season two.',
      variants: [{ id: 'stickers-s2', name: 'Season 2' }] }
  ];

  function find(id) {
    for (var i = 0; i < PRODUCTS.length; i++) if (PRODUCTS[i].id === id) return PRODUCTS[i];
    return null;
  }

  function money(amount) {
    return new Intl.NumberFormat('en-US', { style: 'currency', currency: CURRENCY }).format(amount);
  }

  // Storage may be unavailable (private modes, blocked): the shop then simply forgets.
  function read(storage, key, fallback) {
    try {
      var raw = storage.getItem(key);
      return raw ? JSON.parse(raw) : fallback;
    } catch (e) {
      return fallback;
    }
  }
  function write(storage, key, value) {
    try {
      if (value == null) storage.removeItem(key);
      else storage.setItem(key, JSON.stringify(value));
    } catch (e) { /* ignore */ }
  }

  // A cart line: { product_id, variant_id, quantity }; names and prices come from the catalogue.
  function getCart() {
    var lines = read(sessionStorage, CART_KEY, []);
    return Array.isArray(lines) ? lines.filter(function (l) { return find(l.product_id); }) : [];
  }
  function saveCart(lines) {
    write(sessionStorage, CART_KEY, lines.length ? lines : null);
    updateCartCount();
  }
  function addToCart(productId, variantId, quantity) {
    var lines = getCart();
    var line = lines.filter(function (l) { return l.variant_id === variantId; })[0];
    if (line) line.quantity += quantity;
    else lines.push({ product_id: productId, variant_id: variantId, quantity: quantity });
    saveCart(lines);
  }

  // The cart as spdt `line_items`: value is the unit price, quantity the number of units.
  function lineItems(lines) {
    return lines.map(function (l) {
      var p = find(l.product_id);
      var v = p.variants.filter(function (x) { return x.id === l.variant_id; })[0] || p.variants[0];
      return {
        product_id: p.id, product_name: p.name, product_type: p.type, product_vendor: VENDOR,
        variant_id: v.id, variant_name: v.name, value: p.price, quantity: l.quantity
      };
    });
  }
  function totals(lines) {
    var value = 0, quantity = 0;
    lineItems(lines).forEach(function (item) {
      value += item.value * item.quantity;
      quantity += item.quantity;
    });
    return { value: Math.round(value * 100) / 100, quantity: quantity };
  }

  // Tiny DOM helper, so no page needs innerHTML: el('p', { class: 'x' }, 'text', child, …).
  function el(tag, attrs) {
    var node = document.createElement(tag);
    for (var name in attrs || {}) {
      if (name === 'text') node.textContent = attrs[name];
      else node.setAttribute(name, attrs[name]);
    }
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child != null) node.append(child);
    }
    return node;
  }

  function updateCartCount() {
    var count = document.getElementById('cart-count');
    if (count) count.textContent = String(totals(getCart()).quantity);
  }

  // Marks the current page in the navigation and shows the cart size.
  document.addEventListener('DOMContentLoaded', function () {
    var page = location.pathname.split('/').pop() || 'index.html';
    document.querySelectorAll('.site-nav a').forEach(function (a) {
      if (a.getAttribute('href') === page) a.setAttribute('aria-current', 'page');
    });
    updateCartCount();
  });

  window.PodShop = {
    CURRENCY: CURRENCY, VENDOR: VENDOR, PRODUCTS: PRODUCTS,
    find: find, money: money, read: read, write: write, el: el,
    getCart: getCart, saveCart: saveCart, addToCart: addToCart, lineItems: lineItems, totals: totals
  };
})();
