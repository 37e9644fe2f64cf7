"""Workloads from network files and ONNX models: the loader dispatch, the CSV reader and writer.

A network file is a CSV (format in ``data/networks/README.md``): an optional
leading block of ``#`` comment lines, then the header ::

    name,kind,ifmap_h,ifmap_w,pad,channels,filter_h,filter_w,filters,ofmap_h,ofmap_w,stride,groups,batch

optionally followed by ``inputs`` (the network's graph,
:mod:`~deepopt_mip.formulation.graph`), and one row per layer.
:func:`load_network` reads a built-in, a network file or (through
:mod:`~deepopt_mip.formulation.onnx_import`) an ONNX model; all three give a
:class:`~deepopt_mip.formulation.workload.Network`. The five built-in workloads of the DeepOpt paper are
package data of ``deepopt_mip.data`` (read with :mod:`importlib.resources`,
so they load from an installed package, whatever the working directory).

Every problem with a file raises :class:`InputError` with one line naming the
file, the data row (1-based, with the line number in the file and the layer
name when known) and the field.
"""

from __future__ import annotations

import csv
import math
import os
import tempfile
from collections import OrderedDict
from dataclasses import fields, replace
from importlib import resources
from pathlib import Path

from deepopt_mip.formulation.errors import InputError, read_input_text
from deepopt_mip.formulation.graph import RESERVED_CHARACTERS, GraphError, derive_edges, format_inputs, parse_inputs
from deepopt_mip.formulation.layers import LAYER_KINDS, Layer
from deepopt_mip.formulation.onnx_import import ONNX_SUFFIXES, import_onnx
from deepopt_mip.formulation.workload import Network

__all__ = [
    "BUILTIN_NETWORKS",
    "NETWORK_ALIASES",
    "NETWORK_COLUMNS",
    "OPTIONAL_COLUMNS",
    "Network",
    "builtin_network_names",
    "is_onnx_path",
    "load_network",
    "parse_network_csv",
    "with_fc_batch",
    "write_network_csv",
]

NETWORK_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Layer))
"""The required columns of a network file (the :class:`Layer` fields), in the order
:func:`write_network_csv` writes them:
``name,kind,ifmap_h,ifmap_w,pad,channels,filter_h,filter_w,filters,ofmap_h,ofmap_w,stride,groups,batch``."""

OPTIONAL_COLUMNS: tuple[str, ...] = ("inputs",)
"""Columns a network file may add: ``inputs``, the layers it reads and what lies between
(:mod:`~deepopt_mip.formulation.graph`). Written last when the network has a graph."""

_INT_COLUMNS = tuple(c for c in NETWORK_COLUMNS if c not in ("name", "kind", "pad"))

BUILTIN_NETWORKS: "OrderedDict[str, str]" = OrderedDict([
    ("alexnet", "alexnet.csv"),
    ("vgg-16", "vgg-16.csv"),
    ("squeezenet-v1.1", "squeezenet-v1.1.csv"),
    ("googlenet-v1", "googlenet-v1.csv"),
    ("resnet-50", "resnet-50.csv"),
])
"""Built-in workloads, name -> file in ``deepopt_mip.data/networks``, in the
reference's order (its ``Network_flag`` 1..5)."""

NETWORK_ALIASES: dict[str, str] = {
    "vgg16": "vgg-16",
    "squeezenet": "squeezenet-v1.1",
    "googlenet": "googlenet-v1",
    "resnet50": "resnet-50",
    # the reference's Network_flag numbers
    **{str(i): name for i, name in enumerate(BUILTIN_NETWORKS, start=1)},
}
"""Other names accepted by :func:`load_network` for the built-ins."""

_DATA_PACKAGE = "deepopt_mip.data"
_NETWORK_DIR = "networks"


def builtin_network_names() -> list[str]:
    """Names of the built-in workloads, in the reference's order."""
    return list(BUILTIN_NETWORKS)


def _builtin_key(name: str) -> str | None:
    key = name.strip().lower()
    if key in BUILTIN_NETWORKS:
        return key
    return NETWORK_ALIASES.get(key)


def is_onnx_path(name_or_path: str | os.PathLike) -> bool:
    """Whether :func:`load_network` reads this path as an ONNX model (``.onnx``, ``.onnx.gz``)."""
    return str(name_or_path).lower().endswith(ONNX_SUFFIXES)


def _looks_like_a_name(text: str) -> bool:
    return not any(sep in text for sep in ("/", "\\")) and not text.lower().endswith((".csv", *ONNX_SUFFIXES))


