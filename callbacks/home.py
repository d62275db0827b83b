"""What the first screen does: read the city's KPIs and districts from the store."""
from __future__ import annotations

from dash import Dash, Input, Output, State, no_update

from cockpit.errors import CockpitError
from cockpit.overview import city_overview

from cockpit.layouts.home import KPI_KEYS

OUTPUT_IDS = [f"kpi-{k.replace('_', '-')}" for k in KPI_KEYS]


def register(app: Dash) -> None:
    @app.callback(
        [Output(i, "children") for i in OUTPUT_IDS]
        + [Output(f"{i}-detail", "children") for i in OUTPUT_IDS]
        + [Output("scope", "children"), Output("districts", "data"), Output("store-status", "children")],
        Input("url", "pathname"),
        State("lang", "data"),
    )
    def load_city(_pathname, lang):
        try:
            view = city_overview(lang)
        except CockpitError as exc:
            return [no_update] * (2 * len(OUTPUT_IDS) + 2) + [str(exc)]
        return view["values"] + view["details"] + [view["scope"], view["districts"], ""]
