/* Event heat on the dash-leaflet maps: a Leaflet.heat layer (assets/vendor/leaflet-heat.js) driven from Dash.
 *
 * Finding the map. Leaflet map instances are not reachable from Dash, so this file adds a
 * Leaflet init hook (L.Map.addInitHook) that records every map when it is constructed, keyed by
 * its container element's id: react-leaflet renders <div id={props.id}> and builds the map on it,
 * so the key is the dl.MapContainer's `id` (use string ids). This needs no prop on the map, works
 * for a map without any layer and for maps created later (pages, re-rendered panels); a map that is
 * removed ("unload") is forgotten and a new one with the same id takes its place, heat redrawn.
 * It relies on window.L being the Leaflet that dash-leaflet uses: dash-leaflet 1.1.3 bundles
 * Leaflet 1.9.4, which always sets window.L when it loads, and Dash loads component bundles before
 * assets and renders the layout only after all of them, so the hook is in place before any map
 * exists. Should that ever fail, `cockpitHeat.remember` registers a map explicitly from any
 * dash-leaflet event handler: eventHandlers={"moveend": {"variable": "cockpitHeat.remember"}} on
 * the MapContainer, or {"add": {"variable": "cockpitHeat.remember"}} on one of its layers (the
 * MapContainer's own "load" fires before dash-leaflet subscribes to it, so it is no use).
 *
 * Drawing. Payloads are cockpit.metrics.heat.heat()'s: {points: [[lat, lon, n], ...], max, cell_degrees, ...}
 * (one point per non-empty server cell, its centre). What is kept per map id survives the map:
 * a payload that arrives before its map is drawn once the map registers (and is loaded).
 *   - Intensity is sqrt(n) against a ceiling sqrt(max): counts per cell are heavy-tailed (a station
 *     or a market square can hold 50x the median cell), and a linear scale paints everything but the
 *     top cell at the minimum opacity; log over-flattens. sqrt keeps the hotspot red and the
 *     ordinary busy streets visible (yellow/cyan) under it.
 *   - radius and blur follow the size of one server cell on screen (cell_degrees at the current
 *     zoom, recomputed on zoomend): radius 0.8 cell + blur 0.9 cell reaches past the neighbouring
 *     cell centres, so a dense area reads as one smooth surface and not as dots, at city scale
 *     (cells of a few pixels) as at street scale (cells of hundreds: with a fixed radius they would
 *     show as a lattice of separate blobs). The drawing cost stays about the same at every zoom:
 *     bigger circles, proportionally fewer of them on screen. Clamped to 4..300 px (+ 6..340 px
 *     blur) so the plugin's stamp canvas stays a few MB when zoomed in far past the data.
 *     simpleheat's stamp breaks once 2 * radius + blur > 200 px (see stamp() below): replaced.
 *   - Leaflet.heat dims points by 2^(zoom - maxZoom) unless told otherwise: maxZoom is kept at the
 *     current zoom so intensity means the same thing at every zoom. Zoomed out so far that several
 *     cells fall into one of its (radius + blur) / 2 pixel buckets, it sums them: the ceiling is
 *     raised by the bucket/cell ratio so that view does not saturate.
 *   - Gradient blue -> cyan -> yellow -> orange -> red, made for a dark ground; minOpacity 0.25 so
 *     a single event still shows.
 *   - The canvas lives in its own pane ("cockpitHeatPane", z-index 450: above the overlay pane's
 *     polygons at 400 - and over circle markers, which Leaflet also puts there -, below the marker
 *     (600) and tooltip (650) panes), and it and its pane have pointer-events: none,
 *     so clicks and hovers reach the polygons underneath. Its class stays "leaflet-heatmap-layer".
 *   - Live events (add) are snapped onto the server's cell raster (inferred from the payload's
 *     cell centres and cell_degrees): an event in a drawn cell adds to that cell's count, one
 *     elsewhere makes a new cell; nothing else is recomputed. The next full payload replaces all.
 *
 * API (window.cockpitHeat):
 *   draw(mapId, payload)    replace the heat of map `mapId` (payload null: clear); returns stats
 *   add(mapId, points)      add live events [[lat, lon, w], ...] (w defaults to 1); returns stats
 *   clear(mapId)            remove the heat layer and its points; returns stats
 *   stats(mapId)            {points, events, max, visible, registered, radius, blur}
 *   remember(e, context)    register a map from a dash-leaflet event handler (see above)
 *   map(mapId)              the Leaflet map registered under mapId, or null
 * Clientside (window.dash_clientside.cockpit_heat):
 *   render(payload, mapId)  draw; returns "<n> points"
 *   append(points, mapId)   add;  returns "<n> points"
 */
