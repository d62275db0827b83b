/* The drill-down map's functions, referenced from Python as {"variable": "cockpitMap.<name>"}.
 *
 * dash-leaflet calls them with the layer's props (hideout included) as the last argument.
 * hideout (built by cockpit.layouts.panels.map_hideout):
 *   {kpi, leaf, tips: {code: html}, by_kpi: {kpi: {values: {code: v}, breaks: [..], colours: [..]}}}
 * Switching KPI swaps hideout.kpi only: the features stay where they are, only colours change.
 */
window.cockpitMap = (function () {
    var NO_DATA = "#2b3746";

    function colourOf(value, layer) {
        if (value === null || value === undefined || !layer || !layer.colours || !layer.colours.length) {
            return NO_DATA;
        }
        for (var i = 0; i < layer.breaks.length; i++) {
            if (value <= layer.breaks[i]) { return layer.colours[i]; }
        }
        return layer.colours[layer.colours.length - 1];
    }

    function style(feature, context) {
        var h = (context && context.hideout) || {};
        var code = feature.properties.code;
        var cls = "unit-shape unit-" + code;
        if (h.leaf) {  // a grid: its own outline over the dark ground, events drawn on top
            return {className: cls + " unit-leaf", color: "#7fd1ff", weight: 3, dashArray: "6 4",
                    fillColor: "#1f6fb2", fillOpacity: 0.12};
        }
        var layer = (h.by_kpi || {})[h.kpi];
        var value = layer && layer.values ? layer.values[code] : undefined;
        return {className: cls, color: "#0b1622", weight: 1.2, opacity: 1,
                fillColor: colourOf(value, layer), fillOpacity: 0.82};
    }

    function hoverStyle(feature, context) {
        var h = (context && context.hideout) || {};
        return h.leaf ? {weight: 4} : {weight: 3, color: "#e6f1ff", fillOpacity: 0.95};
    }

    function escapeHtml(text) {
        return String(text).replace(/[&<>"']/g, function (c) {
            return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
        });
    }

    var TIP = {sticky: true, direction: "top", offset: [0, -10], className: "unit-tip", opacity: 1};

    function showName(layer, name) {
        layer.unbindTooltip();
        layer.bindTooltip(escapeHtml(name), {permanent: true, direction: "center", className: "unit-label",
                                             opacity: 1});
    }

    /* Each unit wears its name; hovering swaps the name for its numbers (a sticky tooltip). */
    function onEachFeature(feature, layer, context) {
        var h = (context && context.hideout) || {};
        var name = feature.properties.label || feature.properties.name;
        var tip = (h.tips || {})[feature.properties.code];
        if (h.leaf) {
            if (tip) { layer.bindTooltip(tip, TIP); }
            return;
        }
        showName(layer, name);
        if (!tip) { return; }
        layer.on("mouseover", function (e) {
            layer.unbindTooltip();
            layer.bindTooltip(tip, TIP);
            layer.openTooltip(e.latlng);
        });
        layer.on("mouseout", function () { showName(layer, name); });
    }

    function eventPoint(feature, latlng) {
        var overdue = feature.properties.overdue;
        return L.circleMarker(latlng, {
            radius: overdue ? 7 : 5,
            color: overdue ? "#ffd6d6" : "#0b1622",
            weight: overdue ? 2 : 1,
            fillColor: overdue ? "#ff4d4f" : "#7fd1ff",
            fillOpacity: 0.95,
            className: "event-point" + (overdue ? " event-overdue" : "")
        });
    }

    /* The wall: the focused unit's parts as a quiet dark base map under the heat layer. */
    function wallStyle(feature) {
        return {className: "unit-shape wall-shape unit-" + feature.properties.code, color: "#3d6f99", weight: 1.4,
                opacity: 0.9, fillColor: "#10263b", fillOpacity: 0.85};
    }

    /* Fit the map to a unit's polygons once they are drawn, leaving room for the toolbar.
     * Restyling (a KPI switch) redraws the same features: that does not move the map. */
    function fitOnce(e) {
        var group = e.target;
        clearTimeout(group._cockpitFitTimer);
        group._cockpitFitTimer = setTimeout(function () {
            var map = group._map;
            if (!map) { return; }
            var codes = [];
            group.eachLayer(function (l) { if (l.feature) { codes.push(l.feature.properties.code); } });
            var key = codes.sort().join(",");
            if (!codes.length || key === group._cockpitFitKey) { return; }
            var bounds = group.getBounds();
            if (!bounds.isValid()) { return; }
            group._cockpitFitKey = key;
            map.invalidateSize({pan: false});  // the panel may have been resized since the map was made
            map.fitBounds(bounds, {paddingTopLeft: [24, 60], paddingBottomRight: [24, 24], animate: false});
            group._cockpitSpot = spotAfterFit(map, codes);
            if (!group._cockpitRefit) {  // a screen resized later (a wall at another size): fit again
                group._cockpitRefit = function () {
                    var b = group.getBounds();
                    if (group._cockpitSpot) {  // zoomed to a warning's spot: stay on it
                        toSpot(map, group._cockpitSpot);
                    } else if (b.isValid()) {
                        map.fitBounds(b, {paddingTopLeft: [24, 60], paddingBottomRight: [24, 24], animate: false});
                    }
                };
                map.on("resize", group._cockpitRefit);
            }
        }, 0);
    }

    /* Hotspot warnings (layouts/warnings.py): outlines of warned units by kind (not clickable, so a
     * click still reaches the unit below) and circle markers on recurrence spots, both in Leaflet's
     * shadow pane (z 500): above the heat (cockpit_heat.js, z 450), which would otherwise veil them. */
    var WARNING_PANE = "shadowPane";
    var KIND_COLOURS = {surge: "#ff6b6b", recurrence: "#f2c14e", cluster: "#c084fc"};

    function warningStyle(feature) {
        var p = feature.properties, acked = p.state === "acknowledged";
        return {className: "warning-outline kind-" + p.kind + " warning-" + p.warning, interactive: false,
                pane: WARNING_PANE,
                color: KIND_COLOURS[p.kind] || "#ff6b6b", weight: acked ? 2 : 3, opacity: acked ? 0.6 : 1,
                dashArray: acked ? "6 5" : null, fill: false};
    }

    function warningSpot(feature, latlng) {
        var p = feature.properties, colour = KIND_COLOURS[p.kind] || "#f2c14e";
        return L.circleMarker(latlng, {radius: 9, color: colour, weight: 3, fillColor: colour, fillOpacity: 0.35,
                                       pane: WARNING_PANE,
                                       className: "warning-spot warning-" + p.warning});
    }

    /* Zoom to a recurrence spot. Drilling into its unit redraws the map and fits it to the unit
     * (fitOnce), so the spot waits until the unit is drawn and is applied after that fit. */
    var pending = {};
    var SPOT_ZOOM = 16;  // a street corner with its neighbouring blocks
    function toSpot(map, latlng) {
        // after any zoom still animating (its end would otherwise put the fitted zoom back)
        if (map._animatingZoom) { map.once("zoomend", function () { toSpot(map, latlng); }); return; }
        map.setView(latlng, SPOT_ZOOM, {animate: false});
    }
    /* `drawn`: the unit is already on the map (no drill, no fit to wait for). */
    function focusSpot(mapId, code, lat, lon, drawn) {
        var map = window.cockpitHeat && window.cockpitHeat.map(mapId);
        if (drawn) {
            if (map) { toSpot(map, [lat, lon]); }
            return;
        }
        pending[mapId] = {code: code, lat: lat, lon: lon};
    }
    function spotAfterFit(map, codes) {
        var id = map.getContainer().id, p = pending[id];
        if (!p || codes.indexOf(p.code) < 0) { return null; }
        delete pending[id];
        toSpot(map, [p.lat, p.lon]);
        return [p.lat, p.lon];
    }

    return {fitOnce: fitOnce, style: style, wallStyle: wallStyle, hoverStyle: hoverStyle, onEachFeature: onEachFeature, eventPoint: eventPoint,
            colourOf: colourOf, warningStyle: warningStyle, warningSpot: warningSpot, focusSpot: focusSpot};
})();
