"""Technology: per-operation energies and unit areas, read from a YAML file.

The built-in file ``deepopt_mip.data/technology/deepopt-65nm.yaml`` holds the
DeepOpt reference's 65 nm parameters, each with its source and derivation.
A technology file is a YAML mapping with exactly these keys (units in the
names; joules, square micrometres, kB = 1024 bytes)::

    name: deepopt-65nm              # required, text
    description: ...                # optional, text
    add_j_per_bit: 5.57e-15         # energy of one bit of an integer adder
    mul8_j: 3.57e-13                # one 8-bit multiply
    rf_j_per_bit: 9.59e-14          # register file to ALU, per bit
    dram_j_per_bit: 1.92e-11        # DRAM to SRAM, per bit
    sram_um2_per_byte: 32.5         # SRAM area per byte
    pe_um2: 7406                    # area of one processing element
    sram_sizes_kb: [4, 6, 8, ...]   # SRAM sizes, strictly increasing
    sram_j_per_bit: [1.1e-13, ...]  # SRAM-to-RF energy per bit at those sizes

The SRAM per-bit energy is piecewise linear in the size between the table's
points (exact at them); sizes outside the table are rejected. The table need
not be monotone: CACTI's per-bit energy falls by up to 22 % between
neighbouring sizes where it changes the array organisation, and nothing in
the package assumes that a larger SRAM costs more per bit.

Built-in technologies (:data:`BUILTIN_TECHNOLOGIES`): ``deepopt-65nm`` (the
default; the reference's CACTI table kept at 2^k and 3*2^k kB and
interpolated between) and ``deepopt-65nm-cacti1kb`` (the same technology
with the reference's full table, every whole kB from 4 to 512 kB, so each
such size is priced exactly as the reference prices it).

Only two energy equations live here: the SRAM interpolation and the quadratic
scaling of the multiply with its bit width. The layer energy is in
:mod:`deepopt_mip.formulation.costmodel.energy`.
"""

from __future__ import annotations

import hashlib
import math
import os
import reprlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from deepopt_mip.formulation.errors import InputError, read_input_bytes

__all__ = [
    "BUILTIN_TECHNOLOGIES",
    "DEFAULT_TECHNOLOGY",
    "FINER_TECHNOLOGY",
    "Technology",
    "interpolation_note",
    "load_technology",
    "parse_technology_yaml",
]

BUILTIN_TECHNOLOGIES: dict[str, str] = {"deepopt-65nm": "deepopt-65nm.yaml",
                                         "deepopt-65nm-cacti1kb": "deepopt-65nm-cacti1kb.yaml"}
"""Built-in technology files, name -> file in ``deepopt_mip.data/technology``."""

DEFAULT_TECHNOLOGY = "deepopt-65nm"

FINER_TECHNOLOGY: dict[str, str] = {"deepopt-65nm": "deepopt-65nm-cacti1kb"}
"""Built-in technology -> the built-in one that prices more SRAM sizes from its table (same other numbers)."""

_DATA_PACKAGE = "deepopt_mip.data"
_TECH_DIR = "technology"

_SCALAR_KEYS = ("add_j_per_bit", "mul8_j", "rf_j_per_bit", "dram_j_per_bit",
                "sram_um2_per_byte", "pe_um2")
_TABLE_KEYS = ("sram_sizes_kb", "sram_j_per_bit")
_REQUIRED_KEYS = ("name", *_SCALAR_KEYS, *_TABLE_KEYS)
_OPTIONAL_KEYS = ("description",)


