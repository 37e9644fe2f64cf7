"""Hardware spaces: the grid of hardware points an allocation searches.

The format, every key and a worked example: data/spaces/README.md. In short,
a space file (YAML) gives, each key required unless marked optional::

    name: deepopt-16mm2
    description: ...                              # optional
    rows: {min: 8, max: auto, step: 2}            # J; max may be a number or `auto`
    cols: {min: 8, max: auto, step: 2}            # K
    aspect_min_ratio: 0.5                         # min(J,K) >= ratio * max(J,K); 0 = no rule
    sram_kb:                                      # each: a list of sizes, or {min, max, step}
      filter: [4, 8, 16]
      ifmap: {min: 4, max: 64, step: 4}
      psum: [4, 8]
    bits: {filter: 8, ifmap: 8, psum: 32}
    dram: {bandwidth_bits_per_cycle: 128, block_bits: 128}
    area: {budget_mm2: 16, tolerance: 0.0,        # budget * (1 + tolerance) is the limit
           pe_um2: 7406, sram_um2_per_byte: 32.5} # optional: default from the technology

Area of a point (reference OHA_Main.m):
    A = J*K*pe_um2 + (fsram_kb + isram_kb + psram_kb) * 1024 * sram_um2_per_byte.
``max: auto`` for rows is floor(P / K_min) where P = floor((budget - smallest
SRAMs' area) / pe_um2) is the most PEs any point can have (the reference's
Max_row); likewise for cols.
"""

from __future__ import annotations

import hashlib
import math
import reprlib
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from deepopt_mip.formulation.errors import InputError, read_input_text
from deepopt_mip.formulation.costmodel.common import ArrayHardware
from deepopt_mip.formulation.hardware import HardwarePoint
from deepopt_mip.formulation.technology import Technology

BUILTIN_SPACES = {"deepopt-16mm2": "deepopt-16mm2.yaml"}
DEFAULT_SPACE = "deepopt-16mm2"
UM2_PER_MM2 = 1e6
_KEYS = {"name", "description", "rows", "cols", "aspect_min_ratio", "sram_kb", "bits", "dram", "area"}
_REQUIRED = _KEYS - {"description"}
MAX_AXIS_VALUES = 100_000
"""Most values a J or K axis, or one SRAM's size list, may have: a grid beyond that is a typo."""
MAX_ARRAY_PAIRS = 4_000_000
"""Most (J, K) pairs the rows and cols axes may span before the aspect and budget rules."""
MAX_INT = 2**31 - 1

_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlevel = 2


def _short(value) -> str:
    """A bounded one-line repr (a YAML alias bomb must not be expanded into a message)."""
    return " ".join(_SHORT.repr(value).split())


@dataclass(frozen=True)
class AxisRange:
    """min..max in steps; ``max`` None means derived from the area budget."""

    min: int
    max: int | None
    step: int


