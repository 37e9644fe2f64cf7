"""Writing results: checked before the work, written atomically (temp file, then rename) and deterministically.

Every command checks each output path with :func:`check_output_file` or
:func:`check_output_dir` before it loads or solves anything, so a bad path
costs one error line, not a result. A write that still fails (disk full, a
folder removed meanwhile) raises :class:`OutputError`: one line naming the
file. Files get the permissions of an ordinary write, ``0o666`` less the
umask.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from deepopt_mip.formulation.errors import InputError
from deepopt_mip.solvers.solution import json_safe

if TYPE_CHECKING:
    import pandas as pd

FIGURE_FORMATS = ("png", "pdf", "svg")
"""Figure formats save_figure writes, named by the file's extension."""
FIGURE_METADATA = {"png": {"Software": None}, "pdf": {"Creator": None, "Producer": None, "CreationDate": None},
                   "svg": {"Creator": None, "Date": None}}
"""Metadata that would differ between runs or versions (dates, versions), dropped so figures are byte-stable."""
SVG_HASH_SALT = "deepopt-mip"
"""Fixed salt of the SVG element ids (matplotlib otherwise draws them at random)."""


class OutputError(InputError):
    """An output file or folder cannot be written (one line naming it; the CLI exits with status 2)."""


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def _nearest_existing(path: Path) -> Path:
    """``path`` itself or its closest ancestor that exists (``.`` for a relative path with none)."""
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path(".")


def _check_creatable(path: Path, option: str, given) -> None:
    """Raise OutputError unless the folders above ``path`` exist or can be made, and the nearest one is writable."""
    ancestor = _nearest_existing(path.parent if str(path.parent) else Path("."))
    if not ancestor.is_dir():
        raise OutputError(f"{option} {given}: cannot be created, {ancestor} is not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {given}: cannot be written, folder {ancestor} is not writable")


def check_output_file(path: str | os.PathLike, option: str) -> None:
    """Raise OutputError unless ``path`` can be written as a file (an existing file is replaced).

    Refused: an existing folder, a path below a regular file, a folder that is
    not writable. Nothing is created.
    """
    target = Path(path)
    if str(path) == "" or target.name in ("", ".", ".."):
        raise OutputError(f"{option} {str(path)!r}: not a file name")
    if target.is_dir():
        raise OutputError(f"{option} {path}: is a folder, not a file")
    _check_creatable(target, option, path)


def check_output_dir(path: str | os.PathLike, option: str) -> None:
    """Raise OutputError unless ``path`` is a writable folder or can be created as one. Nothing is created."""
    target = Path(path)
    if str(path) == "":
        raise OutputError(f"{option} '': not a folder name")
    if os.path.lexists(target) and not target.is_dir():
        raise OutputError(f"{option} {path}: exists and is not a folder")
    if target.is_dir():
        if not os.access(target, os.W_OK | os.X_OK):
            raise OutputError(f"{option} {path}: folder is not writable")
        return
    _check_creatable(target, option, path)


def figure_format(path: str | os.PathLike, option: str = "figure") -> str:
    """The format a figure file's extension names (png, pdf, svg), or an OutputError line."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FIGURE_FORMATS:
        raise OutputError(f"{option} {path}: unknown figure format {('.' + suffix) if suffix else '(no extension)'}; "
                          f"use a file ending in {', '.join('.' + f for f in FIGURE_FORMATS)}")
    return suffix


def check_figure_file(path: str | os.PathLike, option: str) -> str:
    """:func:`figure_format` and :func:`check_output_file` together; returns the format."""
    check_output_file(path, option)
    return figure_format(path, option)


def file_mode() -> int:
    """The permission bits of an ordinary new file: 0o666 less the process's umask."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def _atomic_target(path: Path, suffix: str = ""):
    """A temporary file beside ``path`` (yielded as (fd, name)); renamed over ``path`` if the block succeeds.

    Any OSError becomes one OutputError naming ``path``; on any failure the
    temporary file is removed.
    """
    directory = path.parent if str(path.parent) else Path(".")
    ancestor = _nearest_existing(directory)
    if not ancestor.is_dir():
        raise OutputError(f"cannot write {path}: {ancestor} is not a folder")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=directory)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {_reason(exc)}") from None
    try:
        yield fd, tmp
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {_reason(exc)}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers never see a partial file (mode 0o666 less the umask)."""
    path = Path(path)
    with _atomic_target(path) as (fd, _):
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)


def write_json(path: str | Path, payload: dict) -> None:
    atomic_write_text(path, json.dumps(json_safe(payload), indent=2, sort_keys=False) + "\n")


def write_csv(path: str | Path, frame: pd.DataFrame) -> None:
    atomic_write_text(path, frame.to_csv(index=False, lineterminator="\n"))


def save_figure(fig, path: str | Path, **savefig_kwargs) -> Path:
    """Save a matplotlib figure atomically in the format its extension names (png, pdf or svg), then
    close it (whether or not the save succeeded), so callers need not.

    Dates and version strings are left out of the file's metadata and SVG ids
    are drawn from a fixed salt, so the same figure gives the same bytes.
    """
    import matplotlib
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        fmt = figure_format(path)
        with _atomic_target(path, suffix=f".{fmt}") as (fd, tmp):
            os.close(fd)
            with matplotlib.rc_context({"svg.hashsalt": SVG_HASH_SALT}):
                fig.savefig(tmp, format=fmt, metadata=FIGURE_METADATA[fmt], **savefig_kwargs)
    finally:
        plt.close(fig)
    return path
