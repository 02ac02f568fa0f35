/* Work-order pages: the SLA countdown, the intake's "chosen by hand" flags, and Enter keys
   that must not submit the intake form. Everything else is htmx. */
(function () {
  "use strict";

  var formats = null;

  function fmt(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_m, key) { return values[key]; });
  }

  function duration(seconds) {
    var minutes = Math.floor(Math.abs(seconds) / 60);
    var days = Math.floor(minutes / 1440), hours = Math.floor((minutes % 1440) / 60), mins = minutes % 60;
    if (days) return fmt(formats.d, { d: days, h: hours });
    if (hours) return fmt(formats.h, { h: hours, m: mins });
    return fmt(formats.m, { m: mins });
  }

  function tick() {
    if (!formats) {
      var src = document.getElementById("countdown-formats");
      if (!src) return;
      formats = JSON.parse(src.textContent);
    }
    var now = Date.now();
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var due = Date.parse(el.dataset.countdown);
      if (isNaN(due)) return;
      var left = (due - now) / 1000;
      var which = el.textContent.split(" · ")[0];
      el.textContent = which + " · " + fmt(left < 0 ? formats.over : formats.left, { t: duration(left) });
      el.classList.toggle("overdue", left < 0);
    });
  }

  document.addEventListener("change", function (e) {
    var el = e.target;
    if (el && el.dataset && el.dataset.manual) {
      var flag = document.getElementById(el.dataset.manual);
      if (flag) flag.value = "1";
    }
  });

  document.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && e.target && e.target.hasAttribute && e.target.hasAttribute("data-no-submit")) {
      e.preventDefault();
    }
  });

  function init() {
    tick();
    window.setInterval(tick, 30000);
    document.body.addEventListener("htmx:afterSettle", tick);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
