/* Hotspot warnings in the browser (layouts/warnings.py, callbacks/warnings.py).
 *
 * drill(opened, search, config): an opened warning drills the drill-down into its unit by
 * writing the URL (the drill-down's state: cockpit_state.js parses it and the page follows) and,
 * for a recurrence, zooms the map to the spot (cockpitMap.focusSpot, applied after the unit's fit).
 * The opened item is marked in the list here, without a round trip.
 */
(function () {
    function drill(opened, search, config) {
        var no = window.dash_clientside.no_update;
        if (!opened || !opened.unit) { return no; }
        document.querySelectorAll(".warning-item").forEach(function (el) {
            el.classList.toggle("open", el.dataset.warning === String(opened.id));
        });
        var state = window.dash_clientside.cockpit;
        var st = state.parse(search || window.location.search, config);
        var drawn = st.unit === opened.unit;
        if (opened.lat !== null && opened.lat !== undefined) {
            window.cockpitMap.focusSpot("map", opened.unit, opened.lat, opened.lon, drawn);
        }
        if (drawn) { return no; }
        st.unit = opened.unit;
        return state.serialise(st);
    }

    window.dash_clientside = Object.assign({}, window.dash_clientside, {cockpit_warnings: {drill: drill}});
})();
