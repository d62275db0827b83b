/* The drill-down's state lives in the page URL (?unit=&period=&from=&to=&kpi=&group=&source=&lang=).
 *
 * parse/serialise mirror cockpit/ui/url_state.py. The clientside callbacks below keep
 * URL, controls and the "query" store (the URL minus kpi: what the server renders from) in step:
 *   - a map click reads only the clicked feature's code (never posts geometry) and pushes a URL;
 *   - a control change pushes a URL;
 *   - a URL change (load, back/forward, breadcrumb link) sets the controls.
 * Switching the map KPI changes the URL and the layer's hideout.kpi, and nothing on the server.
 */
(function () {
    var ORDER = ["unit", "period", "from", "to", "kpi", "group", "source", "lang"];

    function parse(search, config) {
        var q = new URLSearchParams((search || "").replace(/^\?/, ""));
        function one(name) {
            var v = q.get(name);
            v = v === null ? null : v.trim();
            return v ? v : null;
        }
        var d = config.defaults;
        var period = one("period");
        if (config.periods.indexOf(period) < 0) { period = d.period; }
        var kpi = one("kpi");
        if (config.kpis.indexOf(kpi) < 0) { kpi = d.kpi; }
        var lang = one("lang");
        return {
            unit: one("unit"),
            period: period,
            from: period === "custom" ? one("from") : null,
            to: period === "custom" ? one("to") : null,
            kpi: kpi,
            group: one("group"),
            source: one("source") || one("channel"),  /* old links said channel */
            lang: (lang === "zh" || lang === "en") ? lang : null
        };
    }

    function serialise(st, skip) {
        var parts = [];
        ORDER.forEach(function (k) {
            if ((skip || []).indexOf(k) >= 0) { return; }
            if ((k === "from" || k === "to") && st.period !== "custom") { return; }
            if (st[k]) { parts.push(encodeURIComponent(k) + "=" + encodeURIComponent(st[k])); }
        });
        return "?" + parts.join("&");
    }

    function triggeredIds() {
        var ctx = window.dash_clientside.callback_context;
        return ((ctx && ctx.triggered) || []).map(function (t) { return t.prop_id; });
    }

    function sync(search, nClicks, period, start, end, group, source, kpi,
                  clickData, query, view, config, pageLang) {
        var no = window.dash_clientside.no_update;
        var fired = triggeredIds();
        var has = function (id) { return fired.indexOf(id) >= 0; };
        if (search === undefined || search === null) { search = window.location.search; }
        var st = parse(search, config);
        var fromUrl = !(has("children.n_clicks") || has("period.value") || has("custom-range.start_date") ||
                        has("custom-range.end_date") || has("filter-group.value") ||
                        has("filter-source.value") || has("map-kpi.value"));
        var setControls = fromUrl;

        if (has("children.n_clicks")) {
            var code = clickData && clickData.properties ? clickData.properties.code : null;
            if (!code || (view && (view.leaf || view.unit === code))) {
                return [no, no, no, no, no, no, no, no, no, no];
            }
            st.unit = code;
        } else if (!fromUrl) {
            if (has("period.value")) {
                st.period = period || config.defaults.period;
                if (st.period === "custom") {
                    st.from = start || (view && view.first) || null;
                    st.to = end || (view && view.last) || null;
                    setControls = true;  // show the date range, filled
                } else {
                    st.from = st.to = null;
                    setControls = true;  // hide the date range
                }
            }
            if (has("custom-range.start_date") || has("custom-range.end_date")) {
                if (st.period !== "custom" || !start || !end) {
                    return [no, no, no, no, no, no, no, no, no, no];
                }
                st.from = start;
                st.to = end;
            }
            if (has("filter-group.value")) { st.group = group || null; }
            if (has("filter-source.value")) { st.source = source || null; }
            if (has("map-kpi.value")) { st.kpi = kpi || config.defaults.kpi; }
        }

        var newSearch = serialise(st);
        var newQuery = serialise(st, ["kpi"]);
        var langNow = st.lang || pageLang || "zh";
        var toggle = window.location.pathname + serialise(Object.assign({}, st, {lang: langNow === "zh" ? "en" : "zh"}));
        return [
            fromUrl || newSearch === search ? no : newSearch,
            setControls ? st.period : no,
            setControls ? (st.from || null) : no,
            setControls ? (st.to || null) : no,
            setControls ? (st.period === "custom" ? {} : {display: "none"}) : no,
            fromUrl ? st.group : no,
            fromUrl ? st.source : no,
            fromUrl ? st.kpi : no,
            newQuery === query ? no : newQuery,
            toggle
        ];
    }

    function restyle(kpi, hideout) {
        var no = window.dash_clientside.no_update;
        if (!kpi) { return [no, no]; }
        var legendClass = "map-legend show-" + kpi;
        if (!hideout || hideout.kpi === kpi) { return [no, legendClass]; }
        return [Object.assign({}, hideout, {kpi: kpi}), legendClass];
    }

    window.dash_clientside = Object.assign({}, window.dash_clientside, {
        cockpit: {sync: sync, restyle: restyle, parse: parse, serialise: serialise}
    });
})();
