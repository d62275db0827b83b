"""Limits on what a request may ask for, checked once before any callback runs (issue 13 §2).

A Dash callback receives whatever JSON its POST carries: a page sends the values its elements
hold, but anyone can forge the body. Every value a server callback reads is checked here
against what its element can hold (its type, a length, a range, a list's size); a body that
fails answers 400 with one line naming the element, and no callback (nor traceback) runs.
The meaning of a well-formed value (an unknown unit code, a period outside the years a period
may span, too long a custom period) is left to the parse functions of cockpit/ui/url_state.py
and cockpit/metrics, whose BadRequest the page shows as one line.

Bodies: MAX_CALLBACK_BYTES for Dash's callbacks (Flask's MAX_CONTENT_LENGTH: 413), the API its
own cap (cockpit/ingest/api_events.MAX_BYTES); cockpit/serve.py reads every body before the app
does and refuses anything past MAX_BODY there.
"""
from __future__ import annotations

from typing import Any, Callable

import flask
from dash import Dash

from cockpit.ingest import api_events
from cockpit.layouts.live_parts import REPLAY_HOURS, lid
from cockpit.metrics.live_view import TICKER_SIZE

MAX_CALLBACK_BYTES = 1024 * 1024  # a callback's body: the largest the pages send is a few KB
MAX_ITEMS = 200  # inputs + state of one callback (the largest has about 25)
CODE = 64  # characters of a unit, group, source, level or period code
CALLBACK = "/_dash-update-component"

Check = Callable[[Any], bool]


def none_or(check: Check) -> Check:
    return lambda v: v is None or check(v)


def text(limit: int) -> Check:
    return lambda v: isinstance(v, str) and len(v) <= limit


def whole(low: int | None = None, high: int | None = None) -> Check:
    return lambda v: (isinstance(v, int) and not isinstance(v, bool) and (low is None or v >= low)
                      and (high is None or v <= high))


def digits(v) -> bool:
    """An id as a page holds it: a whole number or its digits."""
    return whole(0)(v) or (isinstance(v, str) and len(v) <= 20 and v.isascii() and v.isdigit())


def mapping(keys: int, **fields: Check) -> Check:
    """A dict of at most `keys` keys whose named fields (when present) pass their checks."""
    return lambda v: (isinstance(v, dict) and len(v) <= keys
                      and all(k not in v or check(v[k]) for k, check in fields.items()))


def items(check: Check, limit: int) -> Check:
    return lambda v: isinstance(v, list) and len(v) <= limit and all(check(x) for x in v)


TOKEN = none_or(lambda v: text(200)(v) or whole()(v))  # a change token: a watermark or NOTIFY payload
SHORT = none_or(text(CODE))


