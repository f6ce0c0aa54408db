// The collector's live view: stored events, newest on top, with their problems and deliveries,
// updated in place from /api/stream. Plain DOM with textContent only: events come from anyone who
// can post to the collector and must never become markup.
(function () {
  'use strict';

  var MAX_ROWS = 2000;
  var page = new URLSearchParams(location.search);
  var token = page.get('token'); // the page and its stream are admin endpoints (SPEC §8)
  var list = document.getElementById('events');
  var statusEl = document.getElementById('status');
  var filterEl = document.getElementById('filter');
  var emptyEl = document.getElementById('empty');
  var countsEl = document.getElementById('counts');
  var keysEl = document.getElementById('keys');
  var rows = new Map(); // key + event_id → { li, event }
  var keys = new Set();

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function api(path, init) {
    init = init || {};
    init.cache = 'no-store';
    init.headers = init.headers || {};
    if (token) init.headers.Authorization = 'Bearer ' + token; // a header, so fetches keep it out of URLs
    return fetch(path, init).then(function (r) {
      if (!r.ok) throw new Error(r.status === 401 ? 'not allowed (admin token?)' : 'HTTP ' + r.status);
      return r.json();
    });
  }

  function clock(ms) { return new Date(ms).toLocaleTimeString(); }
  function when(ms) { return new Date(ms).toLocaleString(); }

  /** One delivery as a badge: its state and what the operator needs to act on it. */
  function delivery(d, event) {
    var failing = d.state === 'pending' && (d.last_status === 401 || d.last_status === 403);
    var badge = el('li', 'delivery ' + d.state + (failing ? ' failing' : ''));
    badge.appendChild(el('b', '', d.connection_id));
    var text = ' ' + d.state;
    if (d.state === 'delivered') {
      text += (d.last_status ? ' · ' + d.last_status : '') + (d.delivered_at ? ' · ' + clock(d.delivered_at) : '');
    } else if (d.state === 'pending') {
      if (failing) text += ' · Spotify refused the token (' + d.last_status + '), waiting';
      else if (d.attempts > 0) text += ' · retrying' + (d.last_status ? ' after ' + d.last_status : '');
      if (d.attempts > 0) text += ' · attempt ' + d.attempts;
      if (d.next_attempt_at && d.attempts > 0) text += ' · next ' + clock(d.next_attempt_at);
    } else if (d.state === 'dead') {
      text += (d.last_status ? ' · ' + d.last_status : '') + ' · after ' + d.attempts + ' attempt' + (d.attempts === 1 ? '' : 's');
    }
    badge.appendChild(document.createTextNode(text));
    if ((d.state === 'dead' || d.state === 'skipped' || d.state === 'pending') && d.last_error) {
      badge.appendChild(document.createTextNode(d.state === 'skipped' ? ': ' : ' · '));
      badge.appendChild(el('span', 'error', d.last_error));
    }
    if (d.state === 'dead') {
      var button = el('button', '', 'replay');
      button.type = 'button';
      button.addEventListener('click', function () {
        button.disabled = true;
        api('/api/deliveries/replay', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ event_ids: [event.event_id] }),
        }).catch(function (err) { button.disabled = false; button.title = err.message; });
      });
      badge.appendChild(button);
    }
    return badge;
  }

  function render(li, e) {
    li.textContent = '';
    li.dataset.key = e.key;
    li.dataset.received = e.received_at;
    var problems = e.problems || [];
    var deliveries = e.deliveries || [];
    li.classList.toggle('bad', problems.length > 0 || deliveries.some(function (d) { return d.state === 'dead'; }));

    var head = el('div', 'head');
    head.appendChild(el('span', 'action', e.action));
    head.appendChild(el('span', 'meta', 'key ' + e.key));
    head.appendChild(el('span', 'meta', when(e.time)));
    head.appendChild(el('span', 'meta', 'event_id ' + e.event_id));
    head.appendChild(el('span', 'meta', e.transport + (e.action_source && e.action_source !== 'WEB' ? ' · ' + e.action_source : '')));
    if (e.opt_out_targeting) head.appendChild(el('span', 'meta', 'opt_out_targeting'));
    li.appendChild(head);

    if (problems.length) {
      var ul = el('ul', 'problems');
      problems.forEach(function (text) { ul.appendChild(el('li', '', text)); });
      li.appendChild(ul);
    }

    if (deliveries.length) {
      var badges = el('ul', 'deliveries');
      deliveries.forEach(function (d) { badges.appendChild(delivery(d, e)); });
      li.appendChild(badges);
    } else {
      li.appendChild(el('div', 'none', e.action === 'alias' ? 'alias: not relayed, its identifiers ride along' : 'relayed nowhere'));
    }

    var details = el('details');
    details.appendChild(el('summary', '', 'body, ids and request'));
    details.appendChild(el('pre', '', JSON.stringify({
      body: e.body, alias: e.alias, uid: e.uid, sid: e.sid, cid: e.cid,
      ip: e.ip, user_agent: e.user_agent, received_at: when(e.received_at),
    }, null, 2)));
    li.appendChild(details);
  }

  function applyFilter(li) {
    var want = filterEl.value.trim();
    li.classList.toggle('hidden', want !== '' && li.dataset.key !== want);
  }

  /** Adds or updates an event's row. The stream is newer than any history fetched alongside it. */
  function show(e, fromHistory) {
    var id = e.key + '\u0000' + e.event_id;
    var row = rows.get(id);
    if (row && fromHistory) return;
    if (row) {
      var open = row.li.querySelector('details[open]') !== null;
      render(row.li, e);
      if (open) row.li.querySelector('details').open = true;
      row.event = e;
    } else {
      var li = el('li');
      render(li, e);
      // Newest on top, by arrival at the collector.
      var before = list.firstElementChild;
      while (before && Number(before.dataset.received) > e.received_at) before = before.nextElementSibling;
      list.insertBefore(li, before);
      rows.set(id, { li: li, event: e });
      applyFilter(li);
      trim();
    }
    if (!keys.has(e.key)) {
      keys.add(e.key);
      keysEl.appendChild(el('option')).value = e.key;
    }
    emptyEl.hidden = rows.size > 0;
    count();
  }

  function trim() {
    while (rows.size > MAX_ROWS) {
      var last = list.lastElementChild;
      rows.forEach(function (row, id) { if (row.li === last) rows.delete(id); });
      list.removeChild(last);
    }
  }

  function count() {
    var problems = 0;
    var dead = 0;
    rows.forEach(function (row) {
      if ((row.event.problems || []).length) problems++;
      (row.event.deliveries || []).forEach(function (d) { if (d.state === 'dead') dead++; });
    });
    countsEl.textContent = rows.size + ' events shown · ' + problems + ' with problems · ' + dead + ' dead deliveries';
  }

  function loadHistory(key) {
    api('/api/events?limit=500' + (key ? '&key=' + encodeURIComponent(key) : ''))
      .then(function (events) { events.forEach(function (e) { show(e, true); }); })
      .catch(function (err) {
        statusEl.textContent = 'could not load events: ' + err.message;
        statusEl.className = 'status off';
      });
  }

  // Subscribe first, then load what is already stored, so nothing falls in between.
  var source = new EventSource('/api/stream' + (token ? '?token=' + encodeURIComponent(token) : ''));
  var loaded = false;
  source.onopen = function () {
    statusEl.textContent = 'live';
    statusEl.className = 'status on';
    // A reconnect resumes from the last event id: the stream brings what was missed.
    if (!loaded) loadHistory(filterEl.value.trim());
    loaded = true;
  };
  source.onerror = function () {
    statusEl.textContent = 'disconnected, retrying…';
    statusEl.className = 'status off';
  };
  source.onmessage = function (msg) { show(JSON.parse(msg.data), false); };

  var typing;
  filterEl.value = page.get('key') || '';
  filterEl.addEventListener('input', function () {
    Array.prototype.forEach.call(list.children, applyFilter);
    clearTimeout(typing);
    // Older events of that key may not be on the page yet.
    typing = setTimeout(function () { if (filterEl.value.trim()) loadHistory(filterEl.value.trim()); }, 300);
  });
})();
