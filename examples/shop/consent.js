// Pod Shop's consent banner. The pixel starts with its default (consent granted); the visitor's
// choice is kept in localStorage under the shop's own key and passed to the pixel on every page:
//   Accept  -> spdt('consent', 'granted')
//   Decline -> spdt('consent', 'denied')   (the pixel drops held events and deletes its cookies)
// This file is loaded right after the snippet, without `defer`, so a remembered choice reaches
// the pixel as early as possible. For strict opt-in, put consent: 'pending' in the snippet's conf.
(function () {
  'use strict';

  var KEY = 'podshop_consent';

  function remembered() {
    try {
      var value = localStorage.getItem(KEY);
      return value === 'granted' || value === 'denied' ? value : null;
    } catch (e) {
      return null;
    }
  }

  function choose(value) {
    try { localStorage.setItem(KEY, value); } catch (e) { /* ignore */ }
    window.spdt('consent', value);
  }

  var choice = remembered();
  if (choice) window.spdt('consent', choice);

  function banner() {
    var box = document.createElement('aside');
    box.className = 'consent';
    box.setAttribute('aria-label', 'Cookie consent');

    var text = document.createElement('p');
    text.textContent = 'Pod Shop measures which podcast ads bring listeners here, with a first-party ' +
      'pixel (a cookie with a random id, no raw email). OK with that?';

    var decline = document.createElement('button');
    decline.type = 'button';
    decline.className = 'button secondary';
    decline.textContent = 'Decline';

    var accept = document.createElement('button');
    accept.type = 'button';
    accept.className = 'button';
    accept.textContent = 'Accept';

    decline.addEventListener('click', function () { choose('denied'); box.remove(); });
    accept.addEventListener('click', function () { choose('granted'); box.remove(); });

    var actions = document.createElement('div');
    actions.className = 'consent-actions';
    actions.append(decline, accept);
    box.append(text);
    var current = remembered();
    if (current) {
      var status = document.createElement('p');
      status.className = 'muted';
      status.textContent = 'Your current choice: ' + (current === 'granted' ? 'accepted.' : 'declined.');
      box.append(status);
    }
    box.append(actions);
    document.body.append(box);
    return box;
  }

  document.addEventListener('DOMContentLoaded', function () {
    if (!remembered()) banner();
    // Any "Privacy choices" button in the page reopens the banner.
    document.querySelectorAll('[data-consent-open]').forEach(function (button) {
      button.addEventListener('click', function () {
        var open = document.querySelector('.consent');
        (open || banner()).querySelector('button').focus();
      });
    });
  });
})();
