// "Print / Save as PDF" on the capacity review: the browser's print dialog makes the PDF.
// Plotly charts are resized to the printed page width first so they are not cut off.
(function () {
  "use strict";
  function resizeCharts() {
    if (typeof window.Plotly === "undefined") { return; }
    document.querySelectorAll(".js-plotly-plot").forEach(function (el) { window.Plotly.Plots.resize(el); });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.addEventListener("click", function () { window.print(); });
    });
    window.addEventListener("beforeprint", resizeCharts);
    window.addEventListener("afterprint", resizeCharts);
  });
})();
