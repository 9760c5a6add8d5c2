/* Nanhai grid platform: every browser-side function lives under window.nanhai. */
window.nanhai = Object.assign({}, window.nanhai, {
  grids: {
    /* name and code as text, never as HTML (names come from uploaded files) */
    bindTooltip: function (feature, layer) {
      var p = feature.properties;
      var box = document.createElement("span");
      var name = document.createElement("span");
      name.className = "nh-name";
      name.textContent = p.name || "";
      box.appendChild(name);
      box.appendChild(document.createElement("br"));
      box.appendChild(document.createTextNode(p.code || ""));
      layer.bindTooltip(box, { sticky: true });
    },
  },
});

/* The maps' colour schemes, from layers/palette.py (one source of truth for the wall, the dispatch console and
   their legends). The line between the markers is written by `python -m layers.palette`; a test checks it. */
/* palette: BEGIN (generated, do not edit) */
window.nanhai.palette = {"density": {"breaks": [5, 10, 20, 50], "colours": ["#e599f7", "#cc5de8", "#ae3ec9", "#862e9c"], "figure": "persons", "label": "legend.density", "opacity": 0.45}, "figures": ["red", "yellow", "open", "overdue"], "schemes": {"risk": {"hot": {"breaks": [1, 2, 5], "colours": ["#ff8787", "#f03e3e", "#c2255c"], "figure": "red", "label": "legend.red"}, "measure": "risk", "opacity": 0.85, "quiet": {"dark": "#22313f", "light": "#eef2f6"}, "warm": {"breaks": [1, 3], "colours": ["#ffe066", "#fab005"], "figure": "yellow", "label": "legend.yellow"}}, "work": {"hot": {"breaks": [1, 2, 5], "colours": ["#ffa94d", "#f76707", "#d9480f"], "figure": "overdue", "label": "legend.overdue"}, "measure": "work", "opacity": 0.85, "quiet": {"dark": "#22313f", "light": "#eef2f6"}, "warm": {"breaks": [1, 3], "colours": ["#a5d8ff", "#339af0"], "figure": "open", "label": "legend.open"}}}, "symbols": {"checkpoint": {"dark": {"color": "#0b1622", "fillColor": "#f8f9fa", "radius": 3, "weight": 1}, "light": {"color": "#ffffff", "fillColor": "#1864ab", "radius": 3.5, "weight": 1}}, "community": {"dark": {"color": "#8fa9c2", "dashArray": "4 3", "weight": 0.9}, "light": {"color": "#627d98", "dashArray": "4 3", "weight": 1.2}}, "town": {"dark": {"color": "#e3eef8", "weight": 2.4}, "light": {"color": "#243b53", "weight": 2.4}}}};
/* palette: END */
window.nanhai.palette.level = function (value, breaks) {
  var i = 0;
  while (i < breaks.length && value >= breaks[i]) { i += 1; }
  return i - 1;
};
/* A grid's fill colour by measure ("risk" or "work") from its figures [red, yellow, open, overdue]: the hot
   figure's class if any (red persons, overdue tasks), else the warm one's (yellow, open), else quiet. */
window.nanhai.palette.fill = function (measure, values, theme) {
  var p = window.nanhai.palette;
  var scheme = p.schemes[measure] || p.schemes.risk;
  var v = values || [0, 0, 0, 0];
  var parts = [scheme.hot, scheme.warm];
  for (var k = 0; k < parts.length; k += 1) {
    var level = p.level(v[p.figures.indexOf(parts[k].figure)] || 0, parts[k].breaks);
    if (level >= 0) { return parts[k].colours[level]; }
  }
  return scheme.quiet[theme || "dark"];
};

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

/* The wall (/wall/): grids coloured by hideout.values[code] = [red, yellow, open, overdue] in the palette's
   colours; outlines, density and checkpoints in its symbols, each layer in its own pane (layers/wall.py). */
