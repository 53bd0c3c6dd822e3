"""The conversion error type (its own module so it imports the same way however the package is found)."""

from medmegatron.errors import UserFacingError


class ConversionError(UserFacingError):
    """A checkpoint or config cannot be converted; the message names the file and the fix."""
