// Newsletter sign-up: spdt('lead') and spdt('alias', { email }) on submit; the page stays put.
(function () {
  'use strict';

  document.addEventListener('DOMContentLoaded', function () {
    var form = document.getElementById('form');
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var email = form.elements.email.value.trim();
      window.spdt('lead', { type: 'newsletter', category: form.elements.topic.value });
      // The pixel sends only the SHA-256 hash of the email, never the address itself.
      window.spdt('alias', { email: email });
      form.hidden = true;
      var done = document.getElementById('done');
      done.querySelector('strong').textContent = email;
      done.hidden = false;
    });
  });
})();
