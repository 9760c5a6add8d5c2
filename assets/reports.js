/* The statistics page (/reports/): tables sorted by a click on their header, and the print button.
   Event delegation on the document: Dash redraws the tables on every query, the listeners stay. */
(function () {
  "use strict";

  function sortValue(cell, numeric) {
    if (!numeric) { return (cell.textContent || "").trim(); }
    var value = parseFloat(cell.getAttribute("data-value"));
    return isNaN(value) ? -1 : value;  // a suppressed or absent figure sorts below every number
  }

  function sortBy(header) {
    var table = header.closest("table[data-sortable]");
    if (!table || !table.tBodies.length) { return; }
    var index = Array.prototype.indexOf.call(header.parentNode.children, header);
    var numeric = header.getAttribute("data-sort") === "number";
    // a number column sorts largest first on its first click, a text column A to Z
    var current = header.getAttribute("aria-sort");
    var descending = current ? current === "ascending" : numeric;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = sortValue(a.cells[index], numeric);
      var y = sortValue(b.cells[index], numeric);
      var order = numeric ? x - y : String(x).localeCompare(String(y), document.documentElement.lang || "zh");
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(header.parentNode.children, function (th) { th.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", descending ? "descending" : "ascending");
  }

  // The charts' unit names (Plotly's y tick labels, SVG text that no element of the page can wrap) are names of
  // places: marked as Chinese, as the tables' names are with .nh-name, on every redraw.
  function markNames() {
    var groups = document.querySelectorAll(".nh-reports-names .yaxislayer-above");
    Array.prototype.forEach.call(groups, function (group) {
      if (group.getAttribute("lang") !== "zh") { group.setAttribute("lang", "zh"); }
    });
  }
  if (window.location.pathname.indexOf("/reports/") === 0 && window.MutationObserver) {
    new MutationObserver(markNames).observe(document.documentElement, {childList: true, subtree: true});
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) { return; }
    var header = target.closest("table[data-sortable] thead th");
    if (header) { sortBy(header); return; }
    if (target.closest("#reports-print")) { window.print(); }
  });
})();
