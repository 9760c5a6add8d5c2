/* The dispatch console (/dispatch/) in the browser: the grid colours (the shared palette of layers/palette.py,
   window.nanhai.palette, light theme), outlines, checkpoints and the picked task on the map; the alert badge's
   title and sound; the photo viewer. Everything here is for pages/dispatch.py and touches nothing else. */
window.nanhai = window.nanhai || {};
window.nanhai.dispatch = {
  OTHER: "#cfd8e3", /* grids outside the supervisor's scope */
  /* hideout = {scope: [codes] or null, selected: code, values: {code: [red, yellow, open, overdue]}, measure} */
  gridStyle: function (feature, context) {
    var hideout = (context && context.hideout) || {};
    var code = feature.properties.code;
    var mine = !hideout.scope || hideout.scope.indexOf(code) >= 0;
    var values = (hideout.values || {})[code] || [0, 0, 0, 0];
    var selected = hideout.selected === code;
    var palette = window.nanhai && window.nanhai.palette;
    var measure = hideout.measure || "work";
    var fill = !mine ? window.nanhai.dispatch.OTHER
      : (palette && palette.fill ? palette.fill(measure, values, "light") : "#eef2f6");
    var opacity = palette && palette.schemes && palette.schemes[measure] ? palette.schemes[measure].opacity : 0.8;
    return {
      color: selected ? "#1b1b1b" : "#7b8794", weight: selected ? 3 : 0.6, fillColor: fill,
      fillOpacity: mine ? opacity : 0.3, className: mine ? "nh-grid-mine" : "nh-grid-other",
    };
  },
  symbol: function (name) {
    var palette = window.nanhai && window.nanhai.palette;
    return (palette && palette.symbols && palette.symbols[name] && palette.symbols[name].light) || {};
  },
  /* Town and community outlines (hideout.symbol): lines only, above the grid fill (their own pane). */
  outlineStyle: function (feature, context) {
    var symbol = window.nanhai.dispatch.symbol(((context && context.hideout) || {}).symbol || "community");
    return Object.assign({ fill: false, color: "#334e68", weight: 1.2 }, symbol, { fill: false });
  },
  checkpoint: function (feature, latlng, context) {
    var symbol = window.nanhai.dispatch.symbol("checkpoint");
    var pane = ((context && context.hideout) || {}).pane;
    return L.circleMarker(latlng, Object.assign({ fillOpacity: 1, className: "nh-checkpoint" }, symbol,
      pane ? { pane: pane } : {})).bindTooltip(feature.properties.name || "");
  },
  /* The picked task: its grid outlined, the worker's report position, and the gap between them. */
  pickStyle: function (feature) {
    var role = feature.properties.role;
    if (role === "gap") { return { color: "#c92a2a", weight: 2.5, dashArray: "6 4" }; }
    if (role === "report") {
      return { radius: 8, weight: 2, color: "#ffffff", fillOpacity: 1,
               fillColor: feature.properties.far ? "#c92a2a" : "#2b8a3e" };
    }
    return { color: "#0b1f33", weight: 3.5, fill: false };
  },
  /* Each picked shape's class (a style's className is not applied by Leaflet after creation): set before the
     shape is added, so that its SVG path carries it (nh-pick-grid, nh-pick-gap, nh-report-point nh-report-far). */
  pickEach: function (feature, layer) {
    var role = feature.properties.role;
    layer.options.className = role === "report"
      ? "nh-report-point" + (feature.properties.far ? " nh-report-far" : "") : "nh-pick-" + role;
  },
  reportPoint: function (feature, latlng, context) {
    var far = feature.properties.far;
    var pane = ((context && context.hideout) || {}).pane;
    var metres = Math.round(feature.properties.distance_m || 0).toLocaleString("en-US");
    return L.circleMarker(latlng, Object.assign({
      radius: 8, weight: 2, color: "#ffffff", fillColor: far ? "#c92a2a" : "#2b8a3e", fillOpacity: 1,
      className: far ? "nh-report-point nh-report-far" : "nh-report-point",
    }, pane ? { pane: pane } : {})).bindTooltip(metres + " m", { permanent: far, direction: "top" });
  },

  lastCount: null,
  /* A short beep from the WebAudio API (no audio file): two quick tones. */
  beep: function () {
    try {
      var Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) { return; }
      var audio = window.nanhai.dispatch.audio || new Context();
      window.nanhai.dispatch.audio = audio;
      [0, 0.18].forEach(function (start, i) {
        var tone = audio.createOscillator();
        var gain = audio.createGain();
        tone.type = "sine";
        tone.frequency.value = i ? 1175 : 880;
        gain.gain.setValueAtTime(0.18, audio.currentTime + start);
        gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + start + 0.15);
        tone.connect(gain);
        gain.connect(audio.destination);
        tone.start(audio.currentTime + start);
        tone.stop(audio.currentTime + start + 0.16);
      });
      window.nanhai.dispatch.beeps = (window.nanhai.dispatch.beeps || 0) + 1;
    } catch (e) { /* no sound is no reason to break the page */ }
  },
  /* The photo viewer: a thumbnail enlarges over the page; a click anywhere (or Escape) closes it. */
  view: function (src, alt) {
    var viewer = document.getElementById("nh-photo-viewer");
    if (!viewer) {
      viewer = document.createElement("div");
      viewer.id = "nh-photo-viewer";
      viewer.className = "nh-viewer";
      viewer.setAttribute("role", "dialog");
      viewer.appendChild(document.createElement("img"));
      viewer.addEventListener("click", function () { viewer.hidden = true; });
      document.body.appendChild(viewer);
    }
    var image = viewer.querySelector("img");
    image.src = src;
    image.alt = alt || "";
    viewer.hidden = false;
  },
};

document.addEventListener("click", function (event) {
  var photo = event.target.closest && event.target.closest(".nh-photo");
  if (!photo) { return; }
  var thumb = photo.querySelector("img");
  if (thumb) { window.nanhai.dispatch.view(thumb.getAttribute("data-full") || thumb.src, thumb.alt); }
});
document.addEventListener("keydown", function (event) {
  var viewer = document.getElementById("nh-photo-viewer");
  if (event.key === "Escape" && viewer) { viewer.hidden = true; }
});

window.dash_clientside = Object.assign({}, window.dash_clientside, {
  nanhai_dispatch_console: {
    /* The page title "(3) 调度台" and, when the count rose and the sound is on, a beep. */
    alert: function (count, sound, words) {
      var n = (count && count.count) || 0;
      var title = (words && words.title) || document.title;
      document.title = n > 0 ? "(" + n + ") " + title : title;
      var previous = window.nanhai.dispatch.lastCount;
      window.nanhai.dispatch.lastCount = n;
      if (previous !== null && n > previous && sound !== false) { window.nanhai.dispatch.beep(); }
      return n;
    },
    /* The sound switch, remembered in localStorage (dcc.Store storage_type local); on unless switched off. */
    sound: function (clicks, sound, words) {
      var on = sound !== false;
      if (clicks) { on = !on; }
      return [on, (words || {})[on ? "on" : "off"] || ""];
    },
    /* A pick, marked in the browser (the server sends no list again for it): the open task's line in every
       list, and the picked grid outlined on the map; the measure the map is coloured by. Returns the hideout. */
    mark: function (grid, task, _queue, _tasks, measure, hideout) {
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
      var current = hideout || {};
      if (current.selected === (grid || null) && current.measure === (measure || current.measure)) {
        return window.dash_clientside.no_update;
      }
      return Object.assign({}, current, { selected: grid || null, measure: measure || current.measure });
    },
  },
});
