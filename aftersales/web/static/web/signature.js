/* The customer's signature on the technician's phone: a <canvas> drawn with pointer events,
   sent as a PNG file to the confirmation URL; the answer (HTML) replaces the job's body, or
   the confirmation block when it carries an error (HX-Retarget). */
(function () {
  "use strict";

  function setUp(canvas) {
    if (canvas.dataset.ready) return;
    canvas.dataset.ready = "1";
    var ctx = canvas.getContext("2d");
    var drawing = false, drawn = false, last = null;

    function clear() {
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      drawn = false;
    }

    function point(e) {
      var r = canvas.getBoundingClientRect();
      return { x: (e.clientX - r.left) * canvas.width / r.width, y: (e.clientY - r.top) * canvas.height / r.height };
    }

    clear();
    ctx.lineWidth = 3;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.strokeStyle = "#111827";

    canvas.addEventListener("pointerdown", function (e) {
      e.preventDefault();
      canvas.setPointerCapture(e.pointerId);
      drawing = true;
      last = point(e);
      ctx.beginPath();
      ctx.arc(last.x, last.y, 1.2, 0, 2 * Math.PI);
      ctx.fillStyle = "#111827";
      ctx.fill();
      drawn = true;
    });
    canvas.addEventListener("pointermove", function (e) {
      if (!drawing) return;
      e.preventDefault();
      var p = point(e);
      ctx.beginPath();
      ctx.moveTo(last.x, last.y);
      ctx.lineTo(p.x, p.y);
      ctx.stroke();
      last = p;
    });
    ["pointerup", "pointercancel", "pointerleave"].forEach(function (type) {
      canvas.addEventListener(type, function () { drawing = false; });
    });

    var box = canvas.closest(".signature") || canvas.parentNode;
    var clearBtn = box.querySelector("[data-signature-clear]");
    var submitBtn = box.querySelector("[data-signature-submit]");
    if (clearBtn) clearBtn.addEventListener("click", clear);
    if (submitBtn) submitBtn.addEventListener("click", function () {
      if (!drawn) {
        window.alert(submitBtn.dataset.emptyMessage || "");
        return;
      }
      submitBtn.disabled = true;
      canvas.toBlob(function (blob) { send(canvas, blob, submitBtn); }, "image/png");
    });
  }

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"]; } catch (_e) { return ""; }
  }

  function send(canvas, blob, button) {
    var data = new FormData();
    data.append("signature", blob, "signature.png");
    fetch(canvas.dataset.url, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "HX-Request": "true" }
    }).then(function (resp) {
      var target = resp.headers.get("HX-Retarget") || canvas.dataset.target;
      return resp.text().then(function (html) { replace(target, html); });
    }).catch(function () {
      button.disabled = false;
    });
  }

  function replace(selector, html) {
    var old = document.querySelector(selector);
    if (!old) return;
    var tpl = document.createElement("template");
    tpl.innerHTML = html.trim();
    var fresh = tpl.content.firstElementChild;
    if (!fresh) return;
    old.replaceWith(fresh);
    if (window.htmx) window.htmx.process(fresh);
    scan(fresh);
  }

  function scan(root) {
    (root || document).querySelectorAll("[data-signature-pad]").forEach(setUp);
  }

  document.addEventListener("DOMContentLoaded", function () { scan(document); });
  document.addEventListener("htmx:load", function (e) { scan(e.target); });
})();
