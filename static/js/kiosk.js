// The kiosk page: badge capture, on-screen keypad, inactivity sign-out, connection status.
// Plain JavaScript, no dependencies beyond the vendored htmx; works with touch and mouse.
(function () {
  "use strict";
  const body = document.body;
  const idleMs = (parseInt(body.dataset.idleSeconds, 10) || 60) * 1000;
  const badgeForm = document.getElementById("badge-form");
  const badgeInput = document.getElementById("badge-input");
  let lastActivity = Date.now();

  // A USB badge reader is a keyboard: keep its hidden field focused unless the member is typing elsewhere.
  function focusBadge() {
    const active = document.activeElement;
    if (active && active !== body && active !== badgeInput && active.matches("input:not([type=hidden]), textarea, select")) return;
    badgeInput.focus({ preventScroll: true });
  }
  badgeInput.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter") {
      ev.preventDefault();
      const uid = badgeInput.value.trim();
      badgeInput.value = "";
      if (uid.length >= 4) {
        htmx.ajax("POST", body.dataset.identifyUrl, { target: "#panel", swap: "innerHTML", values: { badge: uid } });
      }
    }
  });
  badgeForm.addEventListener("submit", function (ev) { ev.preventDefault(); });

  // On-screen keypad: member number, then PIN (masked), then submit.
  document.addEventListener("click", function (ev) {
    const key = ev.target.closest(".k-key");
    if (!key) return;
    const form = key.closest(".k-keypad");
    const step = form.dataset.step;
    const field = form.querySelector(step === "no" ? "input[name=member_no]" : "input[name=pin]");
    const display = form.querySelector("[data-role=display]");
    const k = key.dataset.key;
    if (k === "back") field.value = field.value.slice(0, -1);
    else if (k === "ok") {
      if (!field.value) return;
      if (step === "no") {
        form.dataset.step = "pin";
        form.querySelector(".k-keypad-title").textContent = "PIN";
      } else {
        htmx.trigger(form, "submit");
        return;
      }
    } else if (field.value.length < 10) field.value += k;
    const shown = form.dataset.step === "no" ? form.querySelector("input[name=member_no]").value
      : "•".repeat(form.querySelector("input[name=pin]").value.length);
    display.textContent = shown;
  });

  // Inactivity: a signed-in member is signed out after the configured time (the server enforces it too).
  ["pointerdown", "keydown", "touchstart"].forEach(function (t) {
    document.addEventListener(t, function () { lastActivity = Date.now(); }, { passive: true });
  });
  setInterval(function () {
    const view = document.querySelector("#panel [data-view]");
    const name = view ? view.dataset.view : "identify";
    if ((name === "member" || (name === "identify" && document.querySelector("#panel .k-keypad")))
        && Date.now() - lastActivity > idleMs) {
      lastActivity = Date.now();
      htmx.ajax("POST", body.dataset.signoutUrl, { target: "#panel", swap: "innerHTML" });
    }
  }, 1000);

  // Connection status: polling keeps going while the server restarts; say so, and recover by itself.
  const conn = document.getElementById("conn");
  function setOffline(off) {
    body.classList.toggle("k-offline", off);
    conn.textContent = off ? "Reconnecting…" : "";
  }
  document.addEventListener("htmx:sendError", function () { setOffline(true); });
  document.addEventListener("htmx:responseError", function (ev) {
    if (ev.detail.xhr && ev.detail.xhr.status >= 500) setOffline(true);
  });
  document.addEventListener("htmx:afterRequest", function (ev) {
    if (ev.detail.successful || (ev.detail.xhr && ev.detail.xhr.status > 0 && ev.detail.xhr.status < 500)) setOffline(false);
  });
  // Error responses carry a message for the member: show them in place (htmx skips 4xx swaps by default).
  document.addEventListener("htmx:beforeSwap", function (ev) {
    const s = ev.detail.xhr.status;
    if (s >= 400 && s < 500) { ev.detail.shouldSwap = true; ev.detail.isError = false; }
  });
  document.addEventListener("htmx:afterSwap", focusBadge);
  // A new panel (signed in, keypad, confirmation) opens at its top: "Hello" and "Sign out" first.
  document.addEventListener("htmx:afterSwap", function (ev) {
    if (ev.detail.target && ev.detail.target.id === "panel") ev.detail.target.scrollTop = 0;
  });
  document.addEventListener("click", function () { setTimeout(focusBadge, 0); });

  const clock = document.getElementById("clock");
  // The lab's clock, whatever timezone the kiosk's operating system was set up with.
  const fmt = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", timeZone: body.dataset.tz || undefined });
  function tick() { clock.textContent = fmt.format(new Date()); }
  setInterval(tick, 10000);
  tick();
  focusBadge();
  window.kiosk = { focusBadge: focusBadge };
})();
