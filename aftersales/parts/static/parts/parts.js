/* The chart of the stock page: available vs reorder point of the items closest to it (ECharts). */
(function () {
  "use strict";

  function renderReorder(el) {
    var src = document.getElementById(el.dataset.source);
    if (!src || !window.echarts) return;
    var data = JSON.parse(src.textContent);
    var chart = window.echarts.init(el, null, { renderer: "svg" });
    chart.setOption({
      animation: false,
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      legend: { top: 0 },
      grid: { left: 8, right: 16, bottom: 8, top: 36, containLabel: true },
      xAxis: { type: "category", data: data.labels, axisLabel: { interval: 0, rotate: data.labels.length > 6 ? 30 : 0 } },
      yAxis: { type: "value", minInterval: 1 },
      series: [
        { name: data.names.available, type: "bar", data: data.available, barMaxWidth: 40,
          itemStyle: { color: "#2563eb" } },
        { name: data.names.reorder_point, type: "line", data: data.reorder_point, step: "middle",
          symbol: "none", lineStyle: { color: "#b45309", width: 2 } }
      ]
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }

  function init() {
    document.querySelectorAll('[data-chart="stock-reorder"]').forEach(renderReorder);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
