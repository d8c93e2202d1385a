// Item page: poll the JSON status endpoint while the job is queued or running; reload once it ends so the
// server renders the result (verdict, faces, timeline chart).
(function () {
  "use strict";
  var root = document.getElementById("item");
  if (!root) return;
  var url = root.dataset.statusUrl;
  var initial = root.dataset.status;
  if (initial === "done" || initial === "failed") return;

  var statusText = document.getElementById("status-text");
  var stageText = document.getElementById("stage-text");
  var bar = document.getElementById("job-progress");
  var fill = document.getElementById("job-progress-fill");
  var percentText = document.getElementById("job-progress-text");
  var errorText = document.getElementById("error-text");
  var live = document.getElementById("live-status");
  var delay = 1000;

  function render(data) {
    live.className = "status status-" + data.status;
    statusText.textContent = data.status_display;
    stageText.textContent = data.stage || "";
    bar.hidden = data.status !== "running";
    fill.style.width = data.progress + "%";
    percentText.textContent = data.progress + "%";
    if (data.error) {
      errorText.hidden = false;
      errorText.textContent = (data.status === "failed" ? "Analysis failed: " : "Retrying after: ") + data.error;
    } else {
      errorText.hidden = true;
    }
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        render(data);
        if (data.finished) {
          window.location.reload();
          return;
        }
        delay = 1000;
        window.setTimeout(poll, delay);
      })
      .catch(function () {
        // Back off while the server is unreachable, then keep trying.
        delay = Math.min(delay * 2, 15000);
        window.setTimeout(poll, delay);
      });
  }
  window.setTimeout(poll, 500);
})();
