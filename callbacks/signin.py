"""How a browser gets a session: the sign-in form, one-time links, wall keys, single sign-on.

Sessions are Flask-Login's, in Flask's signed cookie: HttpOnly, SameSite=Lax, Secure when the
request came over HTTPS, and over after COCKPIT_SESSION_IDLE_MINUTES without a request (the
cookie is re-signed on each request and refused past that age). The cookie holds only "u:<id>"
or "w:<id>": the account or wall token is read again after any account changed (the store tells
every server at once: cockpit/access/kept.py), so disabling a user or revoking a wall token takes
effect within milliseconds, on every worker. The cookie is re-signed when it is more than
REFRESH_SECONDS (at most a quarter of the idle time) old, not on every request: a session then
ends between COCKPIT_SESSION_IDLE_MINUTES minus that and COCKPIT_SESSION_IDLE_MINUTES after its
last request.

  /login        the form (GET) and its answer (POST); ?next= is where to go after
  /logout       ends the session
  ?token=…      on any page: a one-time sign-in link (`cockpit user link`, the first admin's)
  /wall?key=…   a wall screen's kiosk URL (`cockpit wall-token create`)
  COCKPIT_AUTH_HEADER from COCKPIT_TRUSTED_PROXIES: the proxy's user, when such an account exists
"""
from __future__ import annotations

import os
import secrets
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import flask
import flask_login
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature

from cockpit.access import users, walltokens
from cockpit.access.kept import KeptAccounts
from cockpit.access.people import Person
from cockpit.config import Settings
from cockpit.errors import Forbidden, Unauthorized
from cockpit.ui.i18n import LANGS

from cockpit.callbacks.context import address, process_context
from cockpit.layouts import signin as signin_page

SECRET_FILE = "session-secret"
REFRESH_SECONDS = 60  # a session's cookie is signed again when older than this (or a quarter of its life)
KEPT = KeptAccounts()  # this process's accounts, read again when any changes


class SessionUser(flask_login.UserMixin):
    def __init__(self, person: Person):
        self.person = person

    def get_id(self) -> str:
        return f"{'w' if self.person.kind == 'wall' else 'u'}:{self.person.user_id}"


class _SessionCookie(SecureCookieSessionInterface):
    """Flask's signed cookie, Secure over HTTPS, and signed again only when it is older than
    REFRESH_SECONDS (or changed): signing it on every request was ~5 % of a worker's time under
    many screens, for an idle timeout counted in minutes."""

    def get_cookie_secure(self, app) -> bool:
        return flask.request.is_secure

    def open_session(self, app, request):
        signer = self.get_signing_serializer(app)
        value = request.cookies.get(self.get_cookie_name(app)) if signer is not None else None
        if not value:
            return super().open_session(app, request)
        try:
            data, signed = signer.loads(value, max_age=int(app.permanent_session_lifetime.total_seconds()),
                                        return_timestamp=True)
        except BadSignature:
            return self.session_class()
        session = self.session_class(data)
        session.signed_at = signed  # type: ignore[attr-defined]
        return session

    def should_set_cookie(self, app, session) -> bool:
        if session.modified or not session.permanent:
            return session.modified
        signed = getattr(session, "signed_at", None)
        every = min(REFRESH_SECONDS, app.permanent_session_lifetime.total_seconds() / 4)
        return signed is None or time.time() - signed.timestamp() >= every  # the signer's clock


def secret_key(s: Settings) -> str:
    """COCKPIT_SECRET_KEY, else one kept in the state folder: every worker and restart signs
    with the same key, so sessions survive a restart."""
    if s.secret_key:
        return s.secret_key
    path = Path(s.state_dir) / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # another worker may win: fine
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def _load(session_id: str) -> SessionUser | None:
    kind, _, raw = (session_id or "").partition(":")
    who = users.person_by_id if kind == "u" else walltokens.person_by_id if kind == "w" else None
    if not raw.isdigit() or who is None:
        return None
    ctx = process_context()

    def read() -> Person | None:
        with ctx.connect() as conn:  # accounts carry no per-unit rows: no scope needed
            return who(conn, int(raw))

    found = KEPT.get(ctx.feed, session_id, read)
    return SessionUser(found) if found else None


def _from_proxy(request: flask.Request) -> SessionUser | None:
    s = process_context().settings
    if not s.auth_header or request.remote_addr not in s.trusted_proxies:
        return None
    name = (request.headers.get(s.auth_header) or "").strip()
    if not name:
        return None
    with process_context().connect() as conn:
        found = users.person_by_name(conn, name)
    return SessionUser(found) if found else None


