// Upload page: drag and drop, a client-side size check, and an XHR upload with a progress bar.
// Without JavaScript the form still posts normally and the server does every check again.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form) return;
  var input = form.querySelector('input[type="file"]');
  var zone = document.getElementById("drop-zone");
  var list = document.getElementById("chosen-files");
  var errors = document.getElementById("upload-errors");
  var progress = document.getElementById("progress");
  var fill = document.getElementById("progress-fill");
  var text = document.getElementById("progress-text");
  var button = document.getElementById("upload-button");
  var maxBytes = parseInt(form.dataset.maxBytes, 10);
  var maxFiles = parseInt(form.dataset.maxFiles, 10);

  function humanSize(bytes) {
    if (bytes >= 1048576) return (bytes / 1048576).toFixed(1) + " MB";
    if (bytes >= 1024) return Math.round(bytes / 1024) + " KB";
    return bytes + " bytes";
  }

  function showErrors(messages) {
    errors.innerHTML = "";
    messages.forEach(function (message) {
      var li = document.createElement("li");
      li.textContent = message;
      errors.appendChild(li);
    });
    errors.hidden = messages.length === 0;
  }

  function problemsWith(files) {
    var problems = [];
    if (files.length > maxFiles) problems.push("Upload at most " + maxFiles + " files at a time.");
    Array.prototype.forEach.call(files, function (file) {
      if (file.size === 0) problems.push(file.name + " is empty (0 bytes).");
      else if (file.size > maxBytes) {
        problems.push(file.name + " is " + humanSize(file.size) + "; the limit is " + humanSize(maxBytes) + " per file.");
      }
    });
    return problems;
  }

  function renderChosen() {
    list.innerHTML = "";
    Array.prototype.forEach.call(input.files, function (file) {
      var li = document.createElement("li");
      li.textContent = file.name + " (" + humanSize(file.size) + ")";
      list.appendChild(li);
    });
    showErrors(problemsWith(input.files));
  }

  input.addEventListener("change", renderChosen);

  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (event) {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function (event) {
      event.preventDefault();
      zone.classList.remove("dragging");
    });
  });
  zone.addEventListener("drop", function (event) {
    if (!event.dataTransfer || !event.dataTransfer.files.length) return;
    input.files = event.dataTransfer.files;
    renderChosen();
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!input.files.length) {
      showErrors(["Choose at least one image or video to upload."]);
      return;
    }
    var problems = problemsWith(input.files);
    if (problems.length) {
      showErrors(problems);
      return;
    }
    showErrors([]);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) return;
      var percent = Math.round((e.loaded / e.total) * 100);
      fill.style.width = percent + "%";
      text.textContent = percent < 100 ? percent + "%" : "Checking files…";
    });
    xhr.addEventListener("load", function () {
      var data = null;
      try { data = JSON.parse(xhr.responseText); } catch (err) { data = null; }
      if (data && data.ok) {
        window.location.assign(data.redirect);
        return;
      }
      button.disabled = false;
      progress.hidden = true;
      if (data && data.errors) showErrors(data.errors);
      else if (xhr.status === 413) showErrors(["The upload is too large."]);
      else showErrors(["The upload failed (HTTP " + xhr.status + "). Please try again."]);
    });
    xhr.addEventListener("error", function () {
      button.disabled = false;
      progress.hidden = true;
      showErrors(["The upload was interrupted. Check your connection and try again."]);
    });
    button.disabled = true;
    progress.hidden = false;
    fill.style.width = "0%";
    text.textContent = "0%";
    xhr.send(new FormData(form));
  });
})();
