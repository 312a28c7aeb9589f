// mcp-bridge dashboard: live updates. Served from the binary; the CSP
// allows no other script. Server-rendered fragments are inserted as
// HTML: the server escapes every piece of agent text (maud), and the CSP
// would block any script or event handler that slipped through.
"use strict";

(function () {
  function byId(id) { return document.getElementById(id); }

  function fragment(html) {
    const t = document.createElement("template");
    t.innerHTML = html;
    return t.content;
  }

  function upsertMessage(html) {
    const node = fragment(html).firstElementChild;
    if (!node) { return; }
    const old = byId(node.id);
    if (old) {
      old.replaceWith(node);
    } else {
      byId("messages").appendChild(node);
      node.classList.add("fresh");
    }
  }

  function followConversation(section) {
    const state = byId("live-state");
    const source = new EventSource(section.dataset.events);
    source.addEventListener("open", function () { state.textContent = "live"; });
    source.addEventListener("error", function () { state.textContent = "live updates: reconnecting…"; });
    source.addEventListener("msg", function (e) { upsertMessage(e.data); });
    source.addEventListener("receipt", function (e) { upsertMessage(e.data); });
    source.addEventListener("seats", function (e) {
      const seats = byId("seats");
      seats.replaceChildren(fragment(e.data));
    });
    source.addEventListener("reload", function () { source.close(); window.location.reload(); });
  }

  // The conversation list: re-fetch the table every few seconds while the
  // tab is visible (no event stream per list; the list is cheap to read).
  function refreshList(box) {
    setInterval(function () {
      if (document.hidden) { return; }
      fetch(box.dataset.refresh, { credentials: "same-origin", redirect: "error" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (text) {
          if (!text) { return; }
          const doc = new DOMParser().parseFromString(text, "text/html");
          const fresh = doc.getElementById("conversations");
          if (fresh) { box.replaceChildren(...fresh.childNodes); }
        })
        .catch(function () { /* the next tick tries again */ });
    }, 3000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    const live = document.querySelector("[data-events]");
    if (live) { followConversation(live); }
    const list = document.querySelector("[data-refresh]");
    if (list) { refreshList(list); }
  });
})();
