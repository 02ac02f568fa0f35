/* The loaner pool chart: loaners per outlet, stacked by state (ECharts). */
(function () {
  "use strict";

  function renderPool(el) {
    var src = document.getElementById(el.dataset.source);
    if (!src || !window.echarts) return;
    var data = JSON.parse(src.textContent);
    var chart = window.echarts.init(el, null, { renderer: "svg" });
    chart.setOption({
      animation: false,
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      legend: { top: 0 },
      grid: { left: 8, right: 16, bottom: 8, top: 36, containLabel: true },
      xAxis: { type: "category", data: data.outlets, axisLabel: { interval: 0, rotate: data.outlets.length > 8 ? 30 : 0 } },
      yAxis: { type: "value", minInterval: 1 },
      series: data.series.map(function (s) {
        return { name: s.name, type: "bar", stack: "pool", data: s.data, itemStyle: { color: s.colour },
                 emphasis: { focus: "series" }, barMaxWidth: 56 };
      })
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }

  function init() {
    document.querySelectorAll('[data-chart="loaner-pool"]').forEach(renderPool);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
