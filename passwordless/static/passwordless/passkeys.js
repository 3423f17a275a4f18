// Passkeys (WebAuthn) on the app's pages: no library, no inline script (the CSP forbids it).
// The pages say what to do in data- attributes; the server speaks JSON with base64url byte
// strings. Everything but the ceremony itself works without this script.
//
//   [data-passkey-register]      begin -> navigator.credentials.create() -> finish
//   [data-passkey-signin]        begin -> navigator.credentials.get() -> finish -> redirect
//   [data-passkey-conditional]   the same, started on load with mediation "conditional":
//                                the browser offers saved passkeys in the email field's autofill
//   [data-passkey-reauthenticate] a step-up: begin -> get() -> finish -> data-next
//
// What it says is written in the page's language: the status element carries the words as
// data-text-<key> attributes (passwordless/_passkey_status.html); English only without them.
(function () {
  "use strict";
  if (window.passwordlessPasskeys) return; // included twice (a page and its offer): wire once
  window.passwordlessPasskeys = true;
  var supported = !!(window.PublicKeyCredential && navigator.credentials && window.fetch);
  var conditional = null; // the AbortController of a conditional request under way

  function fromB64url(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(b64 + "===".slice((b64.length + 3) % 4));
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes.buffer;
  }

  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer), raw = "";
    for (var i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function withIds(list) {
    return (list || []).map(function (c) {
      return { type: c.type, id: fromB64url(c.id), transports: c.transports };
    });
  }

  function creationOptions(o) {
    var copy = Object.assign({}, o);
    copy.challenge = fromB64url(o.challenge);
    copy.user = Object.assign({}, o.user, { id: fromB64url(o.user.id) });
    copy.excludeCredentials = withIds(o.excludeCredentials);
    return copy;
  }

  function requestOptions(o) {
    var copy = Object.assign({}, o);
    copy.challenge = fromB64url(o.challenge);
    copy.allowCredentials = withIds(o.allowCredentials);
    return copy;
  }

  function credentialJSON(c) {
    var r = c.response, json = {
      id: c.id, rawId: toB64url(c.rawId), type: c.type,
      authenticatorAttachment: c.authenticatorAttachment || null,
      clientExtensionResults: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
      response: { clientDataJSON: toB64url(r.clientDataJSON) }
    };
    if (r.attestationObject) {
      json.response.attestationObject = toB64url(r.attestationObject);
      json.response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      json.response.authenticatorData = toB64url(r.authenticatorData);
      json.response.signature = toB64url(r.signature);
      if (r.userHandle) json.response.userHandle = toB64url(r.userHandle);
    }
    return json;
  }

  function csrfToken(el) {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return el.getAttribute("data-csrf") || (input ? input.value : "");
  }

  function post(el, url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken(el) },
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().catch(function () {
        return { error: { code: "http_" + response.status, message: text(el, "reload", "Something went wrong. Reload the page and try again.") } };
      }).then(function (data) {
        if (data && data.error) throw data.error;
        return data;
      });
    });
  }

  function statusOf(el) {
    var id = el.getAttribute("aria-describedby");
    return (id && document.getElementById(id)) ||
      (el.closest("section, aside, form") || document).querySelector("[data-passkey-status]");
  }

  function say(el, words) {
    var status = statusOf(el);
    if (status) status.textContent = words;
  }

  // The page's words for `key`, in its language (data-text-<key> on the status element).
  function text(el, key, english) {
    var status = statusOf(el);
    return (status && status.getAttribute("data-text-" + key)) || english;
  }

  function failed(el, error) {
    if (error && (error.name === "NotAllowedError" || error.name === "AbortError")) {
      say(el, text(el, "cancelled", "The passkey request was cancelled or timed out. Try again."));
    } else if (error && error.code === "reauthentication_required" && el.getAttribute("data-reauth-url")) {
      var back = el.getAttribute("data-next") || window.location.pathname;
      window.location.assign(el.getAttribute("data-reauth-url") + "?next=" + encodeURIComponent(back));
    } else if (error && error.name === "InvalidStateError") {
      say(el, text(el, "exists", "This device already has a passkey for your account."));
    } else {
      say(el, (error && error.message) || text(el, "failed", "The passkey didn't work. Try again, or use your email."));
    }
  }

  function go(url) {
    window.location.assign(url || window.location.href);
  }

  function register(button) {
    var nameInput = document.getElementById(button.getAttribute("data-name-input") || "");
    var next = button.getAttribute("data-next");
    say(button, text(button, "create", "Follow your browser's prompt to create the passkey…"));
    post(button, button.getAttribute("data-begin-url")).then(function (begun) {
      return navigator.credentials.create({ publicKey: creationOptions(begun.options) }).then(function (credential) {
        return post(button, button.getAttribute("data-finish-url"), {
          challenge_id: begun.challenge_id,
          credential: credentialJSON(credential),
          name: nameInput ? nameInput.value : "",
          next: next
        });
      });
    }).then(function (done) { go(done.redirect); }, function (error) { failed(button, error); });
  }

  function assertion(el, mediation, signal) {
    var next = el.getAttribute("data-next");
    return post(el, el.getAttribute("data-begin-url")).then(function (begun) {
      var request = { publicKey: requestOptions(begun.options) };
      if (mediation) request.mediation = mediation;
      if (signal) request.signal = signal;
      return navigator.credentials.get(request).then(function (credential) {
        return post(el, el.getAttribute("data-finish-url"), {
          challenge_id: begun.challenge_id, credential: credentialJSON(credential), next: next
        });
      });
    }).then(function (done) { go(done.redirect); });
  }

  function signIn(button) {
    if (conditional) conditional.abort(); // one request at a time: the modal one wins
    conditional = null;
    say(button, text(button, "use", "Follow your browser's prompt to use your passkey…"));
    assertion(button).catch(function (error) { failed(button, error); });
  }

  function startConditional(form) {
    if (!PublicKeyCredential.isConditionalMediationAvailable) return;
    PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
      if (!available) return;
      conditional = new AbortController();
      var mine = conditional;
      assertion(form, "conditional", mine.signal).catch(function (error) {
        if (mine.signal.aborted) return; // the button took over
        failed(form, error);
      });
    });
  }

  function wire(selector, action) {
    Array.prototype.forEach.call(document.querySelectorAll(selector), function (el) {
      if (!supported) {
        say(el, text(el, "unsupported", "This browser can't use passkeys. Use your email instead."));
        return;
      }
      el.disabled = false;
      el.addEventListener("click", function () { action(el); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    // What the pages say for browsers without scripts ("passkeys need JavaScript").
    Array.prototype.forEach.call(document.querySelectorAll("[data-passkey-nojs]"), function (el) {
      el.hidden = true;
    });
    wire("[data-passkey-register]", register);
    wire("[data-passkey-signin]", signIn);
    wire("[data-passkey-reauthenticate]", function (button) {
      say(button, text(button, "use", "Follow your browser's prompt to use your passkey…"));
      assertion(button).catch(function (error) { failed(button, error); });
    });
    var form = document.querySelector("[data-passkey-conditional]");
    if (form && supported) startConditional(form);
  });
})();
