/* Room display: the 5-second poll sends back the last ETag (a 304 keeps the page as it is),
   shows "Offline — retrying" while Reserva cannot be reached and hides it on the next answer,
   and clears a button's message after a while. The poll itself is htmx (hx-trigger="every 5s"),
   which keeps asking through any outage. */
(function () {
  "use strict";
  var etag = null;
  var messageTimer = null;

  function poller() { return document.getElementById("display"); }

  function setOffline(offline) {
    var banner = document.getElementById("offline");
    if (banner) banner.hidden = !offline;
    document.body.classList.toggle("is-offline", offline);
  }

  function clearMessageLater() {
    if (messageTimer) clearTimeout(messageTimer);
    messageTimer = setTimeout(function () {
      var message = document.getElementById("display-message");
      if (message) { message.textContent = ""; message.className = "notice"; }
    }, 12000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var el = poller();
    if (el && el.dataset.etag) etag = '"' + el.dataset.etag + '"';
    var message = document.getElementById("display-message");
    if (message && message.textContent.trim()) clearMessageLater();
  });

  document.addEventListener("htmx:configRequest", function (evt) {
    if (evt.detail.elt === poller() && evt.detail.verb === "get" && etag) {
      evt.detail.headers["If-None-Match"] = etag;
    }
  });

  document.addEventListener("htmx:afterRequest", function (evt) {
    var xhr = evt.detail.xhr;
    if (!xhr || xhr.status === 0) return; // no answer: sendError / timeout say so
    if (xhr.status >= 500) { setOffline(true); return; }
    setOffline(false);
    if (evt.detail.elt === poller()) {
      if (xhr.status === 404) { window.location.reload(); return; } // revoked: say so
      var tag = xhr.getResponseHeader("ETag");
      if (tag) etag = tag;
    } else {
      etag = null; // a button changed the room: the next poll fetches the whole state
    }
  });

  document.addEventListener("htmx:sendError", function () { setOffline(true); });
  document.addEventListener("htmx:timeout", function () { setOffline(true); });
  document.addEventListener("htmx:oobAfterSwap", function (evt) {
    var target = (evt.detail && evt.detail.target) || evt.target;
    if (target && target.id === "display-message") clearMessageLater();
  });
})();
