/* Small progressive enhancements for the portal; every page works without them. */
(function () {
  "use strict";

  // Booking form: show the recurrence details only when "Repeat" is set.
  function syncRecurrence(root) {
    root.querySelectorAll("[data-recurrence]").forEach(function (box) {
      var select = box.querySelector("select[name=repeat]");
      var details = box.querySelector("[data-recurrence-details]");
      if (!select || !details) return;
      var update = function () {
        details.hidden = !select.value;
        var weekdays = details.querySelector(".weekdays");
        if (weekdays) weekdays.hidden = select.value !== "weekly";
      };
      select.addEventListener("change", update);
      update();
    });
  }

  // Move focus to the first field with an error, or the conflict panel, after a failed submit.
  function focusProblem(root) {
    var target = root.querySelector("#conflict, .has-error input, .has-error select, .has-error textarea");
    if (target) {
      if (target.id === "conflict") target.setAttribute("tabindex", "-1");
      target.focus({ preventScroll: false });
    }
  }

  // A secret shown once (the new feed address): selected on focus, and a Copy button.
  function copyFields(root) {
    root.querySelectorAll("[data-select-on-focus]").forEach(function (field) {
      field.addEventListener("focus", function () { field.select(); });
    });
    if (!navigator.clipboard) return;
    root.querySelectorAll("button[data-copy]").forEach(function (button) {
      var field = document.querySelector(button.getAttribute("data-copy"));
      if (!field) return;
      button.hidden = false;
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(field.value).then(function () {
          button.textContent = "Copied";
        });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    syncRecurrence(document);
    focusProblem(document);
    copyFields(document);
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    syncRecurrence(event.target);
  });
})();
