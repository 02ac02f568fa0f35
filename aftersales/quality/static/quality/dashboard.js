/* The quality dashboard and scorecard charts (ECharts). The data is embedded by the server:
   <script id="q-charts-data" type="application/json">{"charts": {ID: spec}, "i18n": {...}}</script>
   and each <div data-qchart="ID"> draws one spec:

   {"type": "line" | "bar" | "hbar" | "pie" | "heatmap" | "compare", "labels": [...], "values": [...],
    "colours": [...], "target": number | null, "decimals": n, "suffix": "%",
    "drill": "/quality/drill/?code=…", "q": [{per-point query overrides}, ...]}

   Clicking a period of a trend, a bar, a slice or a cell opens the drill-down: the orders behind it
   (the spec's drill URL with the point's overrides). <select data-qswitch="ELEMENT_ID"> switches
   the chart of that element to another spec; <select data-autosubmit> submits its form. */
(function () {
  "use strict";

  var BRAND = "#1d4ed8", MUTED = "#94a3b8", TARGET = "#64748b";
  var data = null;

  function fmt(spec, v) {
    if (v === null || v === undefined) return "—";
    return Number(v).toLocaleString(undefined, {
      minimumFractionDigits: spec.decimals || 0, maximumFractionDigits: spec.decimals || 0
    }) + (spec.suffix || "");
  }

  function drill(spec, index) {
    if (!spec.drill || !spec.q || !spec.q[index]) return;
    var url = new URL(spec.drill, window.location.href);
    var q = spec.q[index];
    Object.keys(q).forEach(function (k) { url.searchParams.set(k, q[k]); });
    window.location.href = url.toString();
  }

  function targetLine(spec, axis) {
    if (spec.target === null || spec.target === undefined) return undefined;
    var line = { name: data.i18n.target, lineStyle: { type: "dashed", color: TARGET },
                 label: { formatter: data.i18n.target + " " + fmt(spec, spec.target), position: "insideEndTop" } };
    line[axis] = spec.target;
    return { silent: true, symbol: "none", data: [line] };
  }

  function axisLabel(spec) {  // the axis' own ticks (finer than the figure's decimals), with the unit
    return { formatter: function (v) { return +Number(v).toFixed(4) + (spec.suffix || ""); } };
  }

  var build = {
    line: function (spec) {
      return {
        tooltip: { trigger: "axis", valueFormatter: function (v) { return fmt(spec, v); } },
        grid: { left: 8, right: 24, top: 24, bottom: 8, containLabel: true },
        xAxis: { type: "category", data: spec.labels, boundaryGap: false },
        yAxis: { type: "value", scale: true, axisLabel: axisLabel(spec) },
        series: [{ type: "line", name: spec.title, data: spec.values, connectNulls: false, symbolSize: 8,
                   itemStyle: { color: BRAND }, markLine: targetLine(spec, "yAxis"), cursor: "pointer" }]
      };
    },
    bar: function (spec) {
      return {
        tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, valueFormatter: function (v) { return fmt(spec, v); } },
        grid: { left: 8, right: 24, top: 24, bottom: 8, containLabel: true },
        xAxis: { type: "category", data: spec.labels,
                 axisLabel: { interval: 0, rotate: spec.labels.length > 5 ? 30 : 0, width: 90, overflow: "truncate" } },
        yAxis: { type: "value", axisLabel: axisLabel(spec) },
        series: [{ type: "bar", name: spec.title, barMaxWidth: 40, markLine: targetLine(spec, "yAxis"),
                   data: spec.values.map(function (v, i) {
                     return { value: v, itemStyle: { color: spec.colours ? spec.colours[i] : BRAND } };
                   }) }]
      };
    },
    hbar: function (spec) {
      return {
        tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, valueFormatter: function (v) { return fmt(spec, v); } },
        grid: { left: 8, right: 48, top: 16, bottom: 8, containLabel: true },
        yAxis: { type: "category", data: spec.labels, inverse: true,
                 axisLabel: { interval: 0, width: 120, overflow: "truncate" } },
        xAxis: { type: "value", axisLabel: axisLabel(spec) },
        series: [{ type: "bar", name: spec.title, barMaxWidth: 22, markLine: targetLine(spec, "xAxis"),
                   label: { show: true, position: "right", formatter: function (p) { return fmt(spec, p.value); } },
                   data: spec.values.map(function (v, i) {
                     return { value: v, itemStyle: { color: spec.colours ? spec.colours[i] : BRAND } };
                   }) }]
      };
    },
    pie: function (spec) {
      return {
        tooltip: { trigger: "item", formatter: function (p) {
          return p.name + "：" + fmt(spec, p.value) + "（" + p.percent + "%）";
        } },
        legend: { type: "scroll", orient: "vertical", right: 0, top: "middle" },
        series: [{ type: "pie", name: spec.title, radius: ["38%", "68%"], center: ["38%", "50%"],
                   label: { show: false }, data: spec.values.map(function (v, i) {
                     return { value: v, name: spec.labels[i] };
                   }) }]
      };
    },
    heatmap: function (spec) {
      return {
        tooltip: { position: "top", formatter: function (p) {
          return spec.y[p.value[1]] + " " + spec.x[p.value[0]] + ":00 — " + p.value[2];
        } },
        grid: { left: 8, right: 16, top: 8, bottom: 56, containLabel: true },
        xAxis: { type: "category", data: spec.x, splitArea: { show: true } },
        yAxis: { type: "category", data: spec.y, inverse: true, splitArea: { show: true } },
        visualMap: { min: 0, max: Math.max(spec.max, 1), calculable: true, orient: "horizontal", left: "center",
                     bottom: 0, inRange: { color: ["#fef3c7", "#f59e0b", "#b91c1c"] } },
        series: [{ type: "heatmap", name: spec.title, data: spec.data, label: { show: spec.data.length < 60 } }]
      };
    },
    compare: function (spec) {
      return {
        tooltip: { trigger: "axis", valueFormatter: function (v) { return fmt(spec, v); } },
        legend: { top: 0 },
        grid: { left: 8, right: 24, top: 36, bottom: 8, containLabel: true },
        xAxis: { type: "category", data: spec.labels, boundaryGap: false },
        yAxis: { type: "value", scale: true, axisLabel: axisLabel(spec) },
        series: spec.series.map(function (s, i) {
          return { type: "line", name: s.name, data: s.values, symbolSize: i ? 5 : 8,
                   itemStyle: { color: i ? MUTED : BRAND }, lineStyle: { width: i ? 1.5 : 3 },
                   markLine: i ? undefined : targetLine(spec, "yAxis") };
        })
      };
    }
  };

  function isEmpty(spec) {
    if (spec.type === "heatmap") return !spec.data.length;
    var values = spec.type === "compare"
      ? spec.series.reduce(function (a, s) { return a.concat(s.values); }, []) : spec.values;
    return !values.some(function (v) { return v !== null && v !== undefined; });
  }

  function render(el) {
    var spec = data.charts[el.dataset.qchart];
    var old = window.echarts.getInstanceByDom(el);
    if (old) old.dispose();
    el.textContent = "";
    el.classList.remove("q-chart-empty");
    if (!spec || isEmpty(spec)) {
      el.classList.add("q-chart-empty");
      el.textContent = data.i18n.no_data;
      return;
    }
    if (spec.type === "hbar") el.style.height = Math.max(200, spec.labels.length * 24 + 56) + "px";
    var chart = window.echarts.init(el, null, { renderer: "svg" });
    var option = build[spec.type](spec);
    option.animation = false;
    chart.setOption(option);
    if (spec.drill && spec.type === "line") {
      // a trend: a click anywhere in a period's column (not only on its small dot) opens that period
      chart.getZr().on("click", function (e) {
        var pt = [e.offsetX, e.offsetY];
        if (!chart.containPixel("grid", pt)) return;
        var i = Math.round(chart.convertFromPixel({ seriesIndex: 0 }, pt)[0]);
        if (i >= 0 && i < spec.values.length && spec.values[i] !== null) drill(spec, i);
      });
    } else if (spec.drill) {
      chart.on("click", function (p) {
        if (p.componentType === "series") drill(spec, p.dataIndex);
      });
    }
  }

  function init() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (sel) {
      sel.addEventListener("change", function () {
        if (sel.form) { sel.form.requestSubmit ? sel.form.requestSubmit() : sel.form.submit(); }
      });
    });
    var src = document.getElementById("q-charts-data");
    if (!src || !window.echarts) return;
    data = JSON.parse(src.textContent);
    var els = document.querySelectorAll("[data-qchart]");
    els.forEach(render);
    document.querySelectorAll("select[data-qswitch]").forEach(function (sel) {
      sel.addEventListener("change", function () {
        var el = document.getElementById(sel.dataset.qswitch);
        if (!el) return;
        el.dataset.qchart = sel.value;
        render(el);
      });
    });
    window.addEventListener("resize", function () {
      els.forEach(function (el) {
        var c = window.echarts.getInstanceByDom(el);
        if (c) c.resize();
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
