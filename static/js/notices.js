// The top bar's unread-notices badge (#notice-badge, polled by htmx every 30 s):
//  - no poll while the tab is hidden (nothing to see, and no load on the server); one as soon as it shows;
//  - an answer with the same count is not swapped in, so screen readers (aria-live) hear only changes.
(function () {
  "use strict";
  function isBadge(ev) {
    const el = ev.detail && ev.detail.elt;
    return el instanceof Element && el.id === "notice-badge";
  }
  document.addEventListener("htmx:beforeRequest", function (ev) {
    if (isBadge(ev) && document.visibilityState === "hidden") ev.preventDefault();
  });
  document.addEventListener("htmx:beforeSwap", function (ev) {
    if (!isBadge(ev) || !ev.detail.xhr || ev.detail.xhr.status !== 200) return;
    const now = ev.detail.elt.querySelector("[data-unread]");
    const m = /data-unread="(\d+)"/.exec(ev.detail.serverResponse || "");
    if (now && m && now.getAttribute("data-unread") === m[1]) ev.detail.shouldSwap = false;
  });
  document.addEventListener("visibilitychange", function () {
    const badge = document.getElementById("notice-badge");
    if (badge && document.visibilityState === "visible" && window.htmx) window.htmx.trigger(badge, "notices-visible");
  });
})();
