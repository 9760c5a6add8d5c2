/* Nanhai grid platform: every browser-side function lives under window.nanhai. */
window.nanhai = Object.assign({}, window.nanhai, {
  grids: {
    /* Style one grid polygon; hideout carries what may change without resending geometry. */
    style: function (feature, context) {
      var hideout = (context && context.hideout) || {};
      var selected = hideout.selected && feature.properties.code === hideout.selected;
      return {
        color: selected ? "#f59f00" : "#1c7ed6",
        weight: selected ? 3 : 0.8,
        fillColor: "#4dabf7",
        fillOpacity: selected ? 0.35 : 0.12,
      };
    },
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
  gridStyle: function (feature, context) {
    var hideout = (context && context.hideout) || {};
    var v = (hideout.values || {})[feature.properties.code] || [0, 0, 0, 0];
    var w = window.nanhai.wall;
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
  nanhai_wall: { staleAlarm: window.nanhai.wall.staleAlarm },
});
