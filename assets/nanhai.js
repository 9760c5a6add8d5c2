/* Nanhai grid platform: every browser-side function lives under window.nanhai. */
window.nanhai = Object.assign({}, window.nanhai, {
  grids: {
    bindTooltip: function (feature, layer) {
      var p = feature.properties;
      layer.bindTooltip(p.name + "<br>" + p.code, { sticky: true });
    },
  },
});

/* The public lead form (/leads/new): fill in the phone's position when asked. Works without it too. */
window.nanhai.forms = {
  bindLocate: function () {
    var button = document.getElementById("locate");
    if (!button || !navigator.geolocation) { return; }
    button.addEventListener("click", function () {
      navigator.geolocation.getCurrentPosition(function (position) {
        document.getElementById("lon").value = position.coords.longitude.toFixed(6);
        document.getElementById("lat").value = position.coords.latitude.toFixed(6);
      });
    });
  },
};
document.addEventListener("DOMContentLoaded", window.nanhai.forms.bindLocate);

/* The wall (/wall/): grids coloured by hideout.values[code] = [red, yellow, open, overdue]. */
window.nanhai.wall = {
  RISK: ["#22313f", "#7a5c1e", "#b7791f", "#d9480f", "#c92a2a", "#ff2d2d"],
  level: function (value, steps) {
    var i = 0;
    while (i < steps.length && value >= steps[i]) { i += 1; }
    return i;
  },
  /* The newest hideout seen (by seq): shapes that arrive from the URL after a hideout change are styled by
     dash-leaflet with the hideout of when their fetch began; this one wins when it is newer. */
  latest: null,
  remember: function (hideout) {
    var w = window.nanhai.wall;
    if (hideout && (!w.latest || (hideout.seq || 0) >= (w.latest.seq || 0))) { w.latest = hideout; }
    return window.dash_clientside.no_update;
  },
  gridStyle: function (feature, context) {
    var w = window.nanhai.wall;
    var hideout = (context && context.hideout) || {};
    if (w.latest && (w.latest.seq || 0) > (hideout.seq || 0)) { hideout = w.latest; }
    var v = (hideout.values || {})[feature.properties.code] || [0, 0, 0, 0];
    var fill;
    if (hideout.measure === "work") {
      fill = v[3] > 0 ? w.RISK[w.level(v[3], [1, 2, 4, 8, 16])] : (v[2] > 0 ? "#1f5f8b" : w.RISK[0]);
    } else {
      fill = w.RISK[w.level(v[0] * 3 + v[1], [1, 3, 8, 20, 50])];
    }
    return { color: "#0b1622", weight: 0.5, fillColor: fill, fillOpacity: 0.85, className: "nh-wall-grid" };
  },
  densityStyle: function (feature) {
    var n = feature.properties.count;
    return { color: "#ffd43b", weight: 1, fillColor: "#ffd43b", fillOpacity: Math.min(0.15 + n / 100, 0.6) };
  },
  checkpoint: function (feature, latlng) {
    return L.circleMarker(latlng, { radius: 3, color: "#74c0fc", weight: 1, fillColor: "#74c0fc", fillOpacity: 0.9 })
      .bindTooltip(feature.properties.name);
  },
  /* The refresh alarm: shown when the last successful check is older than the threshold. */
  staleAlarm: function (_tick, lastOk, stale) {
    if (!lastOk || !stale) { return ""; }
    return Date.now() - lastOk > stale.after_ms ? stale.text : "";
  },
};
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  nanhai_wall: { staleAlarm: window.nanhai.wall.staleAlarm, remember: window.nanhai.wall.remember },
});

/* The dispatch console (/dispatch/): hideout = {scope: [codes] or null, selected: code, values: {code: [red,
   yellow, open, overdue]}}. Grids outside the supervisor's scope stay grey. */
window.nanhai.dispatch = {
  gridStyle: function (feature, context) {
    var hideout = (context && context.hideout) || {};
    var code = feature.properties.code;
    var mine = !hideout.scope || hideout.scope.indexOf(code) >= 0;
    var v = (hideout.values || {})[code] || [0, 0, 0, 0];
    var selected = hideout.selected === code;
    var fill = !mine ? "#cfd8e3" : v[3] > 0 ? "#e03131" : v[0] > 0 ? "#f76707" : v[1] > 0 ? "#fab005"
      : v[2] > 0 ? "#4dabf7" : "#d3f9d8";
    return {
      color: selected ? "#1b1b1b" : "#5c7080", weight: selected ? 3 : 0.6, fillColor: fill,
      fillOpacity: mine ? 0.55 : 0.25, className: mine ? "nh-grid-mine" : "nh-grid-other",
    };
  },
  /* A pick, marked in the browser (the server sends no list again for it): the open task's line in every
     list, and the picked grid outlined on the map. Runs on every pick and after every redraw of the lists
     (React may not have drawn them yet: marked again on the next frame). Returns the map's hideout. */
  mark: function (grid, task, _queue, _tasks, hideout) {
    var markLines = function () {
      document.querySelectorAll(".nh-task-item").forEach(function (line) {
        var button = line.querySelector(".nh-task-button");
        var picked = false;
        if (button && task !== null && task !== undefined) {
          try { picked = JSON.parse(button.id).id === task; } catch (e) { picked = false; }
        }
        line.classList.toggle("nh-selected", picked);
      });
    };
    markLines();
    window.requestAnimationFrame(markLines);
    if ((hideout || {}).selected === (grid || null)) { return window.dash_clientside.no_update; }
    return Object.assign({}, hideout, { selected: grid || null });
  },
};
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  nanhai_dispatch: { mark: window.nanhai.dispatch.mark },
});

/* Countdowns of the console (the field view ticks its own, to the second): every .nh-countdown shows the
   time left (or how late), updated every second. */
window.nanhai.countdown = {
  text: function (ms, lang) {
    var en = lang === "en";
    var late = ms < 0;
    var minutes = Math.floor(Math.abs(ms) / 60000);
    var hours = Math.floor(minutes / 60);
    var days = Math.floor(hours / 24);
    var span = days > 0 ? days + (en ? " d " : " 天 ") + (hours % 24) + (en ? " h" : " 小时")
      : hours > 0 ? hours + (en ? " h " : " 小时 ") + (minutes % 60) + (en ? " min" : " 分")
        : minutes + (en ? " min" : " 分钟");
    return late ? (en ? "overdue " : "超时 ") + span : (en ? span + " left" : "剩 " + span);
  },
  tick: function () {
    var now = Date.now();
    document.querySelectorAll(".nh-countdown[data-due]").forEach(function (el) {
      var ms = Date.parse(el.getAttribute("data-due")) - now;
      el.textContent = window.nanhai.countdown.text(ms, el.getAttribute("data-lang"));
      el.classList.toggle("nh-late", ms < 0);
      el.classList.toggle("nh-soon", ms >= 0 && ms < 3600000);
    });
  },
};
setInterval(window.nanhai.countdown.tick, 1000);
