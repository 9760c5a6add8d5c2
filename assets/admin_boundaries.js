/* The boundaries page (/admin/boundaries/): the uploaded grids on the map, coloured by their check and their
   change (feature.properties.status: error | warning | ok; .change: added | reshaped | renamed | unchanged |
   removed). The tooltip's words come from the catalogs in the page's language: the data-strings of
   #boundaries-strings (pages.admin_boundaries). */
window.nanhai = window.nanhai || {};
window.nanhai.boundaries = {
  FILL: { added: "#37b24d", reshaped: "#1c7ed6", renamed: "#74c0fc", unchanged: "#dee2e6", removed: "#adb5bd" },
  style: function (feature) {
    var p = feature.properties || {};
    var b = window.nanhai.boundaries;
    if (p.status === "error") {
      return { color: "#c92a2a", weight: 3, fillColor: "#ff6b6b", fillOpacity: 0.55, className: "nh-boundary-error" };
    }
    if (p.status === "warning") {
      return { color: "#e67700", weight: 2, fillColor: "#ffd43b", fillOpacity: 0.5, className: "nh-boundary-warning" };
    }
    if (p.change === "removed") {
      return { color: "#495057", weight: 2, dashArray: "6 4", fillColor: b.FILL.removed, fillOpacity: 0.25,
               className: "nh-boundary-removed" };
    }
    return { color: "#343a40", weight: 1, fillColor: b.FILL[p.change] || b.FILL.unchanged, fillOpacity: 0.45,
             className: "nh-boundary-" + (p.change || "unchanged") };
  },
  say: function (key) {
    var node = document.getElementById("boundaries-strings");
    if (node && !node._strings) {
      try { node._strings = JSON.parse(node.getAttribute("data-strings") || "{}"); } catch (e) { node._strings = {}; }
    }
    return (node && node._strings[key]) || key;
  },
  tooltip: function (feature, layer) {
    var p = feature.properties || {};
    var say = window.nanhai.boundaries.say;
    var name = document.createElement("span");
    name.className = "nh-name";  /* a grid's name and code: data, in either language */
    name.textContent = (p.name || "") + " " + (p.code || "");
    var holder = document.createElement("div");
    holder.appendChild(name);
    holder.appendChild(document.createElement("br"));
    holder.appendChild(document.createTextNode(say("change." + (p.change || "unchanged")) +
                                               (p.status !== "ok" ? " · " + say("status." + p.status) : "")));
    layer.bindTooltip(holder, { sticky: true });
  },
};
