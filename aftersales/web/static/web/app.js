/* Page behaviour that is not htmx: stacked bar charts (ECharts), e.g. the home page's units by
   category and warranty state, the loaner pool per outlet by state.

   <div data-chart="stacked-bars" data-source="ID" data-stack="NAME"> with a json_script of
   {"categories": [...], "series": [{"name", "colour", "data": [...]}, ...]}. */
(function () {
  "use strict";

  function renderStackedBars(el) {
    var src = document.getElementById(el.dataset.source);
    if (!src || !window.echarts) return;
    var data = JSON.parse(src.textContent);
    var chart = window.echarts.init(el, null, { renderer: "svg" });
    chart.setOption({
      animation: false,
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      legend: { top: 0 },
      grid: { left: 8, right: 16, bottom: 8, top: 36, containLabel: true },
      xAxis: { type: "category", data: data.categories,
               axisLabel: { interval: 0, rotate: data.categories.length > 8 ? 30 : 0 } },
      yAxis: { type: "value", minInterval: 1 },
      series: data.series.map(function (s) {
        return { name: s.name, type: "bar", stack: el.dataset.stack || "total", data: s.data,
                 itemStyle: { color: s.colour }, emphasis: { focus: "series" }, barMaxWidth: 56 };
      })
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }

  function init() {
    document.querySelectorAll('[data-chart="stacked-bars"]').forEach(renderStackedBars);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
