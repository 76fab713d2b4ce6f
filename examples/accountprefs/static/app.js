// Account Preferences: local times, delete confirmation, the new-token
// dialog and its Copy buttons. Everything works without this file too; it
// only makes the page nicer and purges the secret when the dialog closes.
"use strict";

// Show times in the viewer's local time zone, with the zone's name (the
// expiry date is chosen in UTC: the zone tells them apart); the server
// renders UTC, which stays in the title.
for (const el of document.querySelectorAll("time[datetime]")) {
  const d = new Date(el.getAttribute("datetime"));
  if (!Number.isNaN(d.getTime())) {
    el.title = el.textContent;
    el.textContent = d.toLocaleString(undefined, {
      year: "numeric", month: "short", day: "numeric", hour: "numeric", minute: "2-digit", timeZoneName: "short",
    });
  }
}

// Ask before deleting: without JavaScript the form posts at once.
for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (e) => {
    if (!window.confirm(form.dataset.confirm)) {
      e.preventDefault();
    }
  });
}

// Generate once: a second click would send the same form again, and the
// browser would drop the page of the first, with its token.
const generate = document.querySelector("form.generate");
if (generate) {
  const button = document.getElementById("generate-button");
  generate.addEventListener("submit", () => {
    button.disabled = true;
  });
  // A page restored by the back button is usable again.
  window.addEventListener("pageshow", () => {
    button.disabled = false;
  });
}

// The expiry date matters only with "On a date…".
const expiry = document.getElementById("token-expiry");
const dateField = document.getElementById("date-field");
if (expiry && dateField) {
  const sync = () => {
    const on = expiry.value === "date";
    dateField.hidden = !on;
    document.getElementById("token-date").required = on;
  };
  expiry.addEventListener("change", sync);
  sync();
}

// Copy buttons: the Clipboard API, or select the text for Ctrl+C.
for (const button of document.querySelectorAll("button[data-copy]")) {
  button.addEventListener("click", async () => {
    const source = document.getElementById(button.dataset.copy);
    const status = document.querySelector(".copy-status");
    try {
      await navigator.clipboard.writeText(source.textContent);
      const what = button.getAttribute("aria-label").replace("Copy ", "");
      status.textContent = what.charAt(0).toUpperCase() + what.slice(1) + " copied to the clipboard.";
    } catch {
      const range = document.createRange();
      range.selectNodeContents(source);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      status.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
    }
  });
}

// The new-token dialog: modal, so focus stays in it. When it closes (OK, or
// Escape once confirmed), the secret leaves the page and the page leaves
// the history: location.replace swaps the response that held it for a fresh
// page.
const dialog = document.getElementById("new-token-dialog");
if (dialog) {
  let purged = false;
  let confirmed = false;
  const purge = () => {
    if (purged) {
      return;
    }
    purged = true;
    for (const el of dialog.querySelectorAll("[data-secret]")) {
      el.remove();
    }
    dialog.remove();
    window.location.replace("/account/preferences");
  };
  // Rendered open for browsers without JavaScript; reopen it as a modal.
  dialog.removeAttribute("open");
  dialog.showModal();
  dialog.querySelector("button[data-copy=new-token]").focus();
  dialog.querySelector("form").addEventListener("submit", (e) => {
    e.preventDefault();
    purge();
  });
  // Escape would lose the secret: ask first. Before any click on the page
  // the browser may close the dialog without a cancelable "cancel" event;
  // then the "close" handler asks, and reopens the dialog on "Cancel".
  const leave = () => window.confirm("Close without copying? The token cannot be shown again.");
  dialog.addEventListener("cancel", (e) => {
    if (!e.cancelable) {
      return;
    }
    confirmed = leave();
    if (!confirmed) {
      e.preventDefault();
    }
  });
  dialog.addEventListener("close", () => {
    if (purged) {
      return;
    }
    if (confirmed || leave()) {
      purge();
    } else {
      dialog.showModal();
    }
  });
}
