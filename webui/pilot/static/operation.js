// Follows one of Commander's operations on its page: polls Pilot's JSON API (same
// origin, the session cookie) and appends progress lines until it has finished, then
// reloads the page to show the outcome. Without JavaScript the page refreshes itself.
(function () {
  "use strict";
  var card = document.getElementById("operation");
  if (!card || card.dataset.finished === "yes") { return; }
  var id = card.dataset.operation;
  var finished = ["deployed", "unchanged", "rolled-back", "failed", "superseded"];
  var events = document.getElementById("op-events");
  var stateCell = document.getElementById("op-state");

  function show(op) {
    var lines = op.events || [];
    for (var i = events.children.length; i < lines.length; i++) {
      var item = document.createElement("li");
      item.textContent = lines[i];
      events.appendChild(item);
    }
    var badge = document.createElement("span");
    badge.className = "state state-" + String(op.state).toLowerCase();
    badge.textContent = op.state;
    stateCell.replaceChildren(badge);
    document.getElementById("op-revision").textContent =
      op.revision === null || op.revision === undefined ? "–" : String(op.revision);
    document.getElementById("op-reason").textContent = op.reason || "–";
  }

  function poll() {
    fetch("/api/v1/operations/" + encodeURIComponent(id), {
      credentials: "same-origin", headers: {"Accept": "application/json"}
    }).then(function (answer) {
      if (answer.status === 401) { window.location.reload(); return null; }
      return answer.ok ? answer.json() : null;
    }).then(function (op) {
      if (op) {
        show(op);
        if (finished.indexOf(op.state) >= 0) { window.location.reload(); return; }
      }
      window.setTimeout(poll, 1500);
    }).catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 1000);
}());
