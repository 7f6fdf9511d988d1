// Booking pages: refusals swap in place, and the booking panel opens as a dialog in view.
// Plain JavaScript on top of the vendored htmx; no inline handlers (CSP).
(function () {
  "use strict";

  function openDialog(dialog) {
    if (!dialog.open) {
      if (typeof dialog.showModal === "function") dialog.showModal();
      else dialog.setAttribute("open", "");
    }
    const first = dialog.querySelector("select, .refusal button, button.primary, button, a[href]");
    if (first) first.focus({ preventScroll: true });
  }

  // The panel arrives in the week's <dialog>: show it (modal, centred in the viewport) and focus the choice.
  document.addEventListener("htmx:afterSwap", function (ev) {
    const target = ev.detail.target;
    if (target && target.id === "book-dialog") openDialog(target);
    const dialog = target && target.closest ? target.closest("dialog") : null;
    if (dialog && !dialog.open && dialog.id === "book-dialog") openDialog(dialog);
  });

  // Close: the button, a tap on the backdrop (outside the panel); Escape closes natively.
  document.addEventListener("click", function (ev) {
    const dialog = ev.target.closest ? ev.target.closest("dialog.book-dialog") : null;
    if (!dialog) return;
    if (ev.target === dialog || ev.target.closest("[data-close-form]")) {
      ev.preventDefault();
      dialog.close();
    }
  });
  document.addEventListener("close", function (ev) {
    if (ev.target.classList && ev.target.classList.contains("book-dialog")) {
      ev.target.replaceChildren();
      const slot = document.querySelector(".slot[data-last-tapped]");
      if (slot) { slot.removeAttribute("data-last-tapped"); slot.focus({ preventScroll: true }); }
    }
  }, true);
  // Keyboard users get back to the slot they opened the dialog from.
  document.addEventListener("htmx:beforeRequest", function (ev) {
    const elt = ev.detail.elt;
    if (elt && elt.classList && elt.classList.contains("slot")) {
      document.querySelectorAll(".slot[data-last-tapped]").forEach(function (s) { s.removeAttribute("data-last-tapped"); });
      elt.setAttribute("data-last-tapped", "");
    }
  });
})();
