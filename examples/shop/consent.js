// Pod Shop's consent banner: opt-in, as EU sites need it. The snippet starts the pixel with
// consent: 'pending', so it holds the page's events in memory and sends nothing, writes no cookie.
// The visitor's choice is the shop's own first-party flag, localStorage['podshop_consent']:
//   no choice yet -> the banner asks; nothing is sent until then
//   Accept        -> spdt('consent', 'granted'): the held events go out, and so does what follows
//   Decline       -> spdt('consent', 'denied'): the held events are dropped, nothing is sent, and
//                    the pixel deletes its cookies and storage
// On later pages the remembered choice is passed to the pixel at once, without asking again
// (the pixel itself keeps no consent state across pages). "Privacy choices" in the footer reopens
// the banner, so the visitor can change their mind at any time.
// This file is loaded right after the snippet, without `defer`, so the choice reaches the pixel
// before anything could be sent.
(function () {
  'use strict';

  var KEY = 'podshop_consent';

  function remembered() {
    try {
      var value = localStorage.getItem(KEY);
      return value === 'granted' || value === 'denied' ? value : null;
    } catch (e) {
      return null; // storage blocked: the banner asks on every page, and nothing goes out unasked
    }
  }

  function choose(value) {
    try { localStorage.setItem(KEY, value); } catch (e) { /* ignore */ }
    window.spdt('consent', value);
  }

  var choice = remembered();
  if (choice) window.spdt('consent', choice);

  function button(label, value, box) {
    var b = document.createElement('button');
    b.type = 'button';
    b.className = 'button';
    b.textContent = label;
    b.setAttribute('data-consent', value);
    b.addEventListener('click', function () { choose(value); box.remove(); });
    return b;
  }

  function banner() {
    var box = document.createElement('aside');
    box.className = 'consent';
    box.setAttribute('aria-label', 'Ad measurement consent');

    var text = document.createElement('p');
    text.textContent = 'May Pod Shop measure which podcast ads bring visitors here? If you accept, a ' +
      'pixel sets a cookie with a random id and reports the pages you view, your sign-ups and orders ' +
      'to Pod Shop\'s collector, which may pass them to Spotify to measure its ads. An email or phone ' +
      'number you enter goes only as a one-way hash. Nothing is sent unless you accept.';

    var actions = document.createElement('div');
    actions.className = 'consent-actions';
    // Declining is as easy as accepting: same size, same place.
    actions.append(button('Decline', 'denied', box), button('Accept', 'granted', box));
    box.append(text);
    var current = remembered();
    if (current) {
      var status = document.createElement('p');
      status.className = 'muted';
      status.textContent = 'Your current choice: ' + (current === 'granted' ? 'accepted' : 'declined') +
        '. You can change it here at any time.';
      box.append(status);
    }
    box.append(actions);
    document.body.append(box);
    return box;
  }

  document.addEventListener('DOMContentLoaded', function () {
    if (!remembered()) banner();
    // Any "Privacy choices" button in the page reopens the banner.
    document.querySelectorAll('[data-consent-open]').forEach(function (open) {
      open.addEventListener('click', function () {
        var box = document.querySelector('.consent') || banner();
        box.querySelector('button').focus();
      });
    });
  });
})();
