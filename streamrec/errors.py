"""Errors that end a command with one clear line instead of a traceback."""


class UserFacingError(Exception):
    """Something the operator can fix: the message says what, in one line."""