@dataclass(frozen=True)
class HardwareSpace:
    name: str
    rows: AxisRange
    cols: AxisRange
    aspect_min_ratio: float
    fsram_kb: tuple[float, ...]
    isram_kb: tuple[float, ...]
    psram_kb: tuple[float, ...]
    bits_filter: int
    bits_ifmap: int
    bits_psum: int
    dram_bw_bits_per_cycle: int
    dram_block_bits: int
    budget_mm2: float
    tolerance: float
    pe_um2: float
    sram_um2_per_byte: float
    description: str = ""
    source: str = ""
    sha256: str = ""

    @property
    def limit_um2(self) -> float:
        """The area a point may use: budget * (1 + tolerance)."""
        return self.budget_mm2 * UM2_PER_MM2 * (1 + self.tolerance)

    def with_budget(self, budget_mm2: float) -> "HardwareSpace":
        if not budget_mm2 > 0:
            raise InputError(f"--area-mm2 must be positive, got {budget_mm2!r}")
        return replace(self, budget_mm2=float(budget_mm2))

    def restricted(self, rows: int | None = None, cols: int | None = None, fsram_kb: float | None = None,
                   isram_kb: float | None = None, psram_kb: float | None = None) -> "HardwareSpace":
        """The space with the given axes fixed to one value each (on the grid or not): J x K given,
        choose the SRAMs, say. Fixing both J and K lifts the aspect rule (the array is the user's)."""
        changes = {}
        for key, value, integer in (("rows", rows, True), ("cols", cols, True), ("fsram_kb", fsram_kb, False),
                                    ("isram_kb", isram_kb, False), ("psram_kb", psram_kb, False)):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value) or value <= 0 \
                    or (integer and int(value) != value):
                raise InputError(f"a fixed {key} must be a positive {'whole ' if integer else ''}number, got {value!r}")
            changes[key] = AxisRange(int(value), int(value), 1) if integer else (float(value),)
        if rows is not None and cols is not None:
            changes["aspect_min_ratio"] = 0.0
        return replace(self, **changes)

    def area_um2(self, rows, cols, fsram_kb, isram_kb, psram_kb):
        """J*K*A_PE + (f + i + p) kB * 1024 * A_SRAM/byte (arrays broadcast)."""
        return rows * cols * self.pe_um2 + (fsram_kb + isram_kb + psram_kb) * 1024 * self.sram_um2_per_byte

    def axis_top(self, axis: AxisRange, other: AxisRange) -> int:
        """The largest value of ``axis`` (derived from the budget for ``max: auto``)."""
        top = axis.max
        if top is None:
            smallest_srams = self.area_um2(0, 0, min(self.fsram_kb), min(self.isram_kb), min(self.psram_kb))
            most_pes = np.floor((self.limit_um2 - smallest_srams) / self.pe_um2)
            top = int(most_pes // other.min) if most_pes >= other.min * axis.min else axis.min - 1
        return top

    def axis_values(self, axis: AxisRange, other: AxisRange) -> np.ndarray:
        return np.arange(axis.min, self.axis_top(axis, other) + 1, axis.step, dtype=float)

    def array_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(J, K) pairs allowed by the axes, the aspect rule and the budget with the smallest SRAMs."""
        rows = self.axis_values(self.rows, self.cols)
        cols = self.axis_values(self.cols, self.rows)
        j, k = np.meshgrid(rows, cols, indexing="ij")
        j, k = j.ravel(), k.ravel()
        ok = np.minimum(j, k) >= self.aspect_min_ratio * np.maximum(j, k)
        ok &= self.area_um2(j, k, min(self.fsram_kb), min(self.isram_kb), min(self.psram_kb)) <= self.limit_um2
        return j[ok], k[ok]

    def fitting_sizes(self) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
        """Filter, ifmap and psum SRAM sizes that fit the budget beside the smallest everything else.

        A larger size can never be part of a valid point, so the grid leaves it out.
        """
        j, k = self.rows.min, self.cols.min
        f0, i0, p0 = min(self.fsram_kb), min(self.isram_kb), min(self.psram_kb)
        fits = self.limit_um2
        return (tuple(s for s in self.fsram_kb if self.area_um2(j, k, s, i0, p0) <= fits),
                tuple(s for s in self.isram_kb if self.area_um2(j, k, f0, s, p0) <= fits),
                tuple(s for s in self.psram_kb if self.area_um2(j, k, f0, i0, s) <= fits))

    def hardware_point(self, rows, cols, fsram_kb, isram_kb, psram_kb) -> HardwarePoint:
        return HardwarePoint(J=int(rows), K=int(cols), fsram_kb=float(fsram_kb), isram_kb=float(isram_kb),
                             psram_kb=float(psram_kb), bits_filter=self.bits_filter, bits_ifmap=self.bits_ifmap,
                             bits_psum=self.bits_psum, dram_bw_bits_per_cycle=self.dram_bw_bits_per_cycle,
                             dram_block_bits=self.dram_block_bits)


def _fail(where: str, message: str):
    raise InputError(f"{where}: {message}")


def _positive_int(where: str, key: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_INT:
        _fail(where, f"{key} must be a positive integer up to {MAX_INT}, got {_short(value)}")
    return value


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer beyond the float range
        return False


def _positive_number(where: str, key: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value) or not value > 0:
        _fail(where, f"{key} must be a positive finite number, got {_short(value)}")
    return float(value)


def _axis(where: str, key: str, spec) -> AxisRange:
    if not isinstance(spec, dict) or set(spec) != {"min", "max", "step"}:
        _fail(where, f"{key} must be a mapping with exactly min, max, step")
    lo = _positive_int(where, f"{key}.min", spec["min"])
    step = _positive_int(where, f"{key}.step", spec["step"])
    hi = None if spec["max"] == "auto" else _positive_int(where, f"{key}.max", spec["max"])
    if hi is not None and hi < lo:
        _fail(where, f"{key}.max {hi} is below {key}.min {lo}")
    return AxisRange(lo, hi, step)


def _sizes(where: str, key: str, spec) -> tuple[float, ...]:
    if isinstance(spec, dict):
        if set(spec) != {"min", "max", "step"}:
            _fail(where, f"{key} must be a list of sizes or a mapping with exactly min, max, step")
        lo, hi, step = (_positive_number(where, f"{key}.{k}", spec[k]) for k in ("min", "max", "step"))
        if hi < lo:
            _fail(where, f"{key}.max {hi:g} is below {key}.min {lo:g}")
        if (hi - lo) / step + 1 > MAX_AXIS_VALUES:
            _fail(where, f"{key} has more than {MAX_AXIS_VALUES} sizes from {lo:g} to {hi:g} in steps of {step:g}")
        values = tuple(float(v) for v in np.arange(lo, hi + step / 2, step))
    elif isinstance(spec, list) and spec:
        if len(spec) > MAX_AXIS_VALUES:
            _fail(where, f"{key} has more than {MAX_AXIS_VALUES} sizes")
        values = tuple(_positive_number(where, f"{key}[{i}]", v) for i, v in enumerate(spec))
        if any(b <= a for a, b in zip(values, values[1:])):
            _fail(where, f"{key} sizes must be strictly increasing")
    else:
        _fail(where, f"{key} must be a non-empty list of sizes in kB or a mapping with min, max, step")
    return values


def parse_space(text: str, where: str, tech: Technology) -> HardwareSpace:
    try:
        data = yaml.safe_load(text)
    except RecursionError:
        raise InputError(f"{where}: not valid YAML (nested too deeply)") from None
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: e.g. an integer of too many digits
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise InputError(f"{where}: not valid YAML ({_short(first.strip())[1:-1]})") from None
    if not isinstance(data, dict):
        _fail(where, "a space file is a YAML mapping")
    unknown = sorted(str(k) for k in set(data) - _KEYS)
    if unknown:
        _fail(where, f"unknown key(s) {', '.join(_short(k) for k in unknown)}")
    missing = sorted(_REQUIRED - set(data))
    if missing:
        _fail(where, f"missing key(s) {', '.join(missing)}")
    sram = data["sram_kb"]
    if not isinstance(sram, dict) or set(sram) != {"filter", "ifmap", "psum"}:
        _fail(where, "sram_kb must map exactly filter, ifmap, psum to sizes")
    bits, dram, area = data["bits"], data["dram"], data["area"]
    for key, value, keys in (("bits", bits, {"filter", "ifmap", "psum"}),
                             ("dram", dram, {"bandwidth_bits_per_cycle", "block_bits"})):
        if not isinstance(value, dict) or set(value) != keys:
            _fail(where, f"{key} must map exactly {', '.join(sorted(keys))}")
    if not isinstance(area, dict) or not {"budget_mm2"} <= set(area) <= {"budget_mm2", "tolerance", "pe_um2",
                                                                            "sram_um2_per_byte"}:
        _fail(where, "area must map budget_mm2 and optionally tolerance, pe_um2, sram_um2_per_byte")
    for key in ("name", "description"):
        if key in data and not (isinstance(data[key], str) and (key == "description" or data[key].strip())):
            _fail(where, f"{key} must be {'non-empty ' if key == 'name' else ''}text, got {_short(data[key])}")
    ratio = data["aspect_min_ratio"]
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio <= 1:
        _fail(where, f"aspect_min_ratio must be between 0 and 1, got {_short(ratio)}")
    tolerance = area.get("tolerance", 0.0)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not _finite(tolerance) \
            or tolerance < 0:
        _fail(where, f"area.tolerance must be a finite number >= 0, got {_short(tolerance)}")
    space = HardwareSpace(
        name=data["name"].strip(), description=" ".join(str(data.get("description") or "").split()),
        rows=_axis(where, "rows", data["rows"]), cols=_axis(where, "cols", data["cols"]),
        aspect_min_ratio=float(ratio),
        fsram_kb=_sizes(where, "sram_kb.filter", sram["filter"]),
        isram_kb=_sizes(where, "sram_kb.ifmap", sram["ifmap"]),
        psram_kb=_sizes(where, "sram_kb.psum", sram["psum"]),
        bits_filter=_positive_int(where, "bits.filter", bits["filter"]),
        bits_ifmap=_positive_int(where, "bits.ifmap", bits["ifmap"]),
        bits_psum=_positive_int(where, "bits.psum", bits["psum"]),
        dram_bw_bits_per_cycle=_positive_int(where, "dram.bandwidth_bits_per_cycle", dram["bandwidth_bits_per_cycle"]),
        dram_block_bits=_positive_int(where, "dram.block_bits", dram["block_bits"]),
        budget_mm2=_positive_number(where, "area.budget_mm2", area["budget_mm2"]),
        tolerance=float(tolerance),
        pe_um2=_positive_number(where, "area.pe_um2", area.get("pe_um2", tech.pe_um2)),
        sram_um2_per_byte=_positive_number(where, "area.sram_um2_per_byte",
                                           area.get("sram_um2_per_byte", tech.sram_um2_per_byte)),
        source=where, sha256=hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(),
    )
    counts = []
    for key, axis, other in (("rows", space.rows, space.cols), ("cols", space.cols, space.rows)):
        try:
            count = max(0, (space.axis_top(axis, other) - axis.min) // axis.step + 1)
        except (OverflowError, ValueError):
            count = math.inf
        if count > MAX_AXIS_VALUES:
            _fail(where, f"{key} would take more than {MAX_AXIS_VALUES} values (min {axis.min}, step {axis.step}, "
                         f"max {'auto from the area budget' if axis.max is None else axis.max})")
        counts.append(count)
    if counts[0] * counts[1] > MAX_ARRAY_PAIRS:
        _fail(where, f"rows x cols would be a grid of {counts[0]} x {counts[1]} arrays, more than {MAX_ARRAY_PAIRS:,}")
    lo, hi = tech.sram_range_kb
    for key, sizes in (("filter", space.fsram_kb), ("ifmap", space.isram_kb), ("psum", space.psram_kb)):
        outside = [s for s in sizes if not lo <= s <= hi]
        if outside:
            _fail(where, f"sram_kb.{key} size(s) {', '.join(f'{s:g}' for s in outside)} kB lie outside the "
                         f"technology's SRAM energy table ({lo:g}..{hi:g} kB)")
    return space


def load_space(name_or_path: str | Path, tech: Technology) -> HardwareSpace:
    """A built-in space by name, or a YAML file."""
    key = str(name_or_path)
    if key in BUILTIN_SPACES:
        ref = resources.files("deepopt_mip.data").joinpath("spaces", BUILTIN_SPACES[key])
        return parse_space(ref.read_text(encoding="utf-8"), f"deepopt_mip.data:spaces/{BUILTIN_SPACES[key]}", tech)
    path = Path(name_or_path)
    if not path.is_file():
        raise InputError(f"unknown space {key!r}: not a built-in ({', '.join(BUILTIN_SPACES)}) nor a file")
    return parse_space(read_input_text(path, "space file"), str(path), tech)


@dataclass(frozen=True)
class GridChunk:
    """A block of the grid: J/K pairs ``pairs`` by every SRAM size combination.

    Hardware arrays broadcast as (pairs, filter, ifmap, psum); ``valid`` marks
    points within the area limit whose SRAMs hold the array's registers.
    """

    pairs: slice
    hardware: ArrayHardware
    area_um2: np.ndarray
    valid: np.ndarray


def grid_shape(space: HardwareSpace) -> tuple[int, int, int, int]:
    rows, _ = space.array_pairs()
    return (len(rows), *(len(sizes) for sizes in space.fitting_sizes()))


def grid_chunks(space: HardwareSpace, max_points: int = 300_000):
    """Yield :class:`GridChunk` blocks covering the space's grid in (J,K) order."""
    pairs, sizes = space.array_pairs(), space.fitting_sizes()
    per_pair = int(np.prod([len(s) for s in sizes]))
    if per_pair == 0:
        return
    step = max(1, max_points // per_pair)
    for start in range(0, len(pairs[0]), step):
        yield _chunk(space, slice(start, min(start + step, len(pairs[0]))), pairs, sizes)


def grid_chunk(space: HardwareSpace, block: slice) -> GridChunk:
    """The :class:`GridChunk` of the J/K pairs ``block`` (a slice of :meth:`HardwareSpace.array_pairs`),
    built on its own so a worker can evaluate any chunk without building the others."""
    return _chunk(space, block, space.array_pairs(), space.fitting_sizes())


def _chunk(space: HardwareSpace, block: slice, pairs, sizes) -> GridChunk:
    from deepopt_mip.formulation.hardware import array_hardware, registers_fit

    rows, cols = pairs
    f = np.asarray(sizes[0])[None, :, None, None]
    i = np.asarray(sizes[1])[None, None, :, None]
    p = np.asarray(sizes[2])[None, None, None, :]
    j = rows[block][:, None, None, None]
    k = cols[block][:, None, None, None]
    hw = array_hardware(j, k, f, i, p, bits_filter=space.bits_filter, bits_ifmap=space.bits_ifmap,
                        bits_psum=space.bits_psum, dram_bw_bits_per_cycle=space.dram_bw_bits_per_cycle,
                        dram_block_bits=space.dram_block_bits)
    area = space.area_um2(j, k, f, i, p)
    valid = (area <= space.limit_um2) & registers_fit(hw)
    return GridChunk(pairs=block, hardware=hw, area_um2=area, valid=valid)


def grid_point(space: HardwareSpace, flat_index: int) -> HardwarePoint:
    """The hardware point at a flat index of the (pairs, filter, ifmap, psum) grid."""
    rows, cols = space.array_pairs()
    fsram, isram, psram = space.fitting_sizes()
    a, b, c, d = np.unravel_index(flat_index, grid_shape(space))
    return space.hardware_point(rows[a], cols[a], fsram[b], isram[c], psram[d])


def points_hardware(space: HardwareSpace, flat_indices) -> ArrayHardware:
    """The hardware of the listed grid points (flat indices) as 1-D arrays, for one vectorised evaluation."""
    from deepopt_mip.formulation.hardware import array_hardware

    points = [grid_point(space, int(i)) for i in flat_indices]
    return array_hardware(
        np.array([p.J for p in points], float), np.array([p.K for p in points], float),
        np.array([p.fsram_kb for p in points]), np.array([p.isram_kb for p in points]),
        np.array([p.psram_kb for p in points]), bits_filter=space.bits_filter, bits_ifmap=space.bits_ifmap,
        bits_psum=space.bits_psum, dram_bw_bits_per_cycle=space.dram_bw_bits_per_cycle,
        dram_block_bits=space.dram_block_bits)


def infeasible_budget_message(space: HardwareSpace) -> str:
    """Why no point fits, with the smallest area any point of the space's axes needs."""
    smallest = smallest_point_area_um2(space)
    need = ("no point of the grid holds the array's registers" if not np.isfinite(smallest)
            else f"the smallest point needs {smallest / UM2_PER_MM2:.3f} mm^2")
    return (f"space {space.name!r}: no hardware point fits the area budget of {space.budget_mm2:g} mm^2 "
            f"(tolerance {space.tolerance:g}); {need}")


def smallest_point_area_um2(space: HardwareSpace) -> float:
    """The least area (um^2) any point of the space's axes needs, whatever the budget (``inf`` if none
    holds the array's registers).

    Area grows with J, K and every SRAM size, so the smallest point uses the
    smallest J/K pair obeying the aspect rule and, for it, the smallest SRAM
    of each list that still holds the array's registers.
    """
    from deepopt_mip.formulation.hardware import array_hardware, registers_fit

    rows = space.rows.min + space.rows.step * np.arange(64.0)
    cols = space.cols.min + space.cols.step * np.arange(64.0)
    j, k = (g.ravel() for g in np.meshgrid(rows, cols, indexing="ij"))
    keep = np.minimum(j, k) >= space.aspect_min_ratio * np.maximum(j, k)
    j, k = j[keep][:, None, None, None], k[keep][:, None, None, None]
    f = np.asarray(space.fsram_kb)[None, :, None, None]
    i = np.asarray(space.isram_kb)[None, None, :, None]
    p = np.asarray(space.psram_kb)[None, None, None, :]
    hw = array_hardware(j, k, f, i, p, bits_filter=space.bits_filter, bits_ifmap=space.bits_ifmap,
                        bits_psum=space.bits_psum)
    area = np.where(registers_fit(hw), space.area_um2(j, k, f, i, p), np.inf)
    return float(area.min()) if area.size else np.inf
