/* Floor map of Find a space: a progressive enhancement of the Popover API.
   Without this file the markers still open their popover (centred; Escape closes it, Tab
   moves from the marker into it) through popovertarget. This file places the open popover
   next to its marker, keeps aria-expanded in step, and moves focus back to the marker when a
   popover is closed from inside it. */
(function () {
  "use strict";

  function markerFor(popover) {
    return document.querySelector('[data-marker][popovertarget="' + popover.id + '"]');
  }

  function place(popover, marker) {
    var box = marker.getBoundingClientRect();
    var width = popover.offsetWidth, height = popover.offsetHeight;
    var left = box.right + 8, top = box.top - 8;
    if (left + width > window.innerWidth - 8) left = Math.max(8, box.left - width - 8);
    if (top + height > window.innerHeight - 8) top = Math.max(8, window.innerHeight - height - 8);
    popover.classList.add("placed");
    popover.style.setProperty("left", left + "px");  // CSSOM: allowed by style-src 'self'
    popover.style.setProperty("top", Math.max(8, top) + "px");
  }

  function wire(root) {
    root.querySelectorAll(".space-popover[popover]").forEach(function (popover) {
      if (popover.dataset.wired) return;
      popover.dataset.wired = "1";
      var marker = markerFor(popover);
      if (!marker) return;
      marker.setAttribute("aria-expanded", "false");
      popover.addEventListener("toggle", function (event) {
        var open = event.newState === "open";
        marker.setAttribute("aria-expanded", open ? "true" : "false");
        if (open) place(popover, marker);
        else if (popover.contains(document.activeElement) || document.activeElement === document.body) marker.focus();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { wire(document); });
  document.addEventListener("htmx:afterSwap", function (event) { wire(event.target); });
})();
