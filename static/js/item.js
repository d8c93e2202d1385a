// Item page: poll the JSON status endpoint while the job is queued or running; reload once it ends so the
// server renders the result (verdict, faces, timeline chart). If the tab is in the background when the
// result arrives, the title says so (and a notification, if the user asked for one) until it is looked at.
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
  var queuePosition = document.getElementById("queue-position");
  var queueNumber = document.getElementById("queue-position-number");
  var notifyButton = document.getElementById("notify-button");
  var deletedNotice = document.getElementById("deleted-notice");
  var delay = 1000;

  if ("Notification" in window && Notification.permission !== "denied" && notifyButton) {
    notifyButton.hidden = Notification.permission === "granted";
    notifyButton.addEventListener("click", function () {
      Notification.requestPermission().then(function (permission) {
        notifyButton.hidden = permission === "granted";
      });
    });
  }

  function render(data) {
    live.className = "status status-" + data.status;
    statusText.textContent = data.status_display;
    stageText.textContent = data.stage_display || "";
    bar.hidden = data.status !== "running";
    fill.value = data.progress;
    fill.textContent = data.progress + "%";
    percentText.textContent = data.progress + "%";
    queuePosition.hidden = !data.queue_position;
    queueNumber.textContent = data.queue_position || "";
    if (data.error) {
      errorText.hidden = false;
      errorText.textContent = (data.status === "failed" ? "Analysis failed: " : "Retrying after: ") + data.error;
    } else {
      errorText.hidden = true;
    }
  }

  function showDeleted() {
    live.hidden = true;
    deletedNotice.hidden = false;
    document.title = "Deleted · " + root.dataset.name;
    root.querySelectorAll(".delete-form, .original").forEach(function (el) { el.hidden = true; });
  }

  function finished(data) {
    if (!document.hidden) {
      window.location.reload();
      return;
    }
    var word = data.status === "done" ? "Ready" : "Failed";
    document.title = "● " + word + " · " + root.dataset.name;
    if ("Notification" in window && Notification.permission === "granted") {
      new Notification(word + ": " + root.dataset.name, { body: data.verdict_display || data.status_display });
    }
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) window.location.reload();
    });
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.status === 404) return null;
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        if (data === null) {
          showDeleted();
          return;
        }
        render(data);
        if (data.finished) {
          finished(data);
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
