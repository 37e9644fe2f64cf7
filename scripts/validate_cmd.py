"""``deepopt-mip validate``: our model against the reference's per-branch numbers.

Reads ``DIR/branches.csv`` or a CSV file named directly (the format of the
DeepOpt reference runs: one row per network, hardware config, layer and
branch; lines starting with ``#`` are comments), evaluates the same cases
with our model and the built-in technology, and reports per network the
relative errors of per-layer energy and delay, LOS winner agreement (modulo
ties) and infeasibility agreement.

By itself it reports and exits 0. With ``max_rel_error`` X it also judges:
exit status 1 if the largest relative error |ours - ref| / |ref| of a
per-branch energy or delay exceeds X, or a case is infeasible on one side
only. The cases judged are the headline ones (every row but batched FC
layers) and the batched FC layers counted the reference's way (MAC and
register-file energy for the whole batch, see :func:`report`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import io
import math

import numpy as np
import pandas as pd

from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES
from deepopt_mip.formulation.costmodel.network_cost import cost_tables
from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.hardware import array_hardware
from deepopt_mip.formulation.networks import load_network
from deepopt_mip.formulation.technology import Technology, load_technology
from deepopt_mip.scripts.output import write_json

REFERENCE_NETWORKS = {1: "alexnet", 2: "vgg-16", 3: "squeezenet-v1.1", 4: "googlenet-v1", 5: "resnet-50"}
REFERENCE_BRANCH_SLOT = {"xyzF": "XYZiZo", "xzyF": "XZiYZo", "xyFz": "XYZoZi", "xFyz": "XZoYZi", "zxyF": "ZiXYZo",
                         "NzF-1N": "XYZiZo", "NFz-1N": "XYZoZi", "zF": "XYZiZo", "Fz": "XYZoZi"}
REQUIRED_COLUMNS = ["network", "config_id", "J", "K", "fsram_kb", "isram_kb", "psram_kb", "bw_filter", "bw_ifmap",
                    "bw_psum", "layer_index", "branch", "energy_joule", "delay_cycles"]
TIE_RTOL = 1e-9


def reference_path(reference: str | Path) -> Path:
    """The reference CSV: ``reference`` itself if it is a file, else ``reference/branches.csv``."""
    path = Path(reference)
    return path if path.is_file() else path / "branches.csv"


def _without_comments(raw: bytes) -> tuple[bytes, list[int]]:
    """``raw`` with its ``#`` comment lines and blank lines dropped, and the 1-based file line of each kept line."""
    kept, line_numbers = [], []
    for number, line in enumerate(raw.splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith(b"#"):
            kept.append(line)
            line_numbers.append(number)
    return b"\n".join(kept) + b"\n", line_numbers


def read_reference(directory: str | Path, tech: Technology | None = None) -> pd.DataFrame:
    """The reference CSV (see :func:`reference_path`), every field checked (SRAM sizes against ``tech``,
    default the built-in). Lines starting with ``#`` and blank lines are skipped."""
    tech = tech or load_technology()
    path = reference_path(directory)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found (validate expects DIR/branches.csv or a CSV file)") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None
    text, line_numbers = _without_comments(raw)
    try:
        frame = pd.read_csv(io.BytesIO(text), skip_blank_lines=False)
    except Exception as exc:  # ParserError, EmptyDataError, UnicodeDecodeError, ValueError, ...
        raise InputError(f"{path}: not a readable CSV ({_first_line(exc)})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    # a data row's line in the file (exact unless a quoted field spans lines)
    line_of = line_numbers[1:] if len(line_numbers) == len(frame) + 1 else [i + 2 for i in range(len(frame))]
    _check_rows(frame, path, tech, line_of)
    for column in ("energy_joule", "delay_cycles"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def _first_line(exc: BaseException) -> str:
    line = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
    return " ".join(f"{type(exc).__name__}: {line}".split())[:200] if line else type(exc).__name__


@lru_cache(maxsize=1)
def _network_sizes() -> dict[int, int]:
    return {net: len(load_network(name)) for net, name in REFERENCE_NETWORKS.items()}


def _check_rows(frame: pd.DataFrame, path: Path, tech: Technology, line_of: list[int]) -> None:
    """Every field compare() uses: types, ranges, and one hardware point per (network, config_id).

    ``line_of[i]`` is the file line of data row ``i`` (0-based), for messages.
    """
    def fail(index, column: str, problem: str):
        value = frame[column].iloc[index]
        shown = " ".join(repr(value).split())[:40]
        raise InputError(f"{path} data row {index + 1} (line {line_of[index]}): column {column!r}: {shown} {problem}")

    def integers(column: str, lo: int, hi: int) -> np.ndarray:
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        bad = ~(np.isfinite(values) & (values == np.round(values)) & (values >= lo) & (values <= hi))
        if bad.any():
            fail(int(np.argmax(bad)), column, f"is not an integer from {lo} to {hi}")
        return values.astype(np.int64)

    networks = integers("network", 1, len(REFERENCE_NETWORKS))
    for column in ("J", "K"):
        integers(column, 1, 2**31 - 1)
    for column in ("bw_filter", "bw_ifmap", "bw_psum"):
        integers(column, 1, 1024)
    lo, hi = tech.sram_range_kb
    for column in ("fsram_kb", "isram_kb", "psram_kb"):
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        bad = ~((values >= lo) & (values <= hi))  # NaN too
        if bad.any():
            fail(int(np.argmax(bad)), column, f"is not an SRAM size in kB within the technology's {lo:g}..{hi:g}")
    sizes = _network_sizes()
    index = integers("layer_index", 1, max(sizes.values()))
    beyond = index > np.array([sizes[n] for n in networks], dtype=np.int64) if len(frame) else np.zeros(0, bool)
    if beyond.any():
        i = int(np.argmax(beyond))
        fail(i, "layer_index", f"is beyond {REFERENCE_NETWORKS[int(networks[i])]}'s {sizes[int(networks[i])]} layers")
    branches = frame["branch"].map(lambda b: isinstance(b, str) and b in REFERENCE_BRANCH_SLOT).to_numpy(dtype=bool)
    if not branches.all():
        fail(int(np.argmin(branches)), "branch", f"is not one of {', '.join(REFERENCE_BRANCH_SLOT)}")
    configs = frame["config_id"].map(lambda c: isinstance(c, str) and bool(c.strip()) or isinstance(c, (int, float))
                                     and np.isfinite(c)).to_numpy(dtype=bool)
    if not configs.all():
        fail(int(np.argmin(configs)), "config_id", "is empty")
    hardware = ["J", "K", "fsram_kb", "isram_kb", "psram_kb", "bw_filter", "bw_ifmap", "bw_psum"]
    numeric = frame[hardware].apply(pd.to_numeric)
    keys = list(zip(networks, frame["config_id"].astype(str)))
    first: dict = {}
    for i, (key, row) in enumerate(zip(keys, numeric.itertuples(index=False))):
        if key not in first:
            first[key] = (i, tuple(row))
        elif first[key][1] != tuple(row):
            raise InputError(f"{path} data row {i + 1} (line {line_of[i]}): network {key[0]} config {key[1]!r} has other "
                             f"hardware than data row {first[key][0] + 1} (one hardware point per config)")


def compare(frame: pd.DataFrame, tech: Technology | None = None) -> pd.DataFrame:
    """One row per reference row with our energy and delay beside it (``tech`` default: the built-in)."""
    tech = tech or load_technology()
    out = []
    for (net, config), group in frame.groupby(["network", "config_id"], sort=True):
        network = load_network(REFERENCE_NETWORKS[int(net)])
        first = group.iloc[0]
        hw = array_hardware(rows=first.J, cols=first.K, fsram_kb=first.fsram_kb, isram_kb=first.isram_kb,
                            psram_kb=first.psram_kb, bits_filter=first.bw_filter, bits_ifmap=first.bw_ifmap,
                            bits_psum=first.bw_psum)
        tables = cost_tables(network.layers, hw, tech)
        for row in group.itertuples(index=False):
            index = int(row.layer_index) - 1
            if not 0 <= index < len(network):  # read_reference checked it; frames built in code may not be
                raise InputError(f"branches.csv: network {net} has no layer {row.layer_index} "
                                 f"({network.name} has {len(network)})")
            slot = BRANCHES.index(REFERENCE_BRANCH_SLOT[row.branch])
            layer = network.layers[index]
            energy = tables.details[index][BRANCHES[slot]].energy
            out.append({
                "network": network.name, "config_id": config, "layer_index": index + 1, "layer": layer.name,
                "fc_batched": layer.kind == "fc" and layer.batch > 1, "branch": row.branch, "slot": slot,
                "ref_energy_j": row.energy_joule, "ref_delay_cycles": row.delay_cycles,
                "energy_j": float(tables.energy_j[index, slot]), "delay_cycles": float(tables.delay_cycles[index, slot]),
                "batch_extra_mac_rf_j": (layer.batch - 1) * float(energy.mac_j + energy.rf_j) if layer.kind == "fc" else 0.0,
            })
    return pd.DataFrame(out)


def relative_errors(ours: pd.Series, ref: pd.Series) -> np.ndarray:
    both = np.isfinite(ours.to_numpy(float)) & np.isfinite(ref.to_numpy(float))
    a, b = ours.to_numpy(float)[both], ref.to_numpy(float)[both]
    return np.abs(a - b) / np.abs(b)


def winner_agreement(rows: pd.DataFrame, ours: str, ref: str) -> tuple[int, int]:
    """Layers where our LOS winner is one of the reference's winners (ties allowed)."""
    agree = total = 0
    for _, layer in rows.groupby(["network", "config_id", "layer_index"]):
        ref_values = layer[ref].to_numpy(float)
        if np.all(np.isnan(ref_values)) or not np.any(np.isfinite(ref_values)):
            continue
        ref_values = np.where(np.isnan(ref_values), np.inf, ref_values)
        our_values = layer[ours].to_numpy(float)
        pick = int(np.argmin(our_values))
        best = ref_values.min()
        total += 1
        agree += bool(ref_values[pick] <= best * (1 + TIE_RTOL))
    return agree, total


def stats(rows: pd.DataFrame) -> dict:
    known = rows[~(rows.ref_energy_j.isna() & rows.ref_delay_cycles.isna())]
    e_err = relative_errors(known.energy_j, known.ref_energy_j)
    d_err = relative_errors(known.delay_cycles, known.ref_delay_cycles)
    mismatch = (np.isinf(known.energy_j) != np.isinf(known.ref_energy_j)) | \
               (np.isinf(known.delay_cycles) != np.isinf(known.ref_delay_cycles))
    agree_e, n_e = winner_agreement(known, "energy_j", "ref_energy_j")
    agree_d, n_d = winner_agreement(known, "delay_cycles", "ref_delay_cycles")
    return {
        "energy_median_rel_err": float(np.median(e_err)) if e_err.size else None,
        "energy_max_rel_err": float(np.max(e_err)) if e_err.size else None,
        "delay_median_rel_err": float(np.median(d_err)) if d_err.size else None,
        "delay_max_rel_err": float(np.max(d_err)) if d_err.size else None,
        "los_agree_energy": agree_e / n_e if n_e else None,
        "los_agree_delay": agree_d / n_d if n_d else None,
        "cases": int(len(known)),
        "infeasible_mismatches": int(mismatch.sum()),
        "reference_failed": int(len(rows) - len(known)),
    }


def report(rows: pd.DataFrame) -> dict:
    headline = rows[~rows.fc_batched]
    result = {
        "networks": {name: stats(group) for name, group in headline.groupby("network", sort=False)},
        "overall": stats(headline),
        "note": "headline figures exclude batched FC layers, where the reference counts MAC and register-file "
                "energy for the whole batch but access energy per image; those rows are under fc_batched, and "
                "under fc_batched_with_batch_mac_rf with our MAC and RF energy counted for the whole batch too",
    }
    fc = rows[rows.fc_batched]
    if len(fc):
        result["fc_batched"] = stats(fc)
        as_reference = fc.assign(energy_j=fc.energy_j + fc.batch_extra_mac_rf_j)
        result["fc_batched_with_batch_mac_rf"] = stats(as_reference)
    return result


def pct(value) -> str:
    return "-" if value is None else f"{100 * value:.3f}%"


def print_report(result: dict) -> None:
    header = (f"{'network':<18}{'cases':>7}{'E med':>10}{'E max':>10}{'D med':>10}{'D max':>10}"
              f"{'LOS E':>9}{'LOS D':>9}{'inf mism.':>10}")
    print(header)
    entries = list(result["networks"].items()) + [("overall", result["overall"])]
    if "fc_batched" in result:
        entries.append(("fc batched", result["fc_batched"]))
        entries.append(("  +batch MAC/RF", result["fc_batched_with_batch_mac_rf"]))
    for name, s in entries:
        print(f"{name:<18}{s['cases']:>7}{pct(s['energy_median_rel_err']):>10}{pct(s['energy_max_rel_err']):>10}"
              f"{pct(s['delay_median_rel_err']):>10}{pct(s['delay_max_rel_err']):>10}"
              f"{pct(s['los_agree_energy']):>9}{pct(s['los_agree_delay']):>9}{s['infeasible_mismatches']:>10}")
    print("\n" + result["note"] + ".")


def largest_errors(result: dict) -> tuple[float, float, int]:
    """(largest relative energy error, largest relative delay error, infeasibility mismatches) over the judged
    cases: the headline rows and the batched FC rows counted the reference's way. NaN if an error is undefined."""
    parts = [result["overall"]] + ([result["fc_batched_with_batch_mac_rf"]] if "fc_batched" in result else [])

    def largest(key: str) -> float:
        values = [s[key] for s in parts if s["cases"]]
        return max((math.nan if v is None else v for v in values), default=0.0)

    return largest("energy_max_rel_err"), largest("delay_max_rel_err"), sum(s["infeasible_mismatches"] for s in parts)


def within(result: dict, max_rel_error: float) -> tuple[bool, str]:
    """Whether the judged cases agree to ``max_rel_error``, and a one-line verdict."""
    energy, delay, mismatches = largest_errors(result)
    ok = energy <= max_rel_error and delay <= max_rel_error and mismatches == 0  # NaN fails
    return ok, (f"largest relative error: energy {energy:.3g}, delay {delay:.3g}, infeasibility mismatches "
                f"{mismatches} (bound {max_rel_error:g}): {'PASS' if ok else 'FAIL'}")


def run(directory, json_path=None, max_rel_error: float | None = None) -> int:
    """Report; with ``max_rel_error``, exit status 1 if the judged cases differ by more (see the module doc)."""
    if max_rel_error is not None and not (math.isfinite(max_rel_error) and max_rel_error >= 0):
        raise InputError(f"--max-rel-error must be a finite number >= 0, got {max_rel_error}")
    tech = load_technology()
    rows = compare(read_reference(directory, tech), tech)
    result = report(rows)
    print_report(result)
    if json_path:
        write_json(json_path, result)
    if max_rel_error is None:
        return 0
    ok, verdict = within(result, max_rel_error)
    print(verdict)
    return 0 if ok else 1
