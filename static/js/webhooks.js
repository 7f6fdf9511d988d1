// Webhook admin pages: ask before deleting a hook or replacing its secret; the forms work without it.
(function () {
  "use strict";
  document.addEventListener("click", function (ev) {
    var btn = ev.target instanceof Element ? ev.target.closest("[data-wh-confirm]") : null;
    if (btn && !window.confirm(btn.getAttribute("data-wh-confirm"))) ev.preventDefault();
  });
})();
