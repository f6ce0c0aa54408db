// Account sign-up: spdt('signup') and spdt('alias', { email, phone_number }) on submit.
(function () {
  'use strict';

  document.addEventListener('DOMContentLoaded', function () {
    var form = document.getElementById('form');
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var email = form.elements.email.value.trim();
      var phone = form.elements.phone.value.trim();
      window.spdt('signup', { sign_up_method: 'email' });
      // Both are hashed in the browser; an empty phone number is simply not sent.
      window.spdt('alias', { email: email, phone_number: phone });
      form.hidden = true;
      var done = document.getElementById('done');
      done.querySelector('strong').textContent = form.elements.fullname.value.trim() || email;
      done.hidden = false;
    });
  });
})();
