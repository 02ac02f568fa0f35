/* The effect chart of an improvement action: the targeted indicator per month (ECharts line),
   with the months it was raised and done marked, and the baseline and the value after it was done
   as horizontal lines.

   <div data-quality-chart="effect" data-source="ID"> with a json_script of
   {"categories": ["2025-01", …], "values": [..|null], "label", "unit", "raised", "done",
    "baseline", "after", "names": {"raised", "done", "baseline", "after"}}. */
(function () {
  "use strict";

  function renderEffect(el) {
    var src = document.getElementById(el.dataset.source);
    if (!src || !window.echarts) return;
    var d = JSON.parse(src.textContent);
    var marks = [];
    if (d.raised) marks.push({ xAxis: d.raised, name: d.names.raised, lineStyle: { color: "#b45309" },
                               label: { formatter: d.names.raised } });
    if (d.done) marks.push({ xAxis: d.done, name: d.names.done, lineStyle: { color: "#15803d" },
                             label: { formatter: d.names.done } });
    if (d.baseline !== null) marks.push({ yAxis: d.baseline, name: d.names.baseline,
                                          lineStyle: { color: "#6b7280", type: "dashed" },
                                          label: { formatter: d.names.baseline + " {c}", position: "insideEndTop" } });
    if (d.after !== null) marks.push({ yAxis: d.after, name: d.names.after,
                                       lineStyle: { color: "#1d4ed8", type: "dashed" },
                                       label: { formatter: d.names.after + " {c}", position: "insideStartTop" } });
    var chart = window.echarts.init(el, null, { renderer: "svg" });
    chart.setOption({
      animation: false,
      tooltip: { trigger: "axis" },
      grid: { left: 8, right: 24, bottom: 8, top: 28, containLabel: true },
      xAxis: { type: "category", data: d.categories, boundaryGap: false },
      yAxis: { type: "value", name: d.unit, scale: true },
      series: [{ name: d.label, type: "line", data: d.values, connectNulls: false, symbolSize: 7,
                 itemStyle: { color: "#1d4ed8" },
                 markLine: { symbol: "none", silent: true, data: marks } }]
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }

  function init() {
    document.querySelectorAll('[data-quality-chart="effect"]').forEach(renderEffect);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
