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


class Unauthorized(CockpitError):
    """No valid credentials for what was asked (a missing, unknown or revoked API token)."""


class BadRequest(CockpitError):
    """Input that cannot be understood: a bad date, an unknown filter value."""


class StoreUnavailable(CockpitError):
    """The store cannot be reached or refused the question; the message is for operators."""
