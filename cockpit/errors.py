"""The errors a user may see. Each is one line; the CLI prints ``cockpit: <message>`` and exits 2.

The web layer maps them to what a browser is told in one place (cockpit.callbacks.errors):
NotFound and BadRequest carry the user's own input back; StoreUnavailable's message names the
store (host, port, database, PostgreSQL's words) and goes to the log only.
"""


class CockpitError(Exception):
    """A problem the user can fix (bad URL, stopped server, missing PostGIS, bad input).

    The CLI prints ``cockpit: <message>`` and exits non-zero; no traceback.
    """


class NotFound(CockpitError):
    """Something asked for by name or code does not exist (or is not the asker's to see)."""


class UnknownUnit(NotFound):
    """No unit with this code, or none the asker may see: the same answer for both."""

    def __init__(self, code: str):
        super().__init__(f"no unit with code {code!r}")
        self.code = code


class Unauthorized(CockpitError):
    """No valid credentials for what was asked (a missing, unknown or revoked API token)."""


class Forbidden(CockpitError):
    """Valid credentials that do not allow what was asked (a read token sending events)."""


class BadRequest(CockpitError):
    """Input that cannot be understood: a bad date, an unknown filter value."""


class TooLarge(BadRequest):
    """A request bigger than this server takes in one go (too many bytes or items)."""


class Invalid(CockpitError):
    """Input understood but not acceptable, item by item: `errors` lists each bad field as
    {"index", "field", "message"}; nothing was stored."""

    def __init__(self, message: str, errors: list[dict]):
        super().__init__(message)
        self.errors = errors


class NotConfigured(CockpitError):
    """A feature this server was not set up for (writing events without a writer role)."""


class StoreUnavailable(CockpitError):
    """The store cannot be reached or refused the question; the message is for operators."""
