// Small behaviours of the web pages, as delegated listeners: the content security policy runs no inline
// script or on*= attribute, and these keep working on elements htmx swaps in later.
//   data-select-on-click  an input whose whole text is selected on click (a token or URL to copy)
//   data-close-form       a button that removes its enclosing form (a partial form opened in place)
//   data-print            a button that opens the browser's print dialog
(function () {
  "use strict";
  document.addEventListener("click", function (ev) {
    const target = ev.target;
    if (!(target instanceof Element)) return;
    const select = target.closest("[data-select-on-click]");
    if (select && typeof select.select === "function") {
      select.select();
      return;
    }
    const close = target.closest("[data-close-form]");
    if (close) {
      const form = close.closest("form");
      if (form) form.remove();
      return;
    }
    if (target.closest("[data-print]")) window.print();
  });
})();
