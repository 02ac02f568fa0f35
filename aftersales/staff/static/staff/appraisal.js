/* The appraisal pages (aftersales.staff): the rankings chart of the board, confirmations of
   the cycle's buttons, and the forms' small helpers.

   - <div data-achart="ID"> draws the bar chart embedded as <script id="ID" type="application/json">
     {"categories": [...], "series": [{"name": ..., "data": [number|null, ...]}, ...], "links": [url, ...]}
     (ECharts; horizontal bars when there are many categories; a click on a bar opens its link).
   - <form data-confirm="TEXT"> asks before it is submitted.
   - The scheme editor: <button data-add-row="TEMPLATE_ID"> appends a copy of the <template>
     (its "__i__" replaced by the next row number) to the element named by data-rows;
     [data-remove-row] empties and hides its row; [data-weight] inputs are summed into
     [data-weight-sum] (marked when not 100); a row's rule select shows only the parameters of
     that rule ([data-rule-params="linear|bands|points"]), its kind select the source (auto) or the
     step (manual) ([data-kind-only]).
   - The cycle form: the grading mode shows min or percent ([data-mode-only]); the bonus mode
     shows the pool, or the base and the multipliers ([data-bonus-only]).
   Everything works without JavaScript too: the inputs are all there, unused ones are ignored. */
(function () {
  "use strict";

  var PALETTE = ["#1d4ed8", "#0f766e", "#b45309", "#7c3aed", "#be123c", "#475569", "#15803d", "#0369a1"];

  function drawBars(el) {
    var src = document.getElementById(el.dataset.achart);
    if (!src || !window.echarts) return;
    var data = JSON.parse(src.textContent);
    if (!data.categories || !data.categories.length) return;
    var horizontal = data.categories.length > 8;
    if (horizontal) el.style.height = Math.max(260, data.categories.length * 22 * Math.max(1, data.series.length) + 80) + "px";
    var catAxis = { type: "category", data: data.categories, inverse: horizontal,
                    axisLabel: { interval: 0, width: 110, overflow: "truncate",
                                 rotate: !horizontal && data.categories.length > 5 ? 30 : 0 } };
    var valAxis = { type: "value", min: 0, max: 100 };
    var chart = window.echarts.init(el, null, { renderer: "svg" });
    chart.setOption({
      animation: false,
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" },
                 valueFormatter: function (v) { return v === null || v === undefined ? "—" : Number(v).toFixed(2); } },
      legend: { top: 0, type: "scroll" },
      grid: { left: 8, right: 40, top: 36, bottom: 8, containLabel: true },
      xAxis: horizontal ? valAxis : catAxis,
      yAxis: horizontal ? catAxis : valAxis,
      series: data.series.map(function (s, i) {
        return { type: "bar", name: s.name, data: s.data, barMaxWidth: 28,
                 itemStyle: { color: s.colour || PALETTE[i % PALETTE.length] },
                 label: { show: data.series.length === 1, position: horizontal ? "right" : "top",
                          formatter: function (p) { return p.value === null ? "" : Number(p.value).toFixed(1); } } };
      })
    });
    if (data.links) {
      el.style.cursor = "pointer";
      chart.on("click", function (p) {
        var url = data.links[p.dataIndex];
        if (p.componentType === "series" && url) window.location.href = url;
      });
    }
    window.addEventListener("resize", function () { chart.resize(); });
  }

  function sumWeights(form) {
    var out = form.querySelector("[data-weight-sum]");
    if (!out) return;
    var total = 0;
    form.querySelectorAll("[data-weight]").forEach(function (input) {
      var v = parseFloat(input.value);
      if (!isNaN(v)) total += v;
    });
    total = Math.round(total * 100) / 100;
    out.textContent = total.toString();
    out.dataset.ok = total === 100 ? "1" : "0";
  }

  function showOnly(scope, attr, value) {
    scope.querySelectorAll("[" + attr + "]").forEach(function (el) {
      var wanted = el.getAttribute(attr).split(" ");
      el.hidden = wanted.indexOf(value) < 0;
    });
  }

  function initRow(row) {
    var rule = row.querySelector("select[data-rule]");
    var kind = row.querySelector("select[data-kind]");
    if (rule) {
      showOnly(row, "data-rule-params", rule.value);
      rule.addEventListener("change", function () { showOnly(row, "data-rule-params", rule.value); });
    }
    if (kind) {
      showOnly(row, "data-kind-only", kind.value);
      kind.addEventListener("change", function () { showOnly(row, "data-kind-only", kind.value); });
    }
    var remove = row.querySelector("[data-remove-row]");
    if (remove) {
      remove.addEventListener("click", function () {
        row.querySelectorAll("input, textarea").forEach(function (i) { i.value = ""; });
        row.hidden = true;
        var form = row.closest("form");
        if (form) sumWeights(form);
      });
    }
  }

  function initSchemeForm(form) {
    form.querySelectorAll("[data-item-row]").forEach(initRow);
    form.addEventListener("input", function (e) {
      if (e.target.matches("[data-weight]")) sumWeights(form);
    });
    form.querySelectorAll("[data-add-row]").forEach(function (btn) {
      btn.addEventListener("click", function () {
        var tpl = document.getElementById(btn.dataset.addRow);
        var rows = document.getElementById(btn.dataset.rows);
        var count = form.querySelector("input[name=rows]");
        if (!tpl || !rows || !count) return;
        var i = parseInt(count.value, 10) || 0;
        var holder = document.createElement("div");
        holder.innerHTML = tpl.innerHTML.replace(/__i__/g, String(i));
        var row = holder.firstElementChild;
        rows.appendChild(row);
        count.value = String(i + 1);
        initRow(row);
        var first = row.querySelector("input");
        if (first) first.focus();
      });
    });
    sumWeights(form);
  }

  function initCycleForm(form) {
    var mode = form.querySelector("select[name=grading_mode]");
    var bonus = form.querySelector("select[name=bonus_mode]");
    if (mode) {
      showOnly(form, "data-mode-only", mode.value);
      mode.addEventListener("change", function () { showOnly(form, "data-mode-only", mode.value); });
    }
    if (bonus) {
      showOnly(form, "data-bonus-only", bonus.value);
      bonus.addEventListener("change", function () { showOnly(form, "data-bonus-only", bonus.value); });
    }
  }

  function init() {
    document.querySelectorAll("[data-achart]").forEach(drawBars);
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        if (!window.confirm(form.dataset.confirm)) e.preventDefault();
      });
    });
    document.querySelectorAll("form[data-scheme-form]").forEach(initSchemeForm);
    document.querySelectorAll("form[data-cycle-form]").forEach(initCycleForm);
    document.querySelectorAll("select[data-autosubmit]").forEach(function (sel) {
      sel.addEventListener("change", function () {
        if (sel.form) { sel.form.requestSubmit ? sel.form.requestSubmit() : sel.form.submit(); }
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
