// Tables the book marks sortable (class "sortable"): a click on a column's header sorts the rows by that
// column, again to reverse. Numbers (a leading number, as in "97.1 %" or "0.31 ± 0.02") sort as numbers, the
// rest as text; empty cells and "n/a" go last. Added by symact.sphinxext to every page.
document.addEventListener("DOMContentLoaded", function () {
  function key(cell) {
    var text = cell.textContent.trim();
    var num = parseFloat(text.replace(/[^0-9eE+\-.].*$/, ""));
    return { text: text, num: isNaN(num) ? null : num, empty: text === "" || text === "n/a" };
  }
  function compare(a, b) {
    if (a.empty !== b.empty) return a.empty ? 1 : -1;
    if (a.num !== null && b.num !== null) return a.num - b.num;
    return a.text.localeCompare(b.text);
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var body = table.tBodies[0];
    if (!body) return;
    table.querySelectorAll("thead th").forEach(function (th, col) {
      th.style.cursor = "pointer";
      th.title = "sort by this column";
      th.addEventListener("click", function () {
        var down = th.getAttribute("aria-sort") === "ascending";
        table.querySelectorAll("thead th").forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", down ? "descending" : "ascending");
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r1, r2) {
          var c = compare(key(r1.cells[col]), key(r2.cells[col]));
          return down ? -c : c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
});
