/* The change stream (cockpit/live_push.py): the server pushes each new change token, so the page
   need not ask every second. Dash clientside namespace "cockpit_push".

   connect(page, view, token): (re)opens the page's stream when the unit it shows changes. While
   the stream is open the page's poll (<page>-live-tick) slows to SLOW_MS and only keeps the
   status badge honest; when the stream fails the poll goes back to every second. A server
   without the stream (the development server) answers 404 and the page simply polls. */
window.dash_clientside = Object.assign({}, window.dash_clientside, {
    cockpit_push: {
        connect: function (page, view, token) {
            var dc = window.dash_clientside;
            if (arguments.length === 2) { token = view; view = null; }  /* the wall: no unit */
            if (typeof EventSource === "undefined" || !dc.set_props) { return dc.no_update; }
            var SLOW_MS = 10000, FAST_MS = 1000;
            var unit = (view && view.unit) || "";
            var open = window.cockpitPush = window.cockpitPush || {};
            var key = page + "|" + unit;
            var was = open[page];
            if (was && was.key === key && was.source.readyState !== 2) { return dc.no_update; }
            if (was) { was.source.close(); }
            var config = JSON.parse(document.getElementById("_dash-config").textContent);
            var query = "page=" + encodeURIComponent(page) + (unit ? "&unit=" + encodeURIComponent(unit) : "") +
                (token ? "&since=" + encodeURIComponent(token) : "");
            var source = new EventSource(config.requests_pathname_prefix + "_live/stream?" + query);
            var shown = function () {  /* still on this page? (Dash pages swap their content) */
                return document.getElementById(page + "-live-status") !== null;
            };
            var tick = function (ms) { if (shown()) { dc.set_props(page + "-live-tick", {interval: ms}); } };
            source.onopen = function () { tick(SLOW_MS); };
            source.onmessage = function (e) {
                if (!shown()) { source.close(); return; }
                dc.set_props(page + "-live-token", {data: e.data});
            };
            source.onerror = function () { tick(FAST_MS); };
            open[page] = {key: key, source: source};
            return key;
        }
    }
});
