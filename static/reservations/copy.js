// A secret shown once (a new feed address in the portal, a new API client's id and secret in
// the admin): each field selects itself on focus, and a Copy button (shown only where the
// browser offers the clipboard) copies it and says so. One file for the portal and the admin,
// not inline: the Content-Security-Policy allows no inline script.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-select-on-focus]").forEach(function (field) {
      field.addEventListener("focus", function () { field.select(); });
    });
    if (!navigator.clipboard) return;
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      var field = document.querySelector(button.getAttribute("data-copy"));
      if (!field) return;
      button.hidden = false;
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(field.value).then(function () {
          button.textContent = "Copied";
        });
      });
    });
  });
})();
