// History page: rows of queued and running items update themselves from the batch status endpoint, so a
// finished analysis shows without a reload; and "select all" for the bulk delete.
(function () {
  "use strict";
  var table = document.getElementById("history");
  if (!table) return;

  var selectAll = document.getElementById("select-all");
  if (selectAll) {
    selectAll.addEventListener("change", function () {
      table.querySelectorAll('input[name="ids"]').forEach(function (box) { box.checked = selectAll.checked; });
    });
  }

  var url = table.dataset.statusUrl;
  var delay = 1500;

  function pendingRows() {
    return Array.prototype.filter.call(table.querySelectorAll("tbody tr[data-id]"), function (row) {
      return row.dataset.status === "queued" || row.dataset.status === "running";
    });
  }

  function pill(className, text) {
    var span = document.createElement("span");
    span.className = className;
    span.textContent = text;
    return span;
  }

  function update(row, data) {
    row.dataset.status = data.status;
    var status = row.querySelector(".col-status");
    var label = data.status_display;
    if (data.status === "running" && data.progress) label += " " + data.progress + "%";
    status.replaceChildren(pill("status-pill status-" + data.status, label));
    if (data.verdict) {
      row.querySelector(".col-verdict").replaceChildren(pill("verdict-pill verdict-" + data.verdict, data.verdict_display));
    }
    row.querySelector(".col-fake").textContent = data.fake_percent === null ? "" : data.fake_percent + "%";
  }

  function markDeleted(row) {
    row.dataset.status = "deleted";
    row.classList.add("deleted");
    row.querySelector(".col-status").replaceChildren(pill("status-pill status-failed", "Deleted"));
  }

  function poll() {
    var rows = pendingRows();
    if (!rows.length) return;
    var query = rows.map(function (row) { return "id=" + encodeURIComponent(row.dataset.id); }).join("&");
    fetch(url + "?" + query, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        var byId = {};
        data.items.forEach(function (item) { byId[item.id] = item; });
        rows.forEach(function (row) {
          if (byId[row.dataset.id]) update(row, byId[row.dataset.id]);
          else markDeleted(row);  // deleted in another tab
        });
        delay = 1500;
        window.setTimeout(poll, delay);
      })
      .catch(function () {
        delay = Math.min(delay * 2, 30000);
        window.setTimeout(poll, delay);
      });
  }
  window.setTimeout(poll, delay);
})();
