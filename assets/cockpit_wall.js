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
        clock: function () {
            var d = new Date();
            function two(x) { return (x < 10 ? "0" : "") + x; }
            return d.getFullYear() + "-" + two(d.getMonth() + 1) + "-" + two(d.getDate()) + " " +
                two(d.getHours()) + ":" + two(d.getMinutes()) + ":" + two(d.getSeconds());
        }
    }
});
