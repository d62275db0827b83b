"""The one exception type a user may see: its message is the one line the CLI prints."""


class CockpitError(Exception):
    """A problem the user can fix (bad URL, stopped server, missing PostGIS, bad input).

    The CLI prints ``cockpit: <message>`` and exits non-zero; no traceback.
    """
