// The charts page: draws each chart of the data the page came with (uPlot, served by
// Pilot), then fetches /api/v1/charts for the same window again every step (at least
// every 15 s) while the page is visible, redrawing what changed. The tables under the
// charts (latest value per series) are what a screen reader or a keyboard user reads.
(function () {
  "use strict";
  var holder = document.getElementById("charts");
  var initial = document.getElementById("chart-data");
  var status = document.getElementById("charts-status");
  if (!holder || !initial || !window.uPlot) { return; }
  var COLOURS = ["#2563eb", "#d97706", "#059669", "#dc2626", "#7c3aed", "#0891b2",
                 "#db2777", "#65a30d", "#475569", "#ea580c"];
  var plots = {};  // chart id -> {plot, names}
  var data = JSON.parse(initial.textContent);

  function format(unit, value) {
    if (value === null || value === undefined) { return "–"; }
    if (unit === "events") { return Math.round(value).toLocaleString(); }
    return value < 10 ? value.toFixed(2) : Math.round(value).toLocaleString();
  }

  function widthOf(card) { return Math.max(240, card.clientWidth - 32); }

  function latestTable(chart) {
    var table = document.createElement("table");
    table.className = "latest";
    var head = table.createTHead().insertRow();
    ["Series", "Latest"].forEach(function (text, i) {
      var th = document.createElement("th");
      th.scope = "col";
      th.textContent = text;
      if (i === 1) { th.className = "num"; }
      head.appendChild(th);
    });
    var body = table.createTBody();
    chart.series.forEach(function (s) {
      var row = body.insertRow();
      var name = document.createElement("th");
      name.scope = "row";
      name.textContent = s.name;
      row.appendChild(name);
      var cell = row.insertCell();
      cell.className = "num";
      cell.textContent = format(chart.unit, s.latest);
    });
    return table;
  }

  function draw(chart, times) {
    var card = document.getElementById("chart-" + chart.id);
    if (!card) { return; }
    var area = card.querySelector(".plot");
    var names = chart.series.map(function (s) { return s.name; }).join("\n");
    var columns = [times].concat(chart.series.map(function (s) { return s.values; }));
    var known = plots[chart.id];
    if (known && known.names === names) {
      known.plot.setData(columns);
    } else {
      if (known) { known.plot.destroy(); delete plots[chart.id]; }
      if (chart.series.length) {
        var series = [{}].concat(chart.series.map(function (s, i) {
          return {label: s.name, stroke: COLOURS[i % COLOURS.length], width: 1.5,
                  value: function (u, v) { return format(chart.unit, v); }};
        }));
        plots[chart.id] = {names: names, plot: new window.uPlot({
          width: widthOf(card), height: 200, series: series,
          scales: {x: {time: true}},
          axes: [{}, {size: 56, values: function (u, ticks) {
            return ticks.map(function (v) { return format(chart.unit, v); });
          }}]
        }, columns, area)};
      }
    }
    // The text beneath: the latest values, or what the empty chart means, or the problem.
    Array.prototype.forEach.call(card.querySelectorAll("table.latest, p.empty, p.problem"),
      function (old) { old.remove(); });
    var text = null;
    if (chart.series.length) {
      card.appendChild(latestTable(chart));
    } else {
      text = document.createElement("p");
      text.className = chart.problem ? "problem" : "empty";
      text.textContent = chart.problem || chart.empty;
      card.appendChild(text);
    }
  }

  function drawAll() {
    data.charts.forEach(function (chart) { draw(chart, data.times); });
  }

  function refresh() {
    if (document.hidden) { return; }
    fetch("/api/v1/charts?window=" + encodeURIComponent(holder.dataset.window),
          {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (answer) {
        if (!answer.ok) { throw new Error("Pilot answered HTTP " + answer.status); }
        return answer.json();
      })
      .then(function (fresh) {
        data = fresh;
        drawAll();
        status.textContent = fresh.problem ? fresh.problem
          : "From Prometheus, one point every " + fresh.step + " s; updated " +
            new Date().toLocaleTimeString() + ".";
      })
      .catch(function (error) {
        status.textContent = "Could not refresh the charts (" + error.message +
          "); trying again shortly.";
      });
  }

  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () {
      Object.keys(plots).forEach(function (id) {
        var card = document.getElementById("chart-" + id);
        plots[id].plot.setSize({width: widthOf(card), height: 200});
      });
    }, 150);
  });

  drawAll();
  setInterval(refresh, Math.max(15, data.step) * 1000);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) { refresh(); }
  });
})();
