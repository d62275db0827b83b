"""The heat layer (assets/cockpit_heat.js over the vendored Leaflet.heat) in headless Chromium.

A bare app with the repository's assets: one map with a clickable square, a heat payload shaped
like cockpit.metrics.heat.heat()'s, a button that swaps it, and a button that adds a second map later.
No database is needed.
"""
from __future__ import annotations

import math
from pathlib import Path
from urllib.parse import urlparse

import dash_leaflet as dl
import pytest
from dash import ClientsideFunction, Dash, Input, Output, State, dcc, html
from selenium.webdriver.common.action_chains import ActionChains

pytestmark = pytest.mark.browser

ASSETS = Path(__file__).resolve().parent.parent / "assets"
CENTRE = (22.54, 114.06)
CELL = 0.002  # degrees, as heat() reports in cell_degrees
HALF = 0.003  # the square's half side, degrees


def payload(centre, radius_cells: float, peak: int) -> dict:
    """Weighted cell centres on a CELL raster, a bell around `centre`, like heat() returns."""
    r = int(radius_cells)
    points = []
    for gy in range(-r, r + 1):
        for gx in range(-r, r + 1):
            d2 = gx * gx + gy * gy
            if d2 > radius_cells ** 2:
                continue
            n = 1 + int(peak * math.exp(-d2 / (2 * (radius_cells / 3) ** 2)))
            points.append([round(centre[0] + gy * CELL, 5), round(centre[1] + gx * CELL, 5), n])
    return {"start": "2025-01-01T00:00:00+00:00", "end": "2025-01-02T00:00:00+00:00", "cell_degrees": CELL,
            "events": sum(p[2] for p in points), "max": max(p[2] for p in points), "points": points}


FIRST = payload(CENTRE, 12.6, 80)
SECOND = payload((CENTRE[0] + 0.004, CENTRE[1] - 0.004), 8.2, 30)
SQUARE = {"type": "FeatureCollection", "features": [{
    "type": "Feature", "properties": {"code": "sq"},
    "geometry": {"type": "Polygon", "coordinates": [[
        [CENTRE[1] - HALF, CENTRE[0] - HALF], [CENTRE[1] + HALF, CENTRE[0] - HALF],
        [CENTRE[1] + HALF, CENTRE[0] + HALF], [CENTRE[1] - HALF, CENTRE[0] + HALF],
        [CENTRE[1] - HALF, CENTRE[0] - HALF]]]}}]}
MAP_STYLE = {"height": "480px", "width": "720px", "background": "#0b1622"}


def make_app() -> Dash:
    app = Dash(__name__, assets_folder=str(ASSETS), serve_locally=True)
    app.layout = html.Div([
        # The explicit registration route (redundant here, the init hook already knows "m") must be harmless.
        dl.MapContainer(id="m", center=list(CENTRE), zoom=14, style=MAP_STYLE,
                        eventHandlers={"moveend": {"variable": "cockpitHeat.remember"}}, children=[
            dl.GeoJSON(id="square", data=SQUARE, eventHandlers={"add": {"variable": "cockpitHeat.remember"}},
                       style={"className": "test-square", "color": "#7fd1ff", "weight": 2, "fillOpacity": 0.3}),
        ]),
        dcc.Store(id="heat", data=FIRST),
        html.Button("next", id="next"),
        html.Button("second map", id="more"),
        html.Div(id="clicks"),
        html.Div(id="heat-status"),
        html.Div(id="slot"),
    ])

    @app.callback(Output("clicks", "children"), Input("square", "n_clicks"))
    def show_clicks(n):
        return f"clicks: {n or 0}"

    @app.callback(Output("heat", "data"), Input("next", "n_clicks"), prevent_initial_call=True)
    def swap(_):
        return SECOND

    @app.callback(Output("slot", "children"), Input("more", "n_clicks"), prevent_initial_call=True)
    def second_map(_):  # a map with no layer at all, made after its heat arrived
        return dl.MapContainer(id="m2", center=list(CENTRE), zoom=13, style=MAP_STYLE)

    app.clientside_callback(ClientsideFunction("cockpit_heat", "render"),
                            Output("heat-status", "data-heat"), Input("heat", "data"), State("m", "id"))
    return app


def stats(dash_duo, map_id: str = "m") -> dict:
    return dash_duo.driver.execute_script("return window.cockpitHeat.stats(arguments[0])", map_id)


def wait_points(dash_duo, n: int, map_id: str = "m") -> None:
    dash_duo._wait_for(lambda d: stats(dash_duo, map_id)["points"] == n and stats(dash_duo, map_id)["visible"],
                       timeout=15, msg=f"heat on {map_id} never had {n} points: {stats(dash_duo, map_id)}")


def centre_pixel(dash_duo) -> list[int]:
    """RGBA of the heat canvas at the middle of the map (canvas pixels are container pixels)."""
    return dash_duo.driver.execute_script("""
        const c = document.querySelector('#m canvas.leaflet-heatmap-layer');
        return Array.from(c.getContext('2d').getImageData(c.width >> 1, c.height >> 1, 1, 1).data);""")


