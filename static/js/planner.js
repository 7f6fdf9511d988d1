// The planner pages (day view, find a time, recurring series): small enhancements; every page works without it.
(function () {
  "use strict";

  function submitForm(form) {
    if (typeof form.requestSubmit === "function") form.requestSubmit(); else form.submit();
  }

  // The day picker shows the chosen day at once.
  document.addEventListener("change", function (ev) {
    var el = ev.target;
    if (el instanceof HTMLInputElement && el.hasAttribute("data-autosubmit") && el.form && el.value) submitForm(el.form);
  });

  // "This and the rest" asks before cancelling many occurrences.
  document.addEventListener("click", function (ev) {
    var btn = ev.target instanceof Element ? ev.target.closest("[data-confirm]") : null;
    if (btn && !window.confirm(btn.getAttribute("data-confirm"))) ev.preventDefault();
  });

  // The series form shows the member number for a member's booking, the displace box for maintenance.
  function syncKind(form) {
    var kind = form.querySelector("select[name=kind]");
    if (!kind) return;
    form.querySelectorAll(".pl-for-booking").forEach(function (el) { el.hidden = kind.value !== "booking"; });
    form.querySelectorAll(".pl-for-maintenance").forEach(function (el) { el.hidden = kind.value !== "maintenance"; });
  }
  document.addEventListener("change", function (ev) {
    var form = ev.target instanceof Element ? ev.target.closest(".pl-series-form") : null;
    if (form) syncKind(form);
  });
  function init() { document.querySelectorAll(".pl-series-form").forEach(syncKind); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
