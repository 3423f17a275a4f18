// The waiting page: ask the server every two seconds whether another device approved this
// sign-in, and show the email's delivery state. Without JavaScript the page refreshes itself.
(function () {
  "use strict";
  var root = document.querySelector("[data-wait-url]");
  if (!root || !window.fetch) {
    return;
  }
  var url = root.getAttribute("data-wait-url");
  var delivery = document.getElementById("delivery-state");

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json();
      })
      .then(function (body) {
        if (body.redirect) {
          window.location.assign(body.redirect);
        } else if (body.error && body.error.code !== "rate_limited") {
          // Locked, expired or used: the page itself explains, with what to do next.
          window.location.reload();
        } else {
          if (delivery && body.delivery_text) {
            delivery.textContent = body.delivery_text;
          }
          window.setTimeout(poll, body.error ? 10000 : 2000);
        }
      })
      .catch(function () {
        window.setTimeout(poll, 5000);
      });
  }

  window.setTimeout(poll, 2000);
})();