window.nanhai.wall = {
  /* How much larger than 1920 x 1080 the wall is: lines, points and labels grow with it, as the text does. */
  scale: function () {
    return Math.max(1, Math.min(window.innerWidth / 1920, window.innerHeight / 1080));
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
    var measure = hideout.measure === "work" ? "work" : "risk";
    var fill = window.nanhai.palette.fill(measure, (hideout.values || {})[feature.properties.code], "dark");
    return { color: "#0b1622", weight: 0.5 * w.scale(), fillColor: fill,
             fillOpacity: window.nanhai.palette.schemes[measure].opacity, className: "nh-wall-grid" };
  },
  densityStyle: function (feature) {
    var d = window.nanhai.palette.density;
    var colour = d.colours[Math.max(0, window.nanhai.palette.level(feature.properties.count, d.breaks))];
    return { color: colour, weight: 1.2 * window.nanhai.wall.scale(), fillColor: colour, fillOpacity: d.opacity,
             className: "nh-wall-density" };
  },
  outlineStyle: function (feature, context) {
    var symbol = ((context && context.hideout) || {}).symbol || "community";
    var s = window.nanhai.palette.symbols[symbol].dark;
    return { color: s.color, weight: s.weight * window.nanhai.wall.scale(), dashArray: s.dashArray || null,
             fill: false, className: "nh-wall-outline nh-wall-" + symbol };
  },
  /* A name as an element (never as HTML: names come from uploaded files). */
  nameElement: function (name, className) {
    var span = document.createElement("span");
    span.className = "nh-name " + (className || "");
    span.textContent = name || "";
    return span;
  },
  checkpoint: function (feature, latlng, context) {
    var s = window.nanhai.palette.symbols.checkpoint.dark;
    var k = window.nanhai.wall.scale();
    return L.circleMarker(latlng, { pane: ((context && context.hideout) || {}).pane || "markerPane",
                                    radius: s.radius * k, color: s.color, weight: s.weight * k,
                                    fillColor: s.fillColor, fillOpacity: 1, className: "nh-wall-checkpoint" })
      .bindTooltip(window.nanhai.wall.nameElement(feature.properties.name));
  },
  /* Labels: each town's and community's name at its label point (inside the shape), shown from its level's
     zoom (hideout.labelZoom, at 1920 x 1080: a larger wall is drawn closer, the difference is taken off), and
     hidden where it would overlap a label already placed (towns first). */
  map: null,
  labels: [],
  outlineLabel: function (feature, layer, context) {
    var w = window.nanhai.wall;
    var hideout = (context && context.hideout) || {};
    var p = feature.properties;
    if (!p.label) { return; }
    var inner = w.nameElement(p.name, "nh-label-text");
    var marker = L.marker([p.label[1], p.label[0]], {
      icon: L.divIcon({ className: "nh-label nh-label-" + hideout.symbol + " nh-label-off", html: inner,
                        iconSize: null }),
      pane: hideout.labelPane || "tooltipPane", interactive: false, keyboard: false });
    var label = { marker: marker, zoom: hideout.labelZoom || 0, rank: hideout.symbol === "town" ? 0 : 1,
                  code: p.code };
    layer.on("add", function () {
      var map = (context && context.map) || layer._map;
      marker.addTo(map);
      var el = marker.getElement();
      if (el) { el.setAttribute("data-code", p.code); }
      w.labels.push(label);
      w.watch(map);
    });
    layer.on("remove", function () {
      marker.remove();
      w.labels = w.labels.filter(function (l) { return l !== label; });
    });
  },
  watch: function (map) {
    var w = window.nanhai.wall;
    if (w.map !== map) {
      w.map = map;
      map.on("zoomend moveend resize", function () { w.placeLabels(); });
      /* The map's box changes after Leaflet measured it (the replay bar's controls load later, fonts arrive):
         measured again and fitted to the district again, or its lower part would stay cut off. */
      if (window.ResizeObserver) { new ResizeObserver(function () { w.fit(); }).observe(map.getContainer()); }
    }
    /* placed once the batch of labels is in, after the grids' first paint (placing reads the layout) */
    window.clearTimeout(w.pending);
    w.pending = window.setTimeout(function () { w.placeLabels(); }, 150);
  },
  labelZoom: function () {
    var w = window.nanhai.wall;
    return w.map ? w.map.getZoom() - Math.log2(w.scale()) : 0;
  },
  placeLabels: function () {
    var w = window.nanhai.wall;
    if (!w.map) { return; }
    var zoom = w.labelZoom();
    w.map.getContainer().setAttribute("data-label-zoom", zoom.toFixed(2));
    var shown = [];
    /* every class written first, then every box read (one layout, not one per label), then the clashes */
    w.labels.slice().sort(function (a, b) { return a.rank - b.rank; }).forEach(function (label) {
      var el = label.marker.getElement();
      if (!el) { return; }
      var on = zoom >= label.zoom;
      el.classList.toggle("nh-label-off", !on);
      el.classList.remove("nh-label-clash");
      if (on) { shown.push(el); }
    });
    var boxes = shown.map(function (el) { return el.firstChild.getBoundingClientRect(); });
    var placed = [];
    shown.forEach(function (el, i) {
      var box = boxes[i];
      var clash = placed.some(function (b) {
        return box.left < b.right && b.left < box.right && box.top < b.bottom && b.top < box.bottom;
      });
      if (clash) { el.classList.add("nh-label-clash"); } else { placed.push(box); }
    });
  },
  /* The legend of the measure in the address (?measure=work), as the server picks it (pages/wall.py _measure). */
  legend: function (search) {
    var match = /[?&]measure=([^&]*)/.exec(search || "");
    var measure = match && window.nanhai.palette.schemes[decodeURIComponent(match[1])] ? decodeURIComponent(match[1])
      : "risk";
    return "nh-wall-legend nh-measure-" + measure;
  },
  /* The page's settings: the tab's title and the document's language in the page's language, and the bounds
     the map keeps fitted (see watch). */
  bounds: null,
  page: function (page) {
    var w = window.nanhai.wall;
    if (page) {
      document.title = page.title;
      document.documentElement.setAttribute("lang", page.lang);
      w.bounds = page.bounds || null;
      if (w.map) { w.fit(); }
    }
    return window.dash_clientside.no_update;
  },
  /* Fitted again only when the map's box changed since Leaflet measured it: a refit redraws every shape. */
  fit: function () {
    var w = window.nanhai.wall;
    var box = w.map.getContainer();
    var size = w.map.getSize();
    if (box.clientWidth === size.x && box.clientHeight === size.y) { return; }
    w.map.invalidateSize({ animate: false });
    if (w.bounds) { w.map.fitBounds(w.bounds, { animate: false }); }
  },
  /* The refresh alarm: shown when the last successful check is older than the threshold. */
  staleAlarm: function (_tick, lastOk, stale) {
    if (!lastOk || !stale) { return ""; }
    return Date.now() - lastOk > stale.after_ms ? stale.text : "";
  },
};
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  nanhai_wall: { staleAlarm: window.nanhai.wall.staleAlarm, remember: window.nanhai.wall.remember,
                 legend: window.nanhai.wall.legend, page: window.nanhai.wall.page },
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
