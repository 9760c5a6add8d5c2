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
