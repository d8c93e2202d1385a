// Item page: clicking (or pressing Enter on) a point of the per-frame chart plays the video from that moment.
(function () {
  "use strict";
  var chart = document.getElementById("timeline-chart");
  var video = document.getElementById("original-video");
  if (!chart || !video) return;
  var details = document.getElementById("original");

  function timeAt(svg, event) {
    // The click in chart units: a long video has no point markers, so any spot of the plot seeks.
    var point = svg.createSVGPoint();
    point.x = event.clientX;
    point.y = event.clientY;
    var local = point.matrixTransform(svg.getScreenCTM().inverse());
    var left = parseFloat(svg.dataset.plotLeft), width = parseFloat(svg.dataset.plotWidth);
    var tMin = parseFloat(svg.dataset.tMin), tMax = parseFloat(svg.dataset.tMax);
    var fraction = Math.max(0, Math.min(1, (local.x - left) / width));
    return tMin + fraction * (tMax - tMin);
  }

  function seekTo(time) {
    if (isNaN(time)) return;
    if (details) details.open = true;
    video.currentTime = time;
    video.scrollIntoView({ block: "nearest" });
  }

  function seek(dot) {
    seekTo(parseFloat(dot.getAttribute("data-time")));
  }

  chart.addEventListener("click", function (event) {
    var dot = event.target.closest(".dot");
    var svg = event.target.closest("svg");
    if (dot) seek(dot);
    else if (svg) seekTo(timeAt(svg, event));
  });
  chart.addEventListener("keydown", function (event) {
    var dot = event.target.closest(".dot");
    if (dot && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      seek(dot);
    }
  });
})();