window.cockpitHeat = (function () {
    var PANE = "cockpitHeatPane";
    var PANE_Z = 450;
    var GRADIENT = {0.2: "#1e40af", 0.4: "#06b6d4", 0.6: "#fde047", 0.8: "#fb923c", 1.0: "#ef4444"};
    var MIN_OPACITY = 0.25;
    var RADIUS = {factor: 0.8, min: 4, max: 300};
    var BLUR = {factor: 0.9, min: 6, max: 340};
    var DEFAULT_CELL_PX = 12;  // a payload without cell_degrees (no events, or hand-made points)

    var states = {};  // mapId -> state; kept when the map goes, so a new map with that id gets the heat
    var HeatClass = null;
    var hooked = false;

    function state(mapId) {
        var key = String(mapId);
        if (!states[key]) {
            states[key] = {id: key, map: null, layer: null, shown: false, cell: null, ref: null,
                           counts: [], latlngs: [], index: {}, max: 0, events: 0};
        }
        return states[key];
    }

    function clamp(v, lo, hi) { return Math.max(lo, Math.min(hi, v)); }

    /* The Leaflet.heat subclass: own pane, no pointer events, zoom-aware options, and guards for a
     * zero-sized (hidden) map and for redraws after removal, where the plugin would throw. */
    function heatClass() {
        if (HeatClass) { return HeatClass; }
        var L = window.L;
        if (L && !L.heatLayer && window.cockpitInstallLeafletHeat) { window.cockpitInstallLeafletHeat(L); }
        if (!L || !L.HeatLayer) { throw new Error("cockpitHeat: Leaflet.heat is not loaded (assets/vendor/leaflet-heat.js)"); }
        var base = L.HeatLayer.prototype;
        HeatClass = L.HeatLayer.extend({
            onAdd: function (map) {
                base.onAdd.call(this, map);  // creates the canvas in the overlay pane and draws
                var pane = map.getPane(PANE) || map.createPane(PANE);
                pane.style.zIndex = PANE_Z;
                pane.style.pointerEvents = "none";
                this._canvas.style.pointerEvents = "none";
                pane.appendChild(this._canvas);  // moved: above every vector layer, whenever added
                map.on("zoomend", this._tune, this);
            },
            _initCanvas: function () {
                base._initCanvas.call(this);
                this._heat.radius = stamp;
                this._updateOptions();
            },
            onRemove: function (map) {
                if (this._canvas && this._canvas.parentNode) { this._canvas.parentNode.removeChild(this._canvas); }
                map.off("moveend", this._reset, this);
                map.off("zoomanim", this._animateZoom, this);
                map.off("zoomend", this._tune, this);
                if (this._frame) { L.Util.cancelAnimFrame(this._frame); this._frame = null; }
            },
            redraw: function () {
                return this._map ? base.redraw.call(this) : this;
            },
            _redraw: function () {
                var size = this._map ? this._map.getSize() : null;
                if (!size || !size.x || !size.y) { this._frame = null; return; }
                base._redraw.call(this);
            },
            /* Options only: the moveend that follows every zoomend redraws. */
            _tune: function () {
                if (!this._map || !this._cockpit) { return; }
                L.setOptions(this, optionsFor(this._cockpit, this._map));
                if (this._heat) { this._updateOptions(); }
            }
        });
        return HeatClass;
    }

    /* simpleheat's radius() (the blurred disc stamped once per point), fixed for big discs: it
     * draws the disc 200 px up-left of the stamp canvas so that only its shadow (the blur) lands
     * on it, which leaves the solid disc itself on the canvas once 2 * radius + blur > 200 px
     * (hard-edged, saturated circles at street zoom). Here the offset grows with the disc. */
    function stamp(r, blur) {
        blur = blur === undefined ? 15 : blur;
        var circle = this._circle = document.createElement("canvas");
        var ctx = circle.getContext("2d");
        var e = this._r = r + blur;
        var off = 2 * e + r;
        circle.width = circle.height = 2 * e;
        ctx.shadowOffsetX = ctx.shadowOffsetY = off;
        ctx.shadowBlur = blur;
        ctx.shadowColor = "black";
        ctx.beginPath();
        ctx.arc(e - off, e - off, r, 0, 2 * Math.PI, true);
        ctx.closePath();
        ctx.fill();
        return this;
    }

    /* One server cell's size on screen at the current zoom (the larger of its two sides). */
    function cellPixels(st, map) {
        if (!st.cell) { return DEFAULT_CELL_PX; }
        var zoom = map.getZoom();
        var c = st.ref ? window.L.latLng(st.ref[0], st.ref[1]) : map.getCenter();
        var a = map.project(c, zoom);
        var b = map.project(window.L.latLng(c.lat + st.cell, c.lng + st.cell), zoom);
        return Math.max(Math.abs(b.x - a.x), Math.abs(b.y - a.y), 0.01);
    }

    function optionsFor(st, map) {
        var px = cellPixels(st, map);
        var radius = clamp(RADIUS.factor * px, RADIUS.min, RADIUS.max);
        var blur = clamp(BLUR.factor * px, BLUR.min, BLUR.max);
        var bucket = (radius + blur) / 2;  // Leaflet.heat sums the points of one such pixel square
        var merged = Math.max(1, bucket / px);
        return {
            radius: Math.round(radius), blur: Math.round(blur),
            max: Math.sqrt(Math.max(st.max, 1)) * merged,
            maxZoom: map.getZoom(),
            minOpacity: MIN_OPACITY, gradient: GRADIENT
        };
    }

    function loaded(map) { return !!(map && map._loaded); }

    /* Put the state's points on its map, creating the layer if needed (map loaded only). */
    function sync(st) {
        var map = st.map;
        if (!st.shown || !loaded(map)) { return; }
        if (!st.layer) {
            var Heat = heatClass();
            st.layer = new Heat(st.latlngs, optionsFor(st, map));
            st.layer._cockpit = st;
            st.layer.addTo(map);
            return;
        }
        st.layer._latlngs = st.latlngs;
        window.L.setOptions(st.layer, optionsFor(st, map));
        if (!map.hasLayer(st.layer)) { st.layer.addTo(map); return; }  // taken off by someone else
        if (st.layer._heat) { st.layer._updateOptions(); }
        st.layer.redraw();
    }

    function register(mapId, map) {
        if (!map || mapId === undefined || mapId === null || mapId === "") { return; }
        var st = state(mapId);
        if (st.map === map) { return; }
        if (st.map && st.layer) { st.map.removeLayer(st.layer); }
        st.map = map;
        st.layer = null;
        map.once("unload", function () {
            if (st.map === map) { st.map = null; st.layer = null; }
        });
        map.whenReady(function () { if (st.map === map) { sync(st); } });
    }

    function hookMaps() {
        var L = window.L;
        if (hooked || !L || !L.Map || !L.Map.addInitHook) { return; }
        hooked = true;
        L.Map.addInitHook(function () {
            var el = this.getContainer ? this.getContainer() : this._container;
            if (el && el.id) { register(el.id, this); }
        });
    }

    /* For dash-leaflet eventHandlers: called as (event, context), context = {map, ...props}. */
    function remember(e, context) {
        var map = (context && context.map) || null;
        var t = e && e.target;
        if (!map && t) { map = t._map || (t.getContainer && t._container ? t : null); }
        if (!map || !map.getContainer) { return; }
        var id = map.getContainer().id;
        if (!id && context && typeof context.id === "string") { id = context.id; }
        register(id, map);
    }

    function cellKey(st, lat, lon) {
        if (!st.cell || !st.ref) { return null; }
        return Math.round((lat - st.ref[0]) / st.cell) + ":" + Math.round((lon - st.ref[1]) / st.cell);
    }

    function draw(mapId, payload) {
        var st = state(mapId);
        if (!payload) { return clear(mapId); }
        var pts = payload.points || [];
        st.cell = payload.cell_degrees || null;
        st.ref = pts.length ? [pts[0][0], pts[0][1]] : null;
        st.counts = [];
        st.latlngs = [];
        st.index = {};
        st.events = 0;
        var top = 0;
        for (var i = 0; i < pts.length; i++) {
            var n = pts[i].length > 2 ? +pts[i][2] : 1;
            st.counts.push(n);
            st.latlngs.push([pts[i][0], pts[i][1], Math.sqrt(n)]);
            var key = cellKey(st, pts[i][0], pts[i][1]);
            if (key !== null) { st.index[key] = i; }
            st.events += n;
            if (n > top) { top = n; }
        }
        st.max = Math.max(+payload.max || 0, top);
        st.shown = true;
        sync(st);
        return stats(mapId);
    }

    function add(mapId, points) {
        var st = state(mapId);
        (points || []).forEach(function (p) {
            var w = p.length > 2 ? +p[2] : 1;
            var lat = p[0], lon = p[1];
            var key = cellKey(st, lat, lon);
            var i = key === null ? undefined : st.index[key];
            if (i === undefined) {
                if (key !== null) {  // a new cell, at its centre on the server's raster
                    var parts = key.split(":");
                    lat = st.ref[0] + (+parts[0]) * st.cell;
                    lon = st.ref[1] + (+parts[1]) * st.cell;
                    st.index[key] = st.counts.length;
                }
                st.counts.push(w);
                st.latlngs.push([lat, lon, Math.sqrt(w)]);
                i = st.counts.length - 1;
            } else {
                st.counts[i] += w;
                st.latlngs[i][2] = Math.sqrt(st.counts[i]);
            }
            st.events += w;
            if (st.counts[i] > st.max) { st.max = st.counts[i]; }
        });
        st.shown = true;
        sync(st);
        return stats(mapId);
    }

    function clear(mapId) {
        var st = state(mapId);
        if (st.layer && st.map) { st.map.removeLayer(st.layer); }
        st.layer = null;
        st.shown = false;
        st.cell = st.ref = null;
        st.counts = [];
        st.latlngs = [];
        st.index = {};
        st.max = st.events = 0;
        return stats(mapId);
    }

    function stats(mapId) {
        var st = states[String(mapId)];
        if (!st) { return {points: 0, events: 0, max: 0, visible: false, registered: false, radius: null, blur: null}; }
        var layer = st.layer;
        var canvas = layer && layer._canvas;
        return {
            points: st.latlngs.length, events: st.events, max: st.max,
            visible: !!(canvas && document.body.contains(canvas)),
            registered: !!st.map,
            radius: layer ? layer.options.radius : null, blur: layer ? layer.options.blur : null
        };
    }

    function mapOf(mapId) {
        var st = states[String(mapId)];
        return st ? st.map : null;
    }

    hookMaps();
    if (!hooked) { document.addEventListener("DOMContentLoaded", hookMaps); }

    return {draw: draw, add: add, clear: clear, stats: stats, remember: remember, map: mapOf,
            _register: register};
})();

(function () {
    function label(st) { return st.points + " points"; }

    function render(payload, mapId) {
        if (!mapId) { return window.dash_clientside.no_update; }
        return label(window.cockpitHeat.draw(mapId, payload));
    }

    function append(points, mapId) {
        if (!mapId || !points || !points.length) { return window.dash_clientside.no_update; }
        return label(window.cockpitHeat.add(mapId, points));
    }

    window.dash_clientside = Object.assign({}, window.dash_clientside, {
        cockpit_heat: {render: render, append: append}
    });
})();
