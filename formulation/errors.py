"""The one exception type for bad user input.

Loaders raise :class:`InputError` with a message that names the file, the row
or key and the problem; the CLI prints that single line and exits non-zero.
"""


class InputError(ValueError):
    """A user-supplied file, option or value is malformed or out of range."""
