/* Words that Dash's and Leaflet's own controls draw in English, put into the page's language.

   Each Dash page carries its strings for them (from the gettext catalogs, see pages.shell._Page) as JSON in
   <script type="application/json" id="nh-page-strings">: the zoom buttons' titles and the attribution link's
   title. The controls are drawn (and redrawn) after this file runs: a MutationObserver sets them as they come. */
(function () {
  "use strict";
  var strings = null;

  function load() {
    if (strings === null) {
      var node = document.getElementById("nh-page-strings");
      try { strings = node ? JSON.parse(node.textContent || "{}") : {}; } catch (e) { strings = {}; }
    }
    return strings;
  }

  function put(selector, attributes, value) {
    if (!value) { return; }
    var found = document.querySelectorAll(selector);
    for (var i = 0; i < found.length; i += 1) {
      for (var j = 0; j < attributes.length; j += 1) {
        if (found[i].getAttribute(attributes[j]) !== value) { found[i].setAttribute(attributes[j], value); }
      }
    }
  }

  function translate() {
    var s = load();
    put(".leaflet-control-zoom-in", ["title", "aria-label"], s.zoom_in);
    put(".leaflet-control-zoom-out", ["title", "aria-label"], s.zoom_out);
    put(".leaflet-control-attribution a[href='https://leafletjs.com']", ["title"], s.leaflet);
  }

  var pending = false;
  new MutationObserver(function () {
    if (pending) { return; }
    pending = true;
    window.requestAnimationFrame(function () { pending = false; translate(); });
  }).observe(document.documentElement, { childList: true, subtree: true });
})();
