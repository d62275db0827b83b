"""Helpers for callbacks with dict-shaped outputs."""
from __future__ import annotations

from dash import no_update


def unchanged(group):
    """`group` (a dict/list tree of Outputs) with every leaf no_update: nothing on screen moves."""
    if isinstance(group, dict):
        return {k: unchanged(v) for k, v in group.items()}
    if isinstance(group, (list, tuple)):
        return [unchanged(v) for v in group]
    return no_update
