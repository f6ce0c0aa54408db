// Live "pixel helper" for the reference collector: lists stored events as they arrive.
// Plain DOM, textContent only: event bodies come from any site and must never become markup.
(function () {
  'use strict';

  var list = document.getElementById('events');
  var statusEl = document.getElementById('status');
  var filterEl = document.getElementById('filter');
  var emptyEl = document.getElementById('empty');
  var shown = new Set(); // key + event_id of the events on the page
  var COMMERCE = ['purchase', 'checkout', 'addtocart', 'product'];

  function problems(e) {
    var b = e.body || {};
    var out = [];
    var hasValue = b.value !== undefined && b.value !== null && b.value !== '';
    var hasCurrency = typeof b.currency === 'string' && b.currency !== '';
    var commerce = COMMERCE.indexOf(e.action) !== -1;
    if (commerce && !hasValue) out.push(e.action + ' without value');
    if (hasValue && !hasCurrency) out.push('value without currency');
    else if (commerce && !hasCurrency) out.push(e.action + ' without currency');
    if (b.trunc) out.push('truncated (trunc=1): free props or line items were dropped to fit');
    if (e.opt_out_targeting) out.push('opt_out_targeting: measurement only, no retargeting');
    return out;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function applyFilter(li) {
    var want = filterEl.value.trim();
    li.classList.toggle('hidden', want !== '' && li.dataset.key !== want);
  }

  function add(e) {
    var id = JSON.stringify([e.key, e.event_id]);
    if (shown.has(id)) return; // history and stream may overlap
    shown.add(id);

    var li = el('li');
    li.dataset.key = e.key;
    li.dataset.received = e.received_at;
    var head = el('div', 'head');
    head.appendChild(el('span', 'action', e.action));
    head.appendChild(el('span', 'meta', 'key ' + e.key));
    head.appendChild(el('span', 'meta', new Date(e.time).toLocaleString()));
    head.appendChild(el('span', 'meta', 'event_id ' + e.event_id));
    head.appendChild(el('span', 'meta', e.transport + (e.ns ? ' (noscript)' : '')));
    li.appendChild(head);

    var issues = problems(e);
    if (issues.length) {
      li.classList.add('bad');
      var ul = el('ul', 'problems');
      issues.forEach(function (text) { ul.appendChild(el('li', '', text)); });
      li.appendChild(ul);
    }
    li.appendChild(el('pre', '', JSON.stringify(e.body, null, 2)));

    // Newest on top, by arrival at the collector.
    var before = list.firstElementChild;
    while (before && Number(before.dataset.received) > e.received_at) before = before.nextElementSibling;
    list.insertBefore(li, before);
    applyFilter(li);
    emptyEl.hidden = true;
  }

  function clearList() {
    list.textContent = '';
    shown.clear();
    emptyEl.hidden = false;
  }

  function loadHistory() {
    fetch('/api/events').then(function (r) { return r.json(); }).then(function (events) {
      events.forEach(add);
    }).catch(function (err) { statusEl.textContent = 'could not load events: ' + err.message; });
  }

  // Subscribe first, then load what is already stored, so nothing falls in between.
  var source = new EventSource('/api/stream');
  source.onopen = function () {
    statusEl.textContent = 'live';
    statusEl.className = 'status on';
    loadHistory(); // also after a reconnect, to catch up on what was missed
  };
  source.onerror = function () {
    statusEl.textContent = 'disconnected, retrying…';
    statusEl.className = 'status off';
  };
  source.onmessage = function (msg) { add(JSON.parse(msg.data)); };
  source.addEventListener('clear', clearList);

  filterEl.addEventListener('input', function () {
    Array.prototype.forEach.call(list.children, applyFilter);
  });
  document.getElementById('clear').addEventListener('click', function () {
    fetch('/api/events', { method: 'DELETE' }).then(clearList);
  });
})();
