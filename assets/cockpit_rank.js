/* The rankings page (/rank): cell renderers of its AG Grid and the row click.
   Plain browser JavaScript, served by this app (no CDN); React is Dash's own. */
(function () {
  "use strict";
  var h = function () { return window.React.createElement.apply(window.React, arguments); };

  var SPARK_W = 120, SPARK_H = 26, PAD = 3;

  /* The score over the last periods as a small line (gaps where a period had no events),
     the last point marked: values are 0-100 scores, drawn on the row's own range. */
  function RankSpark(props) {
    var values = props.value || [];
    var known = values.filter(function (v) { return v !== null && v !== undefined; });
    if (!known.length) { return h("span", {className: "spark-none"}, "—"); }
    var lo = Math.min.apply(null, known), hi = Math.max.apply(null, known);
    if (hi - lo < 1) { lo -= 0.5; hi += 0.5; }
    var step = (SPARK_W - 2 * PAD) / Math.max(values.length - 1, 1);
    var x = function (i) { return PAD + i * step; };
    var y = function (v) { return PAD + (SPARK_H - 2 * PAD) * (1 - (v - lo) / (hi - lo)); };
    var segments = [], current = [];
    values.forEach(function (v, i) {
      if (v === null || v === undefined) {
        if (current.length) { segments.push(current); current = []; }
      } else {
        current.push(x(i).toFixed(1) + "," + y(v).toFixed(1));
      }
    });
    if (current.length) { segments.push(current); }
    var children = segments.map(function (pts, k) {
      return pts.length > 1
        ? h("polyline", {key: "l" + k, points: pts.join(" "), fill: "none", stroke: "#3fb6ff", strokeWidth: 1.5})
        : h("circle", {key: "d" + k, cx: pts[0].split(",")[0], cy: pts[0].split(",")[1], r: 1.5, fill: "#3fb6ff"});
    });
    var last = values[values.length - 1];
    if (last !== null && last !== undefined) {
      children.push(h("circle", {key: "last", cx: x(values.length - 1), cy: y(last), r: 2.5, fill: "#7fd1ff"}));
    }
    return h("svg", {className: "spark", width: SPARK_W, height: SPARK_H, viewBox: "0 0 " + SPARK_W + " " + SPARK_H,
                     role: "img", "aria-label": known.map(function (v) { return v.toFixed(1); }).join(", ")},
             children);
  }

  /* The unit's name, its code beneath, as a link to its drill-down when it has one. */
  function RankName(props) {
    var d = props.data || {};
    var inner = [h("span", {key: "n", className: "rank-name"}, d.name),
                 h("span", {key: "c", className: "rank-code"}, d.key)];
    return d.href ? h("a", {className: "rank-unit", href: d.href}, inner) : h("span", {className: "rank-unit"}, inner);
  }

  var fns = window.dashAgGridComponentFunctions = window.dashAgGridComponentFunctions || {};
  fns.RankSpark = RankSpark;
  fns.RankName = RankName;

  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.cockpitRank = {
    /* A row clicked: open that unit's drill-down (same period, filters, language). */
    open: function (cell, rows) {
      if (!cell || !rows) { return window.dash_clientside.no_update; }
      var row = rows.find(function (r) { return r.key === cell.rowId; });
      if (row && row.href) { window.location.assign(row.href); return row.href; }
      return window.dash_clientside.no_update;
    }
  };
})();
