// pplug-bench results site: sortable tables and the question filters. No libraries, works from file://.
(function () {
  "use strict";
  function key(td) {
    var s = td.getAttribute("data-sort");
    if (s !== null && s !== "" && !isNaN(Number(s))) return { n: Number(s) };
    return { t: (s !== null && s !== "" ? s : td.textContent).trim().toLowerCase() };
  }
  function compare(a, b) {
    // numbers before text, empty cells last
    if ("n" in a && "n" in b) return a.n - b.n;
    if ("n" in a) return -1;
    if ("n" in b) return 1;
    if (a.t === b.t) return 0;
    if (a.t === "" || a.t === "–") return 1;
    if (b.t === "" || b.t === "–") return -1;
    return a.t < b.t ? -1 : 1;
  }
  function sortBy(table, col, th) {
    var dir = th.getAttribute("aria-sort") === "descending" ? "ascending" : "descending";
    if (th.getAttribute("aria-sort") === "none") dir = "ascending";
    table.querySelectorAll("th").forEach(function (h) { h.setAttribute("aria-sort", "none"); });
    th.setAttribute("aria-sort", dir);
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (r, i) { return { r: r, i: i, k: key(r.cells[col]) }; });
    rows.sort(function (x, y) {
      var c = compare(x.k, y.k);
      if (dir === "descending") c = -c;
      return c || x.i - y.i;  // stable
    });
    rows.forEach(function (x) { body.appendChild(x.r); });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("thead th").forEach(function (th, col) {
      th.addEventListener("click", function () { sortBy(table, col, th); });
    });
  });
  var q = document.getElementById("questions");
  if (q) {
    var wrong = document.getElementById("wrong-only"), user = document.getElementById("user-filter");
    var count = document.getElementById("shown-count");
    var apply = function () {
      var shown = 0, total = q.tBodies[0].rows.length;
      Array.prototype.forEach.call(q.tBodies[0].rows, function (r) {
        var ok = (!wrong.checked || r.getAttribute("data-wrong") === "1") &&
                 (!user.value || r.getAttribute("data-user") === user.value);
        r.hidden = !ok;
        if (ok) shown += 1;
      });
      count.textContent = shown + " of " + total + " shown";
    };
    wrong.addEventListener("change", apply);
    user.addEventListener("change", apply);
  }
})();
