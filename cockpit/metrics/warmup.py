"""Shared views computed when the store changes, before the screens are told of the change.

Every wall asks for its views at the same instant: the moment its change stream
(cockpit/live_push.py) brings a new token. Computed on demand, the first asker of each view
ran its queries (~25-40 ms each at 10 M events) while the other walls, and every request queued
behind them in the worker's thread pool, waited. Here each process remembers the views its
screens asked for lately (`remember`: a recipe that computes one through the view cache), and
its stream hub runs them when the feed reads a new token (`warm`) and only then tells its
streams. The screens then find their views made; the work is the same, but it happens once per
token off the request threads, before the burst of refreshes instead of inside it.

Several workers each warm what they remember, through the view cache's file lock
(cockpit.metrics.viewcache): one computes a view, the others read it. A recipe not asked for
FORGET_AFTER seconds is dropped (a wall closed or turned to another focus), so warming follows
the screens that are open. Warming stops after BUDGET seconds, and a failing recipe is logged
and skipped: a change is never held back for long, and a screen whose view was not warmed
computes it as before.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

FORGET_AFTER = 10.0  # seconds without an ask before a recipe is no longer warmed (a wall asks at every token)
BUDGET = 0.5  # seconds of warming per token at most (then the token is announced all the same)
MAX_RECIPES = 512  # per process: the views of a few hundred screens

_recipes: dict[str, tuple[float, Callable[[], object]]] = {}
_lock = threading.Lock()
stats = {"warmed": 0, "failed": 0, "over_budget": 0}  # tests and the bench read these


def remember(key: object, recipe: Callable[[], object]) -> None:
    """Warm `recipe` (which computes a view for the store's current version through the view
    cache) at each new token while screens keep asking for it. `key` names the view without its
    version (scope, kind, arguments): the newest recipe for a key replaces the older one."""
    key = repr(key)  # whatever a screen sent (a list where a code belongs) names a recipe
    with _lock:
        _recipes[key] = (time.monotonic(), recipe)
        if len(_recipes) > MAX_RECIPES:  # the least recently asked go first
            for old in sorted(_recipes, key=lambda k: _recipes[k][0])[:len(_recipes) - MAX_RECIPES]:
                del _recipes[old]


def recipes() -> list[Callable[[], object]]:
    """The recipes asked for within FORGET_AFTER seconds, most recently asked first."""
    now = time.monotonic()
    with _lock:
        for key in [k for k, (at, _) in _recipes.items() if now - at > FORGET_AFTER]:
            del _recipes[key]
        return [r for _, r in sorted(_recipes.values(), key=lambda v: -v[0])]


def warm(budget: float = BUDGET) -> int:
    """Run the remembered recipes (within `budget` seconds); how many ran."""
    started = time.monotonic()
    ran = 0
    for recipe in recipes():
        if time.monotonic() - started > budget:
            stats["over_budget"] += 1
            break
        try:
            recipe()
            ran += 1
        except Exception as exc:  # noqa: BLE001 — the asking screen will meet it and say so
            stats["failed"] += 1
            log.debug("warming a view failed: %s", exc)
    stats["warmed"] += ran
    return ran


def forget_all() -> None:
    """Drop every recipe (tests)."""
    with _lock:
        _recipes.clear()
