"""User-facing errors.

Every error that a user can fix (a bad argument, a missing file, an unknown
language code, an unreachable model) is a :class:`FlareError`. The CLI prints
these as one line instead of a traceback. ``FlareError`` subclasses
``ValueError`` so that callers of the Python API can catch the familiar type.
"""


class FlareError(ValueError):
    """A problem the user can fix; the message names the thing to fix."""


class ModelUnavailableError(FlareError):
    """A model id or directory could not be loaded (offline, typo, missing files)."""
