// Bulk export progress: poll the job's JSON every second and redraw, until it finishes.
(function () {
  "use strict";
  var root = document.querySelector(".export-progress");
  if (!root) return;
  var url = root.dataset.url;
  function text(id, value) {
    var el = document.getElementById(id);
    if (el) el.textContent = value;
  }
  function cell(row, value) {
    var td = document.createElement("td");
    td.textContent = value === null || value === undefined || value === "" ? "-" : value;
    row.appendChild(td);
  }
  function draw(p) {
    var bar = document.getElementById("export-bar");
    bar.value = p.percent;
    bar.textContent = p.percent + "%";
    text("export-status", p.status_display);
    text("export-done", p.done);
    text("export-total", p.total);
    text("export-created", p.created);
    text("export-updated", p.updated);
    text("export-failed", p.failed);
    var body = document.getElementById("export-errors");
    body.replaceChildren();
    if (!p.errors.length) {
      var row = body.insertRow();
      var td = document.createElement("td");
      td.colSpan = 4;
      td.textContent = "None.";
      row.appendChild(td);
    }
    p.errors.forEach(function (e) {
      var row = body.insertRow();
      cell(row, e.reservation);
      cell(row, e.start);
      cell(row, e.error);
      cell(row, e.code);
    });
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) throw new Error(r.status);
        return r.json();
      })
      .then(function (p) {
        draw(p);
        if (!p.finished) setTimeout(poll, 1000);
      })
      .catch(function () {
        setTimeout(poll, 5000); // a blip (deploy, network): try again, more slowly
      });
  }
  setTimeout(poll, 1000);
})();