def current() -> Person | None:
    user = flask_login.current_user
    return user.person if user is not None and user.is_authenticated else None


def _begin(person: Person) -> None:
    flask.session.permanent = True  # lives COCKPIT_SESSION_IDLE_MINUTES past the last request
    flask_login.login_user(SessionUser(person))


def _safe_next(target: str | None, prefix: str) -> str:
    """Only a path of this site (never an address elsewhere). Browsers read a backslash as a
    slash ("/\\evil.example" is "//evil.example") and drop tabs and newlines: none is let through."""
    parts = urlsplit(target or "")
    if parts.scheme or parts.netloc or not (target or "").startswith("/") or target.startswith("//"):
        return prefix
    if "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7f for c in target):
        return prefix
    return target


def _lang() -> str:
    lang = flask.request.values.get("lang")
    return lang if lang in LANGS else process_context().settings.lang


def _without(name: str) -> str:
    """The request's URL with one query parameter taken out (a spent token stays out of history)."""
    args = [(k, v) for k, v in flask.request.args.items(multi=True) if k != name]
    return flask.request.path + (f"?{urlencode(args)}" if args else "")


def redeem_from_url() -> flask.Response | None:
    """A one-time link (?token=) or a wall key (/wall?key=) in the URL: start that session and
    send the browser to the same page without it. None when the URL carries neither."""
    from cockpit.ui.i18n import t

    args = flask.request.args
    if flask.request.method != "GET" or not ({"token", "key"} & set(args)):
        return None
    ctx = process_context()
    with ctx.connect() as conn:
        try:
            if "token" in args:
                person = users.redeem_link(conn, args["token"], address())
            else:
                person = walltokens.person_for(conn, args["key"])
                if person is None:
                    raise Unauthorized("this wall link is not valid or was revoked")
                # a wall's key is used again on every restart of the screen: not one row per load
            conn.commit()
        except Unauthorized:
            conn.commit()  # the failed attempt's audit row
            key = "sign_in_link_bad" if "token" in args else "sign_in_wall_bad"
            return flask.Response(signin_page.page(_lang(), _prefix(), message=t(key, _lang()), form="token" in args),
                                  status=401, mimetype="text/html")
    _begin(person)
    return flask.redirect(_without("token" if "token" in args else "key"))


def _prefix() -> str:
    return flask.current_app.config.get("COCKPIT_PREFIX", "/")


def register(server: flask.Flask, prefix: str = "/") -> None:
    from cockpit.callbacks.context import KEY

    s = server.extensions[KEY].settings
    server.secret_key = secret_key(s)
    server.config.update(
        COCKPIT_PREFIX=prefix,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="cockpit_session",
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=s.session_idle_minutes),
        SESSION_REFRESH_EACH_REQUEST=True,
        REMEMBER_COOKIE_DURATION=timedelta(seconds=0),
    )
    server.session_interface = _SessionCookie()
    manager = flask_login.LoginManager()
    manager.init_app(server)
    manager.user_loader(_load)
    manager.request_loader(_from_proxy)
    base = prefix.rstrip("/")

    @server.route(f"{base}/login", methods=["GET", "POST"])
    def login():
        from cockpit.ui.i18n import t

        lang = _lang()
        nxt = _safe_next(flask.request.values.get("next"), prefix)
        idle = s.session_idle_minutes
        if flask.request.method == "GET":
            return signin_page.page(lang, prefix, nxt, idle_minutes=idle)
        form = flask.request.form
        with process_context().connect() as conn:
            try:
                person = users.verify(conn, form.get("name", ""), form.get("password", ""), address())
                conn.commit()
            except (Unauthorized, Forbidden) as exc:
                conn.commit()  # the attempt is on the record, and counts against the account
                key = "sign_in_failed" if isinstance(exc, Unauthorized) else "sign_in_locked"
                return flask.Response(signin_page.page(lang, prefix, nxt, t(key, lang), idle_minutes=idle),
                                      status=401 if isinstance(exc, Unauthorized) else 429, mimetype="text/html")
        _begin(person)
        return flask.redirect(nxt)

    @server.route(f"{base}/logout")
    def logout():
        from cockpit.ui.i18n import t

        who = current()
        if who is not None and who.kind == "user":
            process_context().for_person(who, address()).audit("sign_out")
        flask_login.logout_user()
        flask.session.clear()
        return signin_page.page(_lang(), prefix, prefix, t("signed_out", _lang()), idle_minutes=s.session_idle_minutes)
