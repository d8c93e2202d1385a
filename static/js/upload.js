// Upload page: a selection built from the file picker and drag and drop (each adds to it), a remove button
// per file, a client-side size check that sets aside only the bad files, and an XHR upload with a progress
// bar. Without JavaScript the form still posts normally and the server does every check again.
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
  var selected = [];
  // The selection lives in `selected`; the input only feeds it, so it must not block an empty submit.
  input.required = false;

  function humanSize(bytes) {
    if (bytes >= 1048576) return (bytes / 1048576).toFixed(1) + " MB";
    if (bytes >= 1024) return Math.round(bytes / 1024) + " KB";
    return bytes + " bytes";
  }

  function showErrors(messages) {
    errors.replaceChildren();
    messages.forEach(function (message) {
      var li = document.createElement("li");
      li.textContent = message;
      errors.appendChild(li);
    });
    errors.hidden = messages.length === 0;
  }

  function problemWith(file) {
    if (file.size === 0) return "empty (0 bytes): it will not be sent";
    if (file.size > maxBytes) return "over the " + humanSize(maxBytes) + " limit: it will not be sent";
    return "";
  }

  function sendable() {
    return selected.filter(function (file) { return !problemWith(file); });
  }

  function renderChosen() {
    list.replaceChildren();
    selected.forEach(function (file, index) {
      var li = document.createElement("li");
      var problem = problemWith(file);
      var label = document.createElement("span");
      label.textContent = file.name + " (" + humanSize(file.size) + ")" + (problem ? " — " + problem : "");
      if (problem) li.className = "bad";
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "small remove-file";
      remove.textContent = "Remove";
      remove.setAttribute("aria-label", "Remove " + file.name);
      remove.addEventListener("click", function () {
        selected.splice(index, 1);
        renderChosen();
      });
      li.append(label, remove);
      list.appendChild(li);
    });
    var count = sendable().length;
    showErrors(count > maxFiles ? ["Upload at most " + maxFiles + " files at a time; remove " + (count - maxFiles) + "."] : []);
  }

  function add(files) {
    Array.prototype.forEach.call(files, function (file) {
      var duplicate = selected.some(function (other) {
        return other.name === file.name && other.size === file.size && other.lastModified === file.lastModified;
      });
      if (!duplicate) selected.push(file);
    });
    renderChosen();
  }

  input.addEventListener("change", function () {
    add(input.files);
    input.value = "";  // so choosing the same file again after removing it fires "change"
  });

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
    if (event.dataTransfer && event.dataTransfer.files.length) add(event.dataTransfer.files);
  });

  function upload(files) {
    var data = new FormData(form);
    data.delete(input.name);
    files.forEach(function (file) { data.append(input.name, file, file.name); });
    var skipped = selected.filter(problemWith).map(function (file) { return file.name; });
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
      var reply = null;
      try { reply = JSON.parse(xhr.responseText); } catch (err) { reply = null; }
      if (reply && reply.ok) {
        window.location.assign(reply.redirect);
        return;
      }
      button.disabled = false;
      progress.hidden = true;
      if (reply && reply.errors) showErrors(reply.errors);
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
    text.textContent = skipped.length ? "0% (not sending " + skipped.join(", ") + ")" : "0%";
    xhr.send(data);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var files = sendable();
    if (!files.length) {
      showErrors([selected.length ? "None of the chosen files can be sent: remove them and choose others." :
        "Choose at least one image or video to upload."]);
      return;
    }
    if (files.length > maxFiles) {
      showErrors(["Upload at most " + maxFiles + " files at a time; remove " + (files.length - maxFiles) + "."]);
      return;
    }
    showErrors([]);
    upload(files);
  });
})();
