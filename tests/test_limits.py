"""Limits on everything a request can ask for (issue 13 §2): forged callback bodies with wrong
types or sizes answer 400 with one line and no callback runs; well-formed but wrong values
(a NUL byte in a unit code, a date in year 1, a period of centuries) say so on the page; bodies
past their cap answer 413; the wall's rotation is bounded both ways. No traceback in the log."""
from __future__ import annotations

import json
import logging

import pytest

from conftest import signed_in_client
from cockpit.callbacks import limits
from cockpit.layouts.live_parts import lid
from cockpit.ui import url_state


@pytest.fixture(scope="module")
def app(demo_url):
    import os

    from conftest import app_url
    from cockpit.callbacks.app import create_app

    before = {k: os.environ.get(k) for k in ("COCKPIT_DATABASE_URL", "COCKPIT_APP_DATABASE_URL")}
    os.environ["COCKPIT_DATABASE_URL"], os.environ["COCKPIT_APP_DATABASE_URL"] = demo_url, app_url(demo_url)
    try:
        yield create_app()
    finally:
        for k, v in before.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


@pytest.fixture(scope="module")
def client(app, demo_url):
    return signed_in_client(app, url=demo_url)


def _key(app, marker: str) -> str:
    """The callback_map key of the server callback that writes `marker` (an "id.prop")."""
    found = [k for k in app.callback_map if marker in k and app.callback_map[k].get("callback") is not None]
    assert found, marker
    return min(found, key=len)


def _body(app, marker: str, values: dict) -> dict:
    """A callback POST as the browser builds it, each input and state None unless given."""
    key = _key(app, marker)
    spec = app.callback_map[key]
    parts = key[2:-2].split("...") if key.startswith("..") else [key]

    def entries(kind):
        return [{"id": d["id"], "property": d["property"], "value": values.get(f"{d['id']}.{d['property']}")}
                for d in spec[kind]]
    return {"output": key, "outputs": [dict(zip(("id", "property"), p.rsplit(".", 1))) for p in parts],
            "inputs": entries("inputs"), "state": entries("state"),
            "changedPropIds": [f"{spec['inputs'][0]['id']}.{spec['inputs'][0]['property']}"]}


def _post(client, body):
    return client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")


def _no_traceback(caplog):
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], caplog.text


TICKER, TOKEN = lid("wall", "ticker-ids"), lid("wall", "live-token")
# (the callback, by an output it writes; the forged value; what the answer names)
FORGED = [
    ("view-state.children", {"query.data": {"unit": "440303"}}, "query.data"),
    ("view-state.children", {"query.data": "?unit=" + "4" * 5000}, "query.data"),
    ("view-state.children", {"query.data": "?unit=440303", "lang.data": ["zh"]}, "lang.data"),
    ("view-state.children", {"query.data": "?unit=440303", "map-kpi.value": 7}, "map-kpi.value"),
    ("wall-sigs.data", {"wall-focus.data": {"code": "440303"}}, "wall-focus.data"),
    ("wall-sigs.data", {f"{TICKER}.data": {"ids": list(range(10_000))}}, f"{TICKER}.data"),
    ("wall-sigs.data", {"wall-sigs.data": ["a"] * 3}, "wall-sigs.data"),
    (f"{TOKEN}.data", {f"{TOKEN}.data": {"x": 1}}, f"{TOKEN}.data"),
    (f"{TOKEN}.data", {f"{lid('wall', 'live-tick')}.n_intervals": "many"}, "n_intervals"),
    ("event-history.children", {"events-grid.cellClicked": {"rowId": "1; DROP"}}, "events-grid.cellClicked"),
    ("reveal-result.children", {"reveal-button.n_clicks": 1, "reveal-event.data": "x"}, "reveal-event.data"),
    (f"{lid('wall', 'heat-full')}.data", {f"{lid('wall', 'replay-slider')}.value": -10**9}, "replay-slider"),
    (f"{lid('wall', 'heat-full')}.data", {f"{lid('wall', 'heat-unit')}.data": {"a": 1}}, "heat-unit"),
    ("warnings-acked.data", {"ack-button.n_clicks": 1, "warning-open.data": {"id": "x"}}, "warning-open.data"),
    ("rank-grid.rowData", {"rank-period.value": {"from": 1}}, "rank-period.value"),
    ("page-content.children", {"page-url.pathname": {"/": 1}}, "page-url.pathname"),
]