@dataclass(frozen=True)
class Technology:
    """Per-operation energies (J) and unit areas (um^2) of one technology.

    ``source_path`` and ``sha256`` record where the values came from (a run
    stores them beside its output); ``source_path`` is
    ``deepopt_mip.data:technology/<file>`` for a built-in file.
    """

    name: str
    add_j_per_bit: float
    mul8_j: float
    rf_j_per_bit: float
    dram_j_per_bit: float
    sram_um2_per_byte: float
    pe_um2: float
    sram_sizes_kb: tuple[float, ...]
    sram_j_per_bit: tuple[float, ...]
    description: str = ""
    source_path: str = ""
    sha256: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "sram_sizes_kb", tuple(float(v) for v in self.sram_sizes_kb))
        object.__setattr__(self, "sram_j_per_bit", tuple(float(v) for v in self.sram_j_per_bit))
        problems = _value_problems({k: getattr(self, k) for k in (*_SCALAR_KEYS, *_TABLE_KEYS)})
        if problems:
            key, message = problems[0]
            raise InputError(f"technology {self.name!r}: key {key!r}: {message}")

    @property
    def sram_range_kb(self) -> tuple[float, float]:
        """Smallest and largest SRAM size the energy table covers, in kB."""
        return self.sram_sizes_kb[0], self.sram_sizes_kb[-1]

    def sram_energy_j_per_bit(self, size_kb):
        """SRAM-to-RF access energy per bit (J) of an SRAM of ``size_kb`` kB.

        Piecewise linear between the table's points (exact at them); any
        array shape. A size outside the table's range raises :class:`InputError`.
        """
        sizes = np.asarray(size_kb, dtype=float)
        lo, hi = self.sram_range_kb
        if sizes.size:
            bad = ~((sizes >= lo) & (sizes <= hi))  # also catches NaN
            if bad.any():
                first = sizes[bad].flat[0]
                more = f" (and {int(bad.sum()) - 1} more)" if bad.sum() > 1 else ""
                raise InputError(
                    f"technology {self.name!r}: SRAM size {first:g} kB{more} is outside the "
                    f"range of its energy table, {lo:g}..{hi:g} kB")
        return np.interp(sizes, self.sram_sizes_kb, self.sram_j_per_bit)

    def interpolated_sizes_kb(self, sizes_kb) -> tuple[float, ...]:
        """The distinct sizes (kB, ascending) among ``sizes_kb`` that lie strictly between two points
        of the energy table, i.e. that :meth:`sram_energy_j_per_bit` interpolates."""
        lo, hi = self.sram_range_kb
        at_points = set(self.sram_sizes_kb)
        return tuple(sorted(s for s in {float(v) for v in sizes_kb} - at_points if lo < s < hi))

    def mul_j(self, bits):
        """Energy (J) of one ``bits``-bit multiply: mul8_j * (bits/8)^2 (quadratic scaling)."""
        if np.isscalar(bits):
            return self.mul8_j * (bits / 8) ** 2
        return self.mul8_j * (np.asarray(bits, dtype=float) / 8) ** 2


def interpolation_note(tech: Technology, sizes_kb, where: str) -> str | None:
    """One line saying which of ``sizes_kb`` (the SRAM sizes of ``where``, e.g. a space) ``tech``
    interpolates, naming the finer built-in technology if there is one; ``None`` if none is."""
    between = tech.interpolated_sizes_kb(sizes_kb)
    if not between:
        return None
    shown = ", ".join(f"{s:g}" for s in between[:8]) + (f" and {len(between) - 8} more" if len(between) > 8 else "")
    plural = "s" if len(between) > 1 else ""
    note = (f"SRAM size{plural} {shown} kB of {where} lie{'' if plural else 's'} between the points of technology "
            f"{tech.name}'s energy table and {'are' if plural else 'is'} priced by linear interpolation")
    finer = FINER_TECHNOLOGY.get(tech.name)
    if finer is not None:
        note += f"; --tech {finer} prices every whole kB from its full table"
    return note


def load_technology(path: str | os.PathLike | None = None) -> Technology:
    """Read a technology file; ``None`` gives the default built-in technology, a name of
    :data:`BUILTIN_TECHNOLOGIES` that built-in file (a file of that name in the working folder wins)."""
    if path is None:
        path = DEFAULT_TECHNOLOGY
    if isinstance(path, str) and path.strip() in BUILTIN_TECHNOLOGIES and not Path(path).exists():
        fname = BUILTIN_TECHNOLOGIES[path.strip()]
        data = (resources.files(_DATA_PACKAGE).joinpath(_TECH_DIR).joinpath(fname).read_bytes())
        return parse_technology_yaml(data, source=f"{_DATA_PACKAGE}:{_TECH_DIR}/{fname}")
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"technology must be a path, got {type(path).__name__}")
    path = Path(path)
    data = read_input_bytes(path, "technology file", hint=f" (built-in: {', '.join(BUILTIN_TECHNOLOGIES)})")
    return parse_technology_yaml(data, source=str(path))


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects a key given twice in one mapping."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, f"a key cannot be a {type(key).__name__}", key_node.start_mark) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlevel = 2


def _short(value: object) -> str:
    """A bounded one-line repr: a YAML alias bomb's value must not be expanded into a message."""
    return _one_line(_SHORT.repr(value))


