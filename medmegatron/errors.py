"""Errors a user can act on.

Raised for bad input (config, paths, layouts). The CLI prints the message alone, without a
traceback from inside megatron-core, so each message must name the field or file and the fix.
"""


class UserFacingError(Exception):
    """Bad input the user can fix; the message says what and how."""


class ConfigError(UserFacingError):
    """A config field has a value that cannot work; the message names the field and the fix."""