def _rules() -> dict[str, tuple[Check, str]]:
    rules: dict[str, tuple[Check, str]] = {
        "page-url.pathname": (none_or(text(2000)), "a path of at most 2,000 characters"),
        "page-url.search": (none_or(text(2000)), "a query string of at most 2,000 characters"),
        "query.data": (none_or(text(2000)), "the view's query string, at most 2,000 characters"),
        "url.search": (none_or(text(2000)), "a query string of at most 2,000 characters"),
        "rank-url.search": (none_or(text(2000)), "a query string of at most 2,000 characters"),
        "lang.data": (SHORT, "a language code"),
        "rank-lang.data": (SHORT, "a language code"),
        "map-kpi.value": (SHORT, "a map measure"),
        "view.data": (none_or(mapping(10, unit=SHORT)), "the shown view"),
        "events-grid.cellClicked": (none_or(mapping(20, rowId=none_or(lambda v: digits(v) or v == ""))),
                                    "a clicked cell with an event id"),
        "reveal-event.data": (none_or(digits), "an event id"),
        "reveal-reason.value": (none_or(text(1000)), "a reason of at most 1,000 characters"),
        "wall-focus.data": (SHORT, "a unit code or nothing (the city)"),
        "wall-sigs.data": (none_or(mapping(16)), "the wall's section signatures"),
        "warning-open.data": (none_or(mapping(10, id=digits)), "an opened warning with its id"),
        "warnings-acked.data": (none_or(mapping(4, id=digits, at=none_or(text(40)))), "an acknowledged warning"),
        "warnings-sig.data": (none_or(text(200)), "a signature"),
        "wall-warnings-sig.data": (none_or(text(200)), "a signature"),
        "ack-who.value": (none_or(text(200)), "a name of at most 200 characters"),
        "ack-note.value": (none_or(text(1000)), "a note of at most 1,000 characters"),
        "rank-search.value": (none_or(text(200)), "a search of at most 200 characters"),
    }
    for name in ("rank-by", "rank-level", "rank-period", "rank-group", "rank-source"):
        rules[f"{name}.value"] = (SHORT, f"a code of at most {CODE} characters")
    for page in ("wall", "cockpit"):
        rules[f"{lid(page, 'live-token')}.data"] = (TOKEN, "a change token")
        rules[f"{lid(page, 'ticker-ids')}.data"] = (
            none_or(mapping(5, scope=SHORT, ids=items(lambda v: digits(v) or text(CODE)(v), TICKER_SIZE * 2))),
            f"the ticker's events (at most {TICKER_SIZE * 2} ids)")
        rules[f"{lid(page, 'live-status')}.className"] = (none_or(text(200)), "a class name")
        rules[f"{lid(page, 'heat-unit')}.data"] = (SHORT, "a unit code")
        rules[f"{lid(page, 'heat-window')}.value"] = (SHORT, "a heat window")
        rules[f"{lid(page, 'replay-slider')}.value"] = (none_or(whole(-REPLAY_HOURS, 0)),
                                                        f"an hour from -{REPLAY_HOURS} to 0")
    return rules


RULES = _rules()
COUNTERS = ("n_clicks", "n_intervals")  # any element's click or tick count: a whole number


def problem(body) -> str | None:
    """What is wrong with a callback body, in one line; None when every value may be what it says."""
    if not isinstance(body, dict) or not isinstance(body.get("output"), str):
        return "a callback body is a JSON object naming its output"
    entries = []
    for part in ("inputs", "state"):
        given = body.get(part, [])
        if not isinstance(given, list):
            return f"{part} must be a list"
        for item in given:  # a pattern-matching input (ALL) is a list of entries
            entries.extend(item if isinstance(item, list) else [item])
    if len(entries) > MAX_ITEMS:
        return f"at most {MAX_ITEMS} inputs and states"
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("property"), str) \
                or not isinstance(entry.get("id"), (str, dict)):
            return "each input and state names an element id and a property"
        value, prop = entry.get("value"), entry["property"]
        if prop in COUNTERS and not none_or(whole(0))(value):
            return f"{prop} must be a whole number"
        if isinstance(entry["id"], str) and (rule := RULES.get(f"{entry['id']}.{prop}")) is not None:
            check, what = rule
            if not check(value):
                return f"{entry['id']}.{prop} must be {what}"
    return None


def register(app: Dash) -> None:
    server = app.server
    server.config["MAX_CONTENT_LENGTH"] = MAX_CALLBACK_BYTES
    prefix = app.config.requests_pathname_prefix.rstrip("/")

    @server.before_request
    def bounded():
        path = flask.request.path[len(prefix):] if prefix else flask.request.path
        if path.startswith("/api/"):
            flask.request.max_content_length = api_events.MAX_BYTES  # the API says its own "too large"
            return None
        if path != CALLBACK or flask.request.method != "POST":
            return None
        body = flask.request.get_json(silent=True)  # past MAX_CONTENT_LENGTH: 413 from Flask itself
        wrong = problem(body)
        if wrong is not None:
            return flask.jsonify({"error": wrong}), 400
        return None