def with_fc_batch(network: Network, batch: int | None) -> Network:
    """``network`` with every FC layer's batch set to ``batch`` (unchanged for ``None``)."""
    if batch is None:
        return network
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise InputError(f"batch must be a positive integer, got {batch!r}")
    layers = tuple(replace(layer, batch=batch) if layer.kind == "fc" else layer for layer in network.layers)
    return replace(network, layers=layers)


def load_network(name_or_path: str | os.PathLike, batch: int | None = None) -> Network:
    """A built-in workload by name (or alias, or reference number "1".."5"), or a user file.

    A :class:`str` is looked up among the built-ins first; a :class:`~os.PathLike`
    is always a path. A user file's network is named after the file's stem; a
    file ending in ``.onnx`` or ``.onnx.gz`` is imported by :mod:`~deepopt_mip.formulation.onnx_import`.
    ``batch`` sets the batch of the FC layers (for ONNX it overrides the
    input's first dimension).
    """
    network = _load_network(name_or_path, batch)
    return with_fc_batch(network, batch)


def _load_network(name_or_path: str | os.PathLike, batch: int | None) -> Network:
    if isinstance(name_or_path, str):
        key = _builtin_key(name_or_path)
        if key is not None:
            fname = BUILTIN_NETWORKS[key]
            text = (resources.files(_DATA_PACKAGE).joinpath(_NETWORK_DIR).joinpath(fname)
                    .read_text(encoding="utf-8"))
            return parse_network_csv(text, name=key, source=f"{_DATA_PACKAGE}:{_NETWORK_DIR}/{fname}")
        path = Path(name_or_path)
        if not path.exists() and _looks_like_a_name(name_or_path):
            aliases = ", ".join(a for a in NETWORK_ALIASES if not a.isdigit())
            raise InputError(
                f"unknown network {name_or_path!r}: not a file and not a built-in "
                f"(built-ins: {', '.join(BUILTIN_NETWORKS)}; aliases {aliases}; "
                f"or 1-{len(BUILTIN_NETWORKS)} in that order)")
    elif isinstance(name_or_path, os.PathLike):
        path = Path(name_or_path)
    else:
        raise InputError(f"network must be a name or a path, got {type(name_or_path).__name__}")

    if is_onnx_path(path):
        return import_onnx(path, batch=batch).network
    text = read_input_text(path, "network file")
    return parse_network_csv(text, name=path.stem, source=str(path))


def _is_skippable(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def parse_network_csv(text: str, name: str, source: str) -> Network:
    """Parse the text of a network file (``source`` names it in error messages)."""
    label = source or name
    lines = text.removeprefix("\ufeff").splitlines()
    # (line number in the file, text) of the lines that are neither blank nor comments
    content = [(i, line) for i, line in enumerate(lines, start=1) if not _is_skippable(line)]
    if not content:
        raise InputError(f"{label}: empty network file (no header, no layers)")

    header_lineno, header_line = content[0]
    header = [h.strip() for h in next(csv.reader([header_line]))]
    where = f"{label} line {header_lineno} (header)"
    seen: set[str] = set()
    for column in header:
        if column == "":
            raise InputError(f"{where}: empty column name")
        if column in seen:
            raise InputError(f"{where}: column {column!r} appears twice")
        seen.add(column)
    missing = [c for c in NETWORK_COLUMNS if c not in seen]
    if missing:
        raise InputError(f"{where}: missing column(s) {', '.join(missing)} "
                         f"(expected {','.join(NETWORK_COLUMNS)})")
    extra = [c for c in header if c not in NETWORK_COLUMNS + OPTIONAL_COLUMNS]
    if extra:
        raise InputError(f"{where}: unknown column(s) {', '.join(extra)} "
                         f"(expected {','.join(NETWORK_COLUMNS)}, optionally {','.join(OPTIONAL_COLUMNS)})")
    has_graph = "inputs" in seen

    data = content[1:]
    if not data:
        raise InputError(f"{label}: no layers after the header (line {header_lineno})")

    layers: list[Layer] = []
    inputs: list = []
    wheres: list[str] = []
    first_row_of: dict[str, int] = {}
    for row_number, (lineno, line) in enumerate(data, start=1):
        cells = [c.strip() for c in next(csv.reader([line]))]
        layer_name = cells[header.index("name")] if len(cells) > header.index("name") else ""
        where = f"{label} data row {row_number} (line {lineno}"
        where += f", layer {_one_line(layer_name)!r})" if layer_name else ")"
        if len(cells) != len(header):
            raise InputError(f"{where}: {len(cells)} fields, the header has {len(header)}")
        values = dict(zip(header, cells))
        layer = _parse_row(values, where)
        if layer.name in first_row_of:
            raise InputError(f"{where}: field 'name': layer name {layer.name!r} already used "
                             f"by data row {first_row_of[layer.name]}")
        first_row_of[layer.name] = row_number
        layers.append(layer)
        wheres.append(where)
        if has_graph:
            reserved = [ch for ch in RESERVED_CHARACTERS if ch in layer.name]
            if reserved:
                raise InputError(f"{where}: field 'name': {' '.join(reserved)} may not appear in a layer name "
                                 "when the file has an inputs column")
            try:
                inputs.append(parse_inputs(values["inputs"]))
            except ValueError as exc:
                raise InputError(f"{where}: field 'inputs': {_one_line(exc)}") from None
    if not has_graph:
        return Network(name=name, layers=tuple(layers), source=source)
    try:
        derive_edges(layers, inputs)
    except GraphError as exc:
        raise InputError(f"{wheres[exc.index]}: field 'inputs': {_one_line(exc)}") from None
    return Network(name=name, layers=tuple(layers), source=source, inputs=tuple(inputs))


def _parse_row(values: dict[str, str], where: str) -> Layer:
    kwargs: dict[str, object] = {}
    name = values["name"]
    if not name:
        raise InputError(f"{where}: field 'name' is empty")
    if any(ch in name for ch in "\r\n"):
        raise InputError(f"{where}: field 'name' contains a line break")
    kwargs["name"] = name
    kind = values["kind"].lower()
    if kind not in LAYER_KINDS:
        raise InputError(f"{where}: field 'kind': {values['kind']!r} is not one of "
                         f"{', '.join(LAYER_KINDS)}")
    kwargs["kind"] = kind
    for column in _INT_COLUMNS:
        kwargs[column] = _parse_positive_int(values[column], column, where)
    kwargs["pad"] = _parse_pad(values["pad"], where)
    try:
        return Layer(**kwargs)
    except InputError as exc:
        message = str(exc)
        prefix = f"layer {kwargs['name']!r}: "
        if message.startswith(prefix):
            message = message[len(prefix):]
        raise InputError(f"{where}: {_one_line(message)}") from None


def _parse_number(text: str, column: str, where: str) -> float:
    if text == "":
        raise InputError(f"{where}: field {column!r} is empty")
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{where}: field {column!r}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"{where}: field {column!r}: {text!r} is not a finite number")
    return value