def parse_technology_yaml(data: bytes | str, source: str) -> Technology:
    """Parse the bytes of a technology file (``source`` names it in messages and in the result)."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    digest = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{source}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    try:
        doc = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise InputError(f"{source}: not a technology file (YAML nested too deeply)") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise InputError(f"{source}: not valid YAML: {_short(str(exc))}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"{source}: not valid YAML{where}: {_one_line(problem)}") from None
    if doc is None:
        raise InputError(f"{source}: empty technology file")
    if not isinstance(doc, dict):
        raise InputError(f"{source}: a technology file is a mapping of keys to values, "
                         f"got a {type(doc).__name__}")

    unknown = [str(k) for k in doc if k not in _REQUIRED_KEYS and k not in _OPTIONAL_KEYS]
    if unknown:
        raise InputError(f"{source}: unknown key(s) {', '.join(map(_short, unknown))} "
                         f"(allowed: {', '.join(_REQUIRED_KEYS + _OPTIONAL_KEYS)})")
    missing = [k for k in _REQUIRED_KEYS if k not in doc]
    if missing:
        raise InputError(f"{source}: missing key(s) {', '.join(map(repr, missing))}")

    def fail(key: str, message: str) -> InputError:
        return InputError(f"{source}: key {key!r}: {message}")

    for key in ("name", *_OPTIONAL_KEYS):
        if key in doc and (not isinstance(doc[key], str) or (key == "name" and not doc[key].strip())):
            raise fail(key, f"must be non-empty text, got {_short(doc[key])}")
    values: dict[str, object] = {}
    for key in _SCALAR_KEYS:
        values[key] = _number(doc[key], key, fail)
    for key in _TABLE_KEYS:
        seq = doc[key]
        if not isinstance(seq, list) or not seq:
            raise fail(key, f"must be a non-empty list of numbers, got {_short(seq)}")
        values[key] = tuple(_number(v, f"{key}[{i}]", fail, item_of=key) for i, v in enumerate(seq))
    problems = _value_problems(values)
    if problems:
        key, message = problems[0]
        raise fail(key, message)
    return Technology(
        name=doc["name"].strip(),
        description=_one_line(doc.get("description", "") or ""),
        source_path=source,
        sha256=digest,
        **values,  # type: ignore[arg-type]
    )


def _number(value: object, label: str, fail, item_of: str | None = None) -> float:
    key = item_of or label
    where = "" if item_of is None else f"item {label[len(item_of):]}: "
    if isinstance(value, bool):
        raise fail(key, f"{where}must be a number, got {value!r}")
    if isinstance(value, str):
        # YAML 1.1 reads 1e-12 (no dot) as text: accept any text Python reads as a number
        try:
            value = float(value)
        except ValueError:
            raise fail(key, f"{where}must be a number, got {_short(value)}") from None
    if not isinstance(value, (int, float)):
        raise fail(key, f"{where}must be a number, got {_short(value)}")
    try:
        value = float(value)
    except OverflowError:  # an integer beyond the float range
        raise fail(key, f"{where}must be a positive finite number, got {_short(value)}") from None
    if not math.isfinite(value) or value <= 0:
        raise fail(key, f"{where}must be a positive finite number, got {value!r}")
    return value


def _value_problems(values: dict[str, object]) -> list[tuple[str, str]]:
    """(key, problem) for each inconsistency of a technology's numbers."""
    out: list[tuple[str, str]] = []
    for key in _SCALAR_KEYS:
        v = values[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            out.append((key, f"must be a positive finite number, got {v!r}"))
    sizes = tuple(values["sram_sizes_kb"])  # type: ignore[arg-type]
    energies = tuple(values["sram_j_per_bit"])  # type: ignore[arg-type]
    for key, seq in (("sram_sizes_kb", sizes), ("sram_j_per_bit", energies)):
        for i, v in enumerate(seq):
            if not math.isfinite(v) or v <= 0:
                out.append((key, f"item [{i}] must be a positive finite number, got {v!r}"))
                break
    if out:
        return out
    if len(sizes) != len(energies):
        out.append(("sram_j_per_bit", f"has {len(energies)} values but sram_sizes_kb has {len(sizes)} sizes"))
        return out
    if len(sizes) < 2:
        out.append(("sram_sizes_kb", "needs at least two sizes to interpolate between"))
        return out
    for i in range(1, len(sizes)):
        if not sizes[i] > sizes[i - 1]:
            out.append(("sram_sizes_kb", f"sizes must be strictly increasing: item [{i}] = {sizes[i]:g} "
                                         f"follows {sizes[i - 1]:g}"))
            return out
    return out
