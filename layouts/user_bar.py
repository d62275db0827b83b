"""Who is signed in, in which role, over which part of the city, and the way out: on every
page but the kiosk wall."""
from __future__ import annotations

from dash import html

from cockpit.access.people import Person
from cockpit.ui.i18n import t


def user_bar(person: Person, scope_name: str | None, lang: str, prefix: str = "/") -> html.Div:
    scope = t("scope_city", lang) if person.city_wide else (scope_name or person.scope_code)
    return html.Div(className="user-bar", id="user-bar", children=[
        html.Span(person.name, className="user-name", id="user-name"),
        html.Span(t(f"role_{person.role}", lang), className="user-role", id="user-role"),
        html.Span(f"{t('scope_label', lang)}{'：' if lang == 'zh' else ': '}{scope}", className="user-scope", id="user-scope"),
        html.A(t("sign_out", lang), href=f"{prefix}logout", id="sign-out"),
    ])
