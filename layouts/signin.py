"""The sign-in page: a plain HTML form (no Dash: it must work before anything else loads)."""
from __future__ import annotations

from jinja2 import Environment

from cockpit.ui.i18n import LANGS, t

_PAGE = Environment(autoescape=True).from_string("""<!DOCTYPE html>
<html lang="{{ 'zh-CN' if lang == 'zh' else 'en' }}">
<head><meta charset="utf-8"><title>{{ title }}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{{ prefix }}assets/cockpit_signin.css"></head>
<body class="signin-page">
<main class="signin-box">
  <h1>{{ title }}</h1>
  {% if message %}<p class="signin-message" id="signin-message" role="alert">{{ message }}</p>{% endif %}
  {% if form %}
  <form method="post" action="{{ prefix }}login">
    <input type="hidden" name="next" value="{{ next }}">
    <input type="hidden" name="lang" value="{{ lang }}">
    <label>{{ name_label }}<input id="signin-name" name="name" autocomplete="username" required autofocus></label>
    <label>{{ password_label }}<input id="signin-password" name="password" type="password"
           autocomplete="current-password" required></label>
    <button id="signin-submit" type="submit">{{ submit }}</button>
  </form>
  <p class="signin-note">{{ note }}</p>
  {% endif %}
  <p class="signin-lang"><a href="{{ prefix }}login?lang={{ other }}&next={{ next|urlencode }}">{{ other_label }}</a></p>
</main>
</body></html>""")


def page(lang: str, prefix: str = "/", next_path: str = "/", message: str | None = None, form: bool = True,
         idle_minutes: int = 30) -> str:
    lang = lang if lang in LANGS else "zh"
    other = "en" if lang == "zh" else "zh"
    return _PAGE.render(lang=lang, prefix=prefix, next=next_path, message=message, form=form,
                        title=t("title", lang), name_label=t("sign_in_name", lang),
                        password_label=t("sign_in_password", lang), submit=t("sign_in", lang),
                        note=t("session_note", lang).format(n=idle_minutes), other=other, other_label=t("language", lang))
