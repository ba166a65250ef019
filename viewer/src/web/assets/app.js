// The viewer's one script: live updates of pages marked data-live, and Ctrl+Enter on the SQL
// page. The pages work without it.
"use strict";

(function () {
  const textarea = document.querySelector("form.sql textarea");
  if (textarea) {
    textarea.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        textarea.form.submit();
      }
    });
  }

  if (document.body.dataset.live !== "1" || !window.EventSource) {
    return;
  }
  // The projector committed: fetch this page again and swap the parts marked data-refresh.
  const source = new EventSource("/api/events");
  let last;
  let busy = false;
  source.addEventListener("progress", async (event) => {
    const sequence = JSON.parse(event.data).last_sequence;
    if (last === undefined || sequence === last || busy) {
      last = last === undefined ? sequence : last;
      return;
    }
    last = sequence;
    busy = true;
    try {
      const response = await fetch(window.location.href, { headers: { Accept: "text/html" } });
      if (!response.ok) {
        return;
      }
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      document.querySelectorAll("[data-refresh]").forEach((part) => {
        const replacement = fresh.getElementById(part.id);
        if (replacement) {
          part.replaceWith(document.importNode(replacement, true));
        }
      });
      if (fresh.body.dataset.live !== "1") {
        source.close();
      }
    } finally {
      busy = false;
    }
  });
})();