def test_every_value_a_server_callback_reads_has_a_limit(app):
    """A new callback input must get its rule in callbacks/limits.py (counters have one by name)."""
    missing = {f"{d['id']}.{d['property']}" for spec in app.callback_map.values() if spec.get("callback")
               for d in spec["inputs"] + spec["state"]
               if isinstance(d["id"], str) and d["property"] not in limits.COUNTERS} - set(limits.RULES)
    assert not missing


@pytest.mark.parametrize("marker,values,named", FORGED, ids=[f"{m}:{n}" for m, _, n in FORGED])
def test_a_forged_callback_value_is_a_400_naming_it(app, client, caplog, marker, values, named):
    caplog.set_level(logging.INFO)
    answer = _post(client, _body(app, marker, values))
    assert answer.status_code == 400, answer.get_data(as_text=True)[:300]
    assert named in answer.get_json()["error"]
    _no_traceback(caplog)


@pytest.mark.parametrize("body", [[1, 2], "text", {"inputs": []}, {"output": "x", "inputs": {"a": 1}},
                                  {"output": "x", "inputs": [{"id": 1, "property": "p"}]},
                                  {"output": "x", "inputs": [{"id": "a", "property": "b"}] * 500}])
def test_a_callback_body_of_the_wrong_shape_is_a_400(client, caplog, body):
    answer = _post(client, body)
    assert answer.status_code == 400 and answer.get_json()["error"]
    _no_traceback(caplog)


def test_bodies_past_their_cap_are_refused_before_any_callback(client, caplog):
    big = {"output": "x", "inputs": [], "pad": "x" * (limits.MAX_CALLBACK_BYTES + 10)}
    assert _post(client, big).status_code == 413
    # the API keeps its own, larger cap: 1.5 MB is not refused for its size (no token: 401)
    api = client.post("/api/events", data=b"[" + b" " * 1_500_000 + b"]", content_type="application/json")
    assert api.status_code == 401
    _no_traceback(caplog)


def _status(app, client, query: str) -> str:
    answer = _post(client, _body(app, "view-state.children", {"query.data": query, "lang.data": "en"}))
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    return answer.get_json()["response"]["store-status"]["children"]


@pytest.mark.parametrize("query,says", [
    ("?unit=440303%00x", "no unit with code"),
    ("?unit=NO-SUCH-UNIT", "no unit with code"),
    ("?unit=440303&period=custom&from=0001-01-01&to=0001-01-31", "outside the years"),
    ("?unit=440303&period=custom&from=1900-01-01&to=2199-12-31", "choose at most 1,830 days"),
    ("?unit=440303&period=custom&from=2026-13-01&to=2026-14-01", "needs two dates"),
    ("?unit=440303&period=custom&from=%00&to=2026-01-01", "needs two dates"),
])
def test_a_wrong_value_says_so_on_the_page_never_store_unavailable(app, client, caplog, query, says):
    caplog.set_level(logging.INFO)
    shown = _status(app, client, query)
    assert says in shown and "unavailable" not in shown.lower()
    _no_traceback(caplog)


def test_five_years_of_custom_period_still_draw(app, client):
    assert _status(app, client, "?unit=440303&period=custom&from=2022-01-01&to=2026-12-31") == ""


@pytest.mark.parametrize("raw,default,seconds", [
    ("1", 30, 5), ("4", 30, 5), ("5", 30, 5), ("0", 30, 0), ("600", 30, 600), ("99999999999", 30, 86400),
    ("²", 30, 30), ("-3", 30, 30), ("", 2, 5), (None, 0, 0), ("%00", 30, 30)])
def test_the_wall_rotation_is_bounded_both_ways(raw, default, seconds):
    assert url_state.rotation(raw, default) == seconds


def test_a_wall_asked_to_rotate_every_second_turns_every_five(client):
    body = {"output": "page-content.children", "outputs": {"id": "page-content", "property": "children"},
            "inputs": [{"id": "page-url", "property": "pathname", "value": "/wall"}],
            "state": [{"id": "page-url", "property": "search", "value": "?rotate=1"}],
            "changedPropIds": ["page-url.pathname"]}
    shown = json.dumps(_post(client, body).get_json())
    assert '"rotate": 5' in shown and '"interval": 5000' in shown
