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

  document.addEventListener("DOMContentLoaded", function () {
    syncRecurrence(document);
    focusProblem(document);
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    syncRecurrence(event.target);
  });
})();
