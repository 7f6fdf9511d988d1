// Small behaviours of the web pages, as delegated listeners: the content security policy runs no inline
// script or on*= attribute, and these keep working on elements htmx swaps in later.
//   data-select-on-click  an input whose whole text is selected on click (a token or URL to copy)
//   data-close-form       a button that removes its enclosing form (a partial form opened in place)
//   data-print            a button that opens the browser's print dialog
// and htmx swaps refusals (4xx with a reason) into the page like any answer.
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
    if (close && !close.closest("dialog")) {  // in a dialog, the dialog's own script closes it
      const form = close.closest("form");
      if (form) form.remove();
      return;
    }
    if (target.closest("[data-print]")) window.print();
  });

  // htmx leaves 4xx responses unswapped; a refusal (409 conflict, 422 rule, or any 4xx the server marks
  // with X-Fablab-Refusal) is the answer the member must see, where they acted: on every page.
  document.addEventListener("htmx:beforeSwap", function (ev) {
    const xhr = ev.detail.xhr;
    if (!xhr || xhr.status < 400 || xhr.status >= 500) return;
    if (xhr.status === 409 || xhr.status === 422 ||
        xhr.getResponseHeader("X-Fablab-Refusal")) {
      ev.detail.shouldSwap = true;
      ev.detail.isError = false;
    }
  });
})();