def test_heat_layer_draws_refreshes_adds_and_lets_clicks_through(dash_duo):
    dash_duo.start_server(make_app())
    driver = dash_duo.driver
    driver.set_window_size(1200, 900)

    # First payload: drawn on its canvas, counted, hot (red) in the middle.
    dash_duo.wait_for_element("#m canvas.leaflet-heatmap-layer", timeout=20)
    assert 450 <= len(FIRST["points"]) <= 550
    wait_points(dash_duo, len(FIRST["points"]))
    dash_duo._wait_for(lambda d: d.find_element("id", "heat-status").get_attribute("data-heat")
                       == f"{len(FIRST['points'])} points", timeout=10, msg="render() never reported")
    first = stats(dash_duo)
    assert first["max"] == FIRST["max"] and first["events"] == FIRST["events"] and first["registered"]
    dash_duo._wait_for(lambda d: centre_pixel(dash_duo)[3] > 0, timeout=10, msg="nothing painted")
    r, g, b, a = centre_pixel(dash_duo)
    assert r > 200 and b < 120, (r, g, b, a)  # the peak is at the red end of the gradient
    # Its window.L is the Leaflet dash-leaflet built the map with; the canvas is above the polygons.
    assert driver.execute_script("return window.cockpitHeat.map('m') instanceof L.Map")
    assert driver.execute_script("""
        const heat = document.querySelector('#m canvas.leaflet-heatmap-layer').parentNode;
        const overlay = document.querySelector('#m .leaflet-overlay-pane');
        return +getComputedStyle(heat).zIndex > +getComputedStyle(overlay).zIndex
            && getComputedStyle(heat).pointerEvents === 'none';""")

    # A real click in the square, under the heat, reaches the polygon.
    path = dash_duo.wait_for_element("#m path.test-square", timeout=20)
    x, y = driver.execute_script("const r = arguments[0].getBoundingClientRect();"
                                 "return [r.left + r.width / 2, r.top + r.height / 2];", path)
    assert driver.execute_script("""
        const c = document.querySelector('#m canvas.leaflet-heatmap-layer').getBoundingClientRect();
        return c.left <= arguments[0] && arguments[0] <= c.right && c.top <= arguments[1] && arguments[1] <= c.bottom;
        """, x, y), "the heat canvas does not cover the square"
    assert driver.execute_script("return document.elementFromPoint(arguments[0], arguments[1])"
                                 ".classList.contains('test-square')", x, y)
    map_el = dash_duo.find_element("#m")
    mx, my = driver.execute_script("const r = arguments[0].getBoundingClientRect();"
                                   "return [r.left + r.width / 2, r.top + r.height / 2];", map_el)
    ActionChains(driver).move_to_element(map_el).move_by_offset(int(x - mx), int(y - my)).click().perform()
    dash_duo.wait_for_text_to_equal("#clicks", "clicks: 1", timeout=10)

    # Radius and blur follow the zoom: street scale spreads each cell wider.
    driver.execute_script("window.cockpitHeat.map('m').setZoom(16, {animate: false})")
    dash_duo._wait_for(lambda d: stats(dash_duo)["radius"] > first["radius"], timeout=10,
                       msg=f"radius did not grow on zoom-in: {stats(dash_duo)} vs {first}")
    assert stats(dash_duo)["blur"] > first["blur"]
    driver.execute_script("window.cockpitHeat.map('m').setZoom(14, {animate: false})")
    dash_duo._wait_for(lambda d: stats(dash_duo)["radius"] == first["radius"], timeout=10, msg="radius not restored")

    # A full refresh replaces every point.
    dash_duo.find_element("#next").click()
    wait_points(dash_duo, len(SECOND["points"]))
    dash_duo._wait_for(lambda d: d.find_element("id", "heat-status").get_attribute("data-heat")
                       == f"{len(SECOND['points'])} points", timeout=10, msg="render() never reported")
    assert stats(dash_duo)["max"] == SECOND["max"]

    # Live events: one far away makes a new cell, one on a drawn cell adds to it.
    far = [CENTRE[0] - 0.03, CENTRE[1] + 0.03, 2]
    on_cell = SECOND["points"][0][:2] + [3]
    after = driver.execute_script("return window.cockpitHeat.add('m', arguments[0])", [far, on_cell])
    assert after["points"] == len(SECOND["points"]) + 1
    assert after["events"] == SECOND["events"] + 5
    after = driver.execute_script("return window.cockpitHeat.add('m', [[arguments[0], arguments[1]]])",
                                  far[0] + CELL * 0.2, far[1] - CELL * 0.2)  # same cell, weight 1
    assert after["points"] == len(SECOND["points"]) + 1 and after["events"] == SECOND["events"] + 6

    # Clearing removes the canvas; the map still takes a new payload.
    assert driver.execute_script("return window.cockpitHeat.clear('m')")["visible"] is False
    assert not driver.find_elements("css selector", "#m canvas.leaflet-heatmap-layer")
    driver.execute_script("window.cockpitHeat.draw('m', arguments[0])", FIRST)
    wait_points(dash_duo, len(FIRST["points"]))

    # Heat sent before its map exists is drawn when the map (with no layer at all) appears.
    driver.execute_script("window.cockpitHeat.draw('m2', arguments[0])", SECOND)
    assert stats(dash_duo, "m2")["registered"] is False
    dash_duo.find_element("#more").click()
    dash_duo.wait_for_element("#m2 canvas.leaflet-heatmap-layer", timeout=20)
    wait_points(dash_duo, len(SECOND["points"]), "m2")
    # A removed map is forgotten; its points are kept for the next map with that id.
    driver.execute_script("window.cockpitHeat.map('m2').remove()")
    gone = stats(dash_duo, "m2")
    assert gone["registered"] is False and gone["visible"] is False and gone["points"] == len(SECOND["points"])

    # Nothing fetched from outside, nothing logged.
    urls = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name).concat([location.href])")
    hosts = {urlparse(u).hostname for u in urls if u.startswith("http")}
    assert hosts <= {"127.0.0.1", "localhost"}, hosts
    assert any("/assets/vendor/leaflet-heat.js" in u for u in urls), urls
    assert dash_duo.get_logs() == []
