"""The one exception type for bad user input.

Loaders raise :class:`InputError` with a message that names the file, the row
or key and the problem; the CLI prints that single line and exits non-zero.
"""

from pathlib import Path


class InputError(ValueError):
    """A user-supplied file, option or value is malformed or out of range."""


def _checked_file(path: Path, what: str, label: str, hint: str) -> None:
    if not path.exists():
        raise InputError(f"{label}: {what} not found{hint}")
    if not path.is_file():
        raise InputError(f"{label}: is not a file")


def read_input_bytes(path: Path, what: str, label: str | None = None, hint: str = "") -> bytes:
    """The bytes of a user's input file, or one InputError line: missing, not a file, unreadable.

    ``what`` names the kind of file in the not-found message (e.g. "ONNX file");
    ``label`` is how the file is named in messages (default: its path);
    ``hint`` follows the not-found message.
    """
    label = str(path) if label is None else label
    _checked_file(path, what, label, hint)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{label}: cannot be read ({exc.strerror})") from None


GZIP_MAGIC = b"\x1f\x8b"
"""The first two bytes of a gzip stream."""


def read_input_text(path: Path, what: str, label: str | None = None) -> str:
    """As :func:`read_input_bytes`, decoded as UTF-8 text (one InputError line if it is not).

    A leading byte-order mark (``EF BB BF``, as Excel writes "CSV UTF-8") is
    dropped; a gzip-compressed file is named as such. Line endings become
    ``\n`` (as ``open`` in text mode does).
    """
    label = str(path) if label is None else label
    data = read_input_bytes(path, what, label)
    if data.startswith(GZIP_MAGIC):
        raise InputError(f"{label}: gzip-compressed, not a text file: decompress it first")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{label}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")
