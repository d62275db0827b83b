/* The wall's browser-side functions (Dash clientside namespace "cockpit_wall"). */
window.dash_clientside = Object.assign({}, window.dash_clientside, {
    cockpit_wall: {
        /* city -> each district in turn -> city ...; nothing to rotate through: stay */
        rotate: function (n, focus, districts) {
            var stops = [null].concat(districts || []);
            if (stops.length < 2) { return window.dash_clientside.no_update; }
            var at = stops.indexOf(focus === undefined ? null : focus);
            return stops[(at + 1) % stops.length];
        },
        /* the city's time (COCKPIT_TIMEZONE), whatever the wall PC's own zone */
        clock: function (n, config) {
            var zone = (config && config.tz) || undefined;
            var parts = {};
            new Intl.DateTimeFormat("en-GB", {timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit",
                day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit"})
                .formatToParts(new Date()).forEach(function (p) { parts[p.type] = p.value; });
            return parts.year + "-" + parts.month + "-" + parts.day + " " + parts.hour + ":" + parts.minute + ":" +
                parts.second;
        }
    }
});
