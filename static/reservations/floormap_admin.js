/* Admin: place the spaces of a floor on its map by clicking (reservations/admin_floormaps.py).
   A click on the plan sends the selected space and the click's position relative to the
   image (0..1 across and down) to the admin's place view, with the page's CSRF token. */
(function () {
  "use strict";

  function percent(value) { return Math.round(value * 100); }

  function setPosition(marker, x, y) {
    marker.className = marker.className.replace(/\bat-[xy]\d+\b/g, "").trim();
    marker.classList.add("at-x" + percent(x), "at-y" + percent(y));
  }

  function init(box) {
    var url = box.getAttribute("data-place-url");
    var select = box.querySelector("[data-floormap-space]");
    var status = box.querySelector("[data-floormap-status]");
    var canvas = box.querySelector("[data-floormap-canvas]");
    var image = box.querySelector("[data-floormap-image]");
    var clear = box.querySelector("[data-floormap-clear]");
    var token = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (!select || !canvas || !image || !token) return;

    function markerOf(id) { return canvas.querySelector('.marker[data-space="' + id + '"]'); }
    function nameOf(id) {
      var option = select.querySelector('option[value="' + id + '"]');
      return option ? option.textContent.replace(" (not placed)", "") : "";
    }
    function highlight() {
      canvas.querySelectorAll(".marker").forEach(function (m) {
        m.classList.toggle("selected", m.getAttribute("data-space") === select.value);
      });
    }

    function send(fields) {
      var body = new FormData();
      body.append("space", select.value);
      Object.keys(fields).forEach(function (key) { body.append(key, fields[key]); });
      return fetch(url, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { "X-CSRFToken": token.value },
      }).then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) throw new Error(data.error || "Not saved.");
          return data;
        });
      });
    }

    image.addEventListener("click", function (event) {
      if (!select.value) return;
      var rect = image.getBoundingClientRect();
      var x = Math.min(1, Math.max(0, (event.clientX - rect.left) / rect.width));
      var y = Math.min(1, Math.max(0, (event.clientY - rect.top) / rect.height));
      send({ x: x.toFixed(4), y: y.toFixed(4) }).then(function (data) {
        var marker = markerOf(data.space);
        if (!marker) {
          marker = document.createElement("button");
          marker.type = "button";
          marker.className = "marker";
          marker.setAttribute("data-space", data.space);
          marker.title = data.name;
          marker.textContent = data.name;
          canvas.appendChild(marker);
        }
        setPosition(marker, data.x, data.y);
        var option = select.querySelector('option[value="' + data.space + '"]');
        if (option) option.textContent = data.name;
        status.textContent = data.name + " placed at " + percent(data.x) + " % across, " + percent(data.y) + " % down.";
        highlight();
      }).catch(function (error) { status.textContent = error.message; });
    });

    canvas.addEventListener("click", function (event) {
      var marker = event.target.closest(".marker");
      if (!marker) return;
      select.value = marker.getAttribute("data-space");
      status.textContent = nameOf(select.value) + " selected: click on the plan to move it.";
      highlight();
    });

    if (clear) {
      clear.addEventListener("click", function () {
        if (!select.value) return;
        send({ clear: "1" }).then(function (data) {
          var marker = markerOf(data.space);
          if (marker) marker.remove();
          var option = select.querySelector('option[value="' + data.space + '"]');
          if (option) option.textContent = data.name + " (not placed)";
          status.textContent = data.name + " is no longer on the map.";
        }).catch(function (error) { status.textContent = error.message; });
      });
    }
    select.addEventListener("change", highlight);
    highlight();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-floormap-admin]").forEach(init);
  });
})();
