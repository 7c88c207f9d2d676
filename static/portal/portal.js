/* Small progressive enhancements for the portal; every page works without them. */
(function () {
  "use strict";

  // Booking form: show the recurrence details only when "Repeat" is set.
  function syncRecurrence(root) {
    root.querySelectorAll("[data-recurrence]").forEach(function (box) {
      var select = box.querySelector("select[name=repeat]");
      var details = box.querySelector("[data-recurrence-details]");
      if (!select || !details) return;
      var unit = box.querySelector("[data-interval-unit]");
      var update = function () {
        details.hidden = !select.value;
        if (unit) {
          unit.textContent = select.value === "daily" ? "day(s)"
            : select.value.indexOf("monthly") === 0 ? "month(s)" : "week(s)";
        }
        var weekdays = details.querySelector(".weekdays");
        if (weekdays) weekdays.hidden = select.value !== "weekly";
      };
      select.addEventListener("change", update);
      update();
      // The weekday ticked for "every week" follows the date until the person picks days.
      var form = box.closest("form");
      var date = form && form.querySelector("input[name=date]");
      var days = details.querySelectorAll("input[name=weekdays]");
      var picked = false;
      days.forEach(function (day) { day.addEventListener("change", function () { picked = true; }); });
      if (date && days.length) {
        date.addEventListener("change", function () {
          var parts = date.value.split("-");
          if (picked || parts.length !== 3) return;
          var weekday = (new Date(+parts[0], +parts[1] - 1, +parts[2]).getDay() + 6) % 7;
          days.forEach(function (day) { day.checked = +day.value === weekday; });
        });
      }
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

  // The day schedule as a WAI-ARIA grid: one tab stop (the cell last visited, else the first
  // free half hour), arrow keys move between cells, Home/End to a row's ends, Ctrl+Home/End
  // to the grid's; Enter follows the cell's link (book a free half hour, open a booking).
  // Without this script every link and booking stays in the tab order.
  function keyboardGrid(root) {
    root.querySelectorAll("[data-keyboard-grid]").forEach(function (grid) {
      if (grid.dataset.gridReady) return;
      grid.dataset.gridReady = "1";
      var rows = Array.prototype.filter.call(grid.querySelectorAll("[role=row]"), function (row) {
        return row.querySelector("[role=gridcell]");
      }).map(function (row) {
        return Array.prototype.slice.call(row.querySelectorAll("[role=rowheader], [role=gridcell]"));
      });
      if (!rows.length) return;
      var target = function (cell) {
        return cell.querySelector("a[href], .block[tabindex]") || cell;
      };
      rows.forEach(function (cells) {
        cells.forEach(function (cell) {
          cell.querySelectorAll("a[href], [tabindex]").forEach(function (el) { el.tabIndex = -1; });
          target(cell).tabIndex = -1;
        });
      });
      var current = grid.querySelector(".slot-book") || target(rows[0][0]);
      var at = function (el) {
        for (var r = 0; r < rows.length; r++) {
          for (var c = 0; c < rows[r].length; c++) {
            if (rows[r][c].contains(el)) return [r, c];
          }
        }
        return null;
      };
      var move = function (el) {
        current.tabIndex = -1;
        current = el;
        current.tabIndex = 0;
        current.focus();
      };
      current.tabIndex = 0;
      grid.addEventListener("focusin", function (event) {
        if (at(event.target) && event.target !== current) {
          current.tabIndex = -1;
          current = event.target;
          current.tabIndex = 0;
        }
      });
      grid.addEventListener("keydown", function (event) {
        var pos = at(event.target);
        if (!pos) return;
        var r = pos[0], c = pos[1];
        switch (event.key) {
          case "ArrowRight": c += 1; break;
          case "ArrowLeft": c -= 1; break;
          case "ArrowDown": r += 1; break;
          case "ArrowUp": r -= 1; break;
          case "Home": if (event.ctrlKey) r = 0; c = 0; break;
          case "End": if (event.ctrlKey) r = rows.length - 1; c = rows[r].length - 1; break;
          case "Enter": {
            // A booking someone else holds: its Details link, when the viewer may open it.
            var link = event.target.tagName === "A" ? null : event.target.querySelector("a[href]");
            if (link) { event.preventDefault(); link.click(); }
            return;
          }
          default: return;
        }
        event.preventDefault();
        r = Math.max(0, Math.min(rows.length - 1, r));
        c = Math.max(0, Math.min(rows[r].length - 1, c));
        move(target(rows[r][c]));
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    keyboardGrid(document);
    syncRecurrence(document);
    focusProblem(document);
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    syncRecurrence(event.target);
    keyboardGrid(event.target);
  });
})();
