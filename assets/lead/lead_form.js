/* The public lead form (/leads/new): "use my position" and a pin dropped on a small map.
 *
 * The form works without this script (longitude and latitude are plain inputs); with it, the phone's position
 * fills them, and a tap on the map (the district's town and community outlines, drawn from the app's own data:
 * no tile server) does too. Both are WGS84, as the form says (crs=wgs84). Served by the form's own blueprint
 * (/leads/assets/), since Dash serves assets/ only under each Dash page's prefix.
 */
(function () {
  "use strict";
  var nanhai = window.nanhai = window.nanhai || {};
  var DECIMALS = 6;
  var COMMUNITY_ZOOM = 13;
  var state = {map: null, pin: null};

  function byId(id) { return document.getElementById(id); }

  function say(key) {
    var form = byId("lead-form"), status = byId("lead-status");
    if (form && status) { status.textContent = form.getAttribute("data-" + key) || ""; }
  }

  function readPoint() {
    var lon = parseFloat(byId("lon").value), lat = parseFloat(byId("lat").value);
    return isFinite(lon) && isFinite(lat) && Math.abs(lat) <= 90 && Math.abs(lon) <= 180 ? [lon, lat] : null;
  }

  function showPin(point, centre) {
    if (!state.map) { return; }
    var latlng = [point[1], point[0]];
    if (state.pin) {
      state.pin.setLatLng(latlng);
    } else {
      state.pin = window.L.circleMarker(latlng, {radius: 9, color: "#fff", weight: 3, fillColor: "#c62828",
                                                 fillOpacity: 1, interactive: false}).addTo(state.map);
    }
    if (centre) { state.map.setView(latlng, Math.max(state.map.getZoom(), 15)); }
  }

  /* Put a point (WGS84 [lon, lat]) into the form and on the map. */
  function setPoint(point, centre) {
    byId("lon").value = point[0].toFixed(DECIMALS);
    byId("lat").value = point[1].toFixed(DECIMALS);
    showPin(point, centre);
  }

  function locate() {
    if (!navigator.geolocation) { say("no-position"); return; }
    say("locating");
    navigator.geolocation.getCurrentPosition(function (position) {
      setPoint([position.coords.longitude, position.coords.latitude], true);
      say("located");
    }, function () { say("no-position"); }, {enableHighAccuracy: true, timeout: 15000, maximumAge: 60000});
  }

  /* The areas' names at their label points (no basemap: the names are what a reader finds his way by):
     towns when zoomed out, communities from COMMUNITY_ZOOM in. */
  function labelAreas(map, features) {
    var groups = {towns: window.L.layerGroup(), communities: window.L.layerGroup()};
    features.forEach(function (feature) {
      var props = feature.properties || {}, group = groups[props.level];
      if (!group || !props.label || !props.name) { return; }
      var name = document.createElement("span");
      name.textContent = props.name;  // text, never HTML: names come from imported data
      group.addLayer(window.L.marker([props.label[1], props.label[0]], {interactive: false, keyboard: false,
        icon: window.L.divIcon({className: "lead-label nh-name lead-label-" + props.level, html: name, iconSize: null})}));
    });
    var shown = function () {
      var close = map.getZoom() >= COMMUNITY_ZOOM;
      [[groups.communities, close], [groups.towns, !close]].forEach(function (pair) {
        if (pair[1] && !map.hasLayer(pair[0])) { pair[0].addTo(map); }
        if (!pair[1] && map.hasLayer(pair[0])) { map.removeLayer(pair[0]); }
      });
    };
    map.on("zoomend", shown);
    shown();
  }

  function drawOutline(map, url) {
    if (!url || !window.fetch) { return; }
    window.fetch(url, {credentials: "same-origin"}).then(function (answer) {
      return answer.ok ? answer.json() : null;
    }).then(function (data) {
      if (!data) { return; }
      window.L.geoJSON(data, {interactive: false, style: function (feature) {
        var town = feature.properties && feature.properties.level === "towns";
        return {color: town ? "#37474f" : "#90a4ae", weight: town ? 2 : 1, fill: !town, fillColor: "#eceff1",
                fillOpacity: 0.5};
      }}).addTo(map);
      labelAreas(map, data.features);
      if (state.pin) { state.pin.bringToFront(); }
    }).catch(function () { /* the map stays blank; the inputs and the position button still work */ });
  }

  function startMap() {
    var box = byId("lead-map");
    if (!box || !window.L) { return; }
    box.hidden = false;
    var bounds = JSON.parse(box.getAttribute("data-bounds") || "null");
    var map = state.map = window.L.map(box, {attributionControl: false, zoomControl: false, zoomSnap: 0.5,
                                             minZoom: 9, maxZoom: 18});
    /* Leaflet titles its buttons in English: the page's language instead */
    window.L.control.zoom({ zoomInTitle: box.getAttribute("data-zoom-in") || "+",
                            zoomOutTitle: box.getAttribute("data-zoom-out") || "-" }).addTo(map);
    if (bounds) { map.fitBounds(bounds); } else { map.setView([23.03, 113.11], 11); }
    drawOutline(map, box.getAttribute("data-outline"));
    map.on("click", function (event) {
      setPoint([event.latlng.lng, event.latlng.lat], false);
      say("pinned");
    });
    var typed = function () { var point = readPoint(); if (point) { showPin(point, false); } };
    byId("lon").addEventListener("change", typed);
    byId("lat").addEventListener("change", typed);
    typed();
  }

  function init() {
    if (!byId("lead-form")) { return; }  // inert anywhere else
    var button = byId("locate");
    if (button) {
      button.hidden = false;
      button.addEventListener("click", locate);
    }
    startMap();
  }

  nanhai.leadForm = {
    init: init,
    setPoint: setPoint,
    /* The pin's [lon, lat] on the map, or null (for tests and for the form's own checks). */
    pin: function () {
      if (!state.pin) { return null; }
      var at = state.pin.getLatLng();
      return [at.lng, at.lat];
    },
    map: function () { return state.map; }
  };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
}());
