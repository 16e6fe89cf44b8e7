// The live event debugger: follows the app's recent-events stream (server-sent events,
// same origin, the session cookie) and puts each new event at the top of the list as a
// <details> that opens to its JSON. EventSource reconnects by itself when a stream ends
// (Pilot ends each after a few seconds), resuming after the last event it had; when it
// gives up (Pilot answered with an error) this tries again after a pause.
(function () {
  "use strict";
  var card = document.getElementById("live");
  if (!card || !window.EventSource) { return; }
  var list = document.getElementById("live-events");
  var empty = document.getElementById("live-empty");
  var status = document.getElementById("live-status");
  var pause = document.getElementById("live-pause");
  var keep = parseInt(card.dataset.keep, 10) || 100;
  var after = card.dataset.after;
  var source = null;
  var retry = null;
  var paused = false;

  function say(text) { status.textContent = text; }

  function show(item) {
    var entry = document.createElement("li");
    entry.dataset.id = item.id;
    var details = document.createElement("details");
    var summary = document.createElement("summary");
    var what = document.createElement("span");
    what.className = "mono";
    what.textContent = item.summary;
    var when = document.createElement("time");
    when.dateTime = item.received_at;
    when.textContent = " " + item.received_at.slice(0, 19).replace("T", " ");
    summary.append(what, when);
    var json = document.createElement("pre");
    json.className = "code";
    json.textContent = item.event === null ? (item.raw || "") : JSON.stringify(item.event, null, 2);
    details.append(summary, json);
    entry.append(details);
    list.insertBefore(entry, list.firstChild);
    while (list.children.length > keep) { list.removeChild(list.lastChild); }
    empty.hidden = true;
  }

  function open() {
    window.clearTimeout(retry);
    source = new EventSource(card.dataset.stream + "?after=" + encodeURIComponent(after));
    source.onopen = function () { say("Live: new events appear at the top."); };
    source.onmessage = function (message) {
      after = message.lastEventId || after;
      try { show(JSON.parse(message.data)); } catch (error) { /* not ours: skip it */ }
    };
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) {
        // Refused (signed out, Redis down, too many streams): try again, from the last one.
        source.close();
        say("Not connected; trying again in a few seconds. (Signed out? Reload the page.)");
        if (!paused) { retry = window.setTimeout(open, 5000); }
      } else {
        say("Reconnecting…");
      }
    };
  }

  pause.hidden = false;
  pause.addEventListener("click", function () {
    paused = !paused;
    if (paused) {
      if (source) { source.close(); }
      window.clearTimeout(retry);
      pause.textContent = "Resume";
      say("Paused: events that arrive meanwhile are shown on resuming.");
    } else {
      pause.textContent = "Pause";
      open();
    }
  });
  open();
}());