def _parse_positive_int(text: str, column: str, where: str) -> int:
    try:
        result = int(text)  # the common case, exact for any size
    except ValueError:
        value = _parse_number(text, column, where)
        if not value.is_integer():
            raise InputError(f"{where}: field {column!r}: {text!r} is not an integer") from None
        result = int(value)
    if result < 1:
        raise InputError(f"{where}: field {column!r}: {text!r} must be a positive integer")
    return result


def _parse_pad(text: str, where: str) -> float | int:
    value = _parse_number(text, "pad", where)
    if value < 0:
        raise InputError(f"{where}: field 'pad': {text!r} is negative")
    if not (2 * value).is_integer():
        raise InputError(f"{where}: field 'pad': {text!r} is not a multiple of 0.5")
    return int(value) if value.is_integer() else value


def _format_cell(value: object) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def write_network_csv(network: Network, path: str | os.PathLike, comments: list[str] | tuple[str, ...] = ()) -> Path:
    """Write ``network`` in the network-file format, atomically; return the path.

    A network with a graph gets the ``inputs`` column, read back equal.

    ``comments`` become the leading ``#`` lines (by default one naming the
    network and its source). The file is written to a temporary file in the
    same folder and renamed over ``path``, so it is never half-written.
    """
    path = Path(path)
    if not comments:
        comments = [f"network {network.name}" + (f", from {network.source}" if network.source else "")]
    buffer: list[str] = [f"# {_one_line(c)}".rstrip() + "\n" for c in comments]
    rows: list[list[str]] = [list(NETWORK_COLUMNS)]
    rows += [[_format_cell(getattr(layer, c)) for c in NETWORK_COLUMNS] for layer in network.layers]
    if network.inputs is not None:
        rows[0].append("inputs")
        for row, entry in zip(rows[1:], network.inputs):
            row.append(format_inputs(entry))

    class _Sink:
        def write(self, s: str) -> None:
            buffer.append(s)

    writer = csv.writer(_Sink(), lineterminator="\n")
    for row in rows:
        if row[0].lstrip().startswith("#"):  # unquoted, the row would read back as a comment line
            buffer.append('"' + row[0].replace('"', '""') + '",')
            writer.writerow(row[1:])
        else:
            writer.writerow(row)
    _write_atomically(path, "".join(buffer))
    return path


def _write_atomically(path: Path, text: str) -> None:
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)  # mkstemp makes it 0600
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
