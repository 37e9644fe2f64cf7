"""SCALE-Sim input files for a hardware point and a network (``--scalesim DIR``).

Writes, atomically, into DIR:

``scalesim.cfg``
    SCALE-Sim's configuration (the format of SCALE-Sim's ``configs/*.cfg``,
    read by ``scalesim.scale_config``): ``ArrayHeight`` = J (rows),
    ``ArrayWidth`` = K (columns), ``IfmapSramSzkB`` / ``FilterSramSzkB`` /
    ``OfmapSramSzkB`` = our ifmap / filter / psum SRAM in kB (SCALE-Sim reads
    whole kB: a fractional size is rounded to the nearest, at least 1, and the
    file says so), ``Dataflow`` (below), ``Bandwidth`` = our DRAM bandwidth in
    words of the ifmap width per cycle (SCALE-Sim counts 1-byte words: 128
    bits/cycle at 8-bit data is 16) with ``InterfaceBandwidth: USER``.
``topology.csv``
    SCALE-Sim's convolution topology format: ``Layer name, IFMAP Height,
    IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,``
    (every row ends in a comma, as SCALE-Sim drops the last field). SCALE-Sim
    has no padding and no groups: the IFMAP is our *padded* ifmap (H + 2*pad),
    a grouped convolution is one row per group (``name#g0``, ``name#g1``, ...
    with C/groups channels and F/groups filters), and an FC layer with batch N
    is a 1x1 convolution over an N x 1 ifmap (a GEMM of N rows). Names lose
    commas and the letters ``DP`` (SCALE-Sim reads a name containing ``DP`` as
    a depth-wise layer).
``layout.csv``
    A header-only layout file: SCALE-Sim 3 opens one even with custom layouts off.
``layers.csv``
    Ours, per layer: chosen branch, its closest SCALE-Sim dataflow, the
    topology rows that make it up, batch, groups, and our cycles (per image)
    of that branch: ``cycles_ideal`` (compute), ``cycles_stall``,
    ``cycles_write``, ``delay_cycles``. ``benchmarks/crosscheck_scalesim.py``
    compares these with SCALE-Sim.

Run SCALE-Sim on them (``pip install 'deepopt-mip[scalesim]'``: SCALE-Sim 3.0.0
and a NumPy it runs under) and set its cycles beside ours::

    python -m scalesim.scale -c DIR/scalesim.cfg -t DIR/topology.csv -l DIR/layout.csv -p DIR/results
    deepopt-mip scalesim-compare DIR

(``scripts/scalesim_results.py`` reads SCALE-Sim's report). The same two
lines, to run inside DIR, head ``scalesim.cfg``. A network with grouped
(e.g. depth-wise) layers can make thousands of topology rows, one per group,
which SCALE-Sim simulates one by one: a one-line warning on stderr says so.

Dataflow. Our array is weight-stationary at the PE level in every branch
(each PE holds one filter weight; ifmap values are broadcast along a
column's J rows and psums accumulate over the K columns). The five branches
differ in their loop order over tiles, and the innermost loop says what
stays put: ``XYZiZo``, ``XZiYZo``, ``XYZoZi`` and ``XZoYZi`` sweep ofmap
positions (X) innermost under a fixed filter tile -> ``ws``; ``ZiXYZo``
sweeps input channels innermost into fixed outputs -> ``os``. No branch has
the filters (Zo) innermost, SCALE-Sim's ``is``. The configuration names the
dataflow of the branches that carry most of the network's MACs per image
(``ws`` on a tie); ``layers.csv`` gives each layer's own.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

from deepopt_mip.formulation.costmodel.layer_cost import BRANCHES
from deepopt_mip.formulation.costmodel.network_cost import CostTables, cost_tables
from deepopt_mip.formulation.errors import InputError
from deepopt_mip.scripts.output import atomic_write_text
from deepopt_mip.scripts.scalesim_results import RESULTS_FOLDER

__all__ = ["BRANCH_DATAFLOW", "SCALESIM_TOPOLOGY_HEADER", "export_scalesim", "topology_rows"]

BRANCH_DATAFLOW = {"XYZiZo": "ws", "XZiYZo": "ws", "XYZoZi": "ws", "XZoYZi": "ws", "ZiXYZo": "os"}
"""The SCALE-Sim dataflow closest to each branch (innermost loop over ofmap positions: ws; over channels: os)."""

SCALESIM_TOPOLOGY_HEADER = ("Layer name", "IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width",
                            "Channels", "Num Filter", "Strides")

CONFIG_NAME = "scalesim.cfg"
TOPOLOGY_NAME = "topology.csv"
LAYOUT_NAME = "layout.csv"
LAYERS_NAME = "layers.csv"
MANY_ROWS = 1000
"""From this many topology rows (grouped layers being one row per group) the export warns on stderr."""


def scalesim_name(name: str) -> str:
    """A layer name SCALE-Sim reads back as written: no commas, no 'DP', no line breaks."""
    text = " ".join(str(name).split()).replace(",", ";")
    return text.replace("DP", "Dp") or "layer"


def topology_rows(layer) -> list[tuple]:
    """SCALE-Sim topology rows (name, ifmap H, ifmap W, R, S, C, F, stride) of one of our layers."""
    base = scalesim_name(layer.name)
    if layer.kind == "fc":
        return [(base, layer.batch, 1, 1, 1, layer.channels, layer.filters, 1)]
    padded_h, padded_w = int(layer.padded_h), int(layer.padded_w)
    shape = (padded_h, padded_w, layer.filter_h, layer.filter_w, layer.channels // layer.groups,
             layer.filters // layer.groups, layer.stride)
    if layer.groups == 1:
        return [(base, *shape)]
    return [(f"{base}#g{g}", *shape) for g in range(layer.groups)]


def _kb(value: float) -> tuple[int, bool]:
    rounded = max(1, int(math.floor(value + 0.5)))
    return rounded, rounded != value


def network_dataflow(network, branches) -> str:
    """The dataflow of the branches carrying most MACs per image (ties: ws)."""
    macs = {"ws": 0, "os": 0}
    for layer, branch in zip(network.layers, branches):
        macs[BRANCH_DATAFLOW[branch]] += layer.macs
    return "os" if macs["os"] > macs["ws"] else "ws"


def config_text(run_name: str, hardware, dataflow: str, comments: list[str]) -> str:
    sizes = {"ifmap": _kb(hardware.isram_kb), "filter": _kb(hardware.fsram_kb), "psum": _kb(hardware.psram_kb)}
    notes = [f"{key} SRAM {value:g} kB written as {sizes[key][0]} kB (SCALE-Sim reads whole kB)"
             for key, value in (("ifmap", hardware.isram_kb), ("filter", hardware.fsram_kb),
                                ("psum", hardware.psram_kb)) if sizes[key][1]]
    words_per_cycle = max(1, int(hardware.dram_bw_bits_per_cycle // hardware.bits_ifmap))
    lines = [f"# {c}" for c in [*comments, *notes]]
    lines += [
        "[general]",
        f"run_name = {run_name}",
        "",
        "[architecture_presets]",
        f"ArrayHeight : {int(hardware.J)}",
        f"ArrayWidth : {int(hardware.K)}",
        f"IfmapSramSzkB : {sizes['ifmap'][0]}",
        f"FilterSramSzkB : {sizes['filter'][0]}",
        f"OfmapSramSzkB : {sizes['psum'][0]}",
        "IfmapOffset : 0",
        "FilterOffset : 10000000",
        "OfmapOffset : 20000000",
        f"Dataflow : {dataflow}",
        f"Bandwidth : {words_per_cycle}",
        "MemoryBanks : 1",
        "ReadRequestBuffer : 32",
        "WriteRequestBuffer : 32",
        "",
        "[layout]",
        "IfmapCustomLayout : False",
        "IfmapSRAMBankBandwidth : 10",
        "IfmapSRAMBankNum : 10",
        "IfmapSRAMBankPort : 2",
        "FilterCustomLayout : False",
        "FilterSRAMBankBandwidth : 10",
        "FilterSRAMBankNum : 10",
        "FilterSRAMBankPort : 2",
        "",
        "[sparsity]",
        "SparsitySupport : false",
        "SparseRep : ellpack_block",
        "OptimizedMapping : false",
        "BlockSize : 8",
        "RandomNumberGeneratorSeed : 40",
        "",
        "[run_presets]",
        "InterfaceBandwidth : USER",
        "UseRamulatorTrace : False",
    ]
    return "\n".join(lines) + "\n"


def _csv_line(cells) -> str:
    return ",".join(str(c) for c in cells) + ",\n"


def export_scalesim(directory, network, hardware, branches, tech, tables: CostTables | None = None) -> dict[str, Path]:
    """Write the SCALE-Sim files of ``network`` on ``hardware`` with per-layer ``branches``; return their paths."""
    branches = list(branches)
    if len(branches) != len(network.layers):
        raise InputError(f"--scalesim: {len(branches)} branches for {len(network.layers)} layers")
    unknown = sorted(set(branches) - set(BRANCH_DATAFLOW))
    if unknown:
        raise InputError(f"--scalesim: unknown branch(es) {', '.join(unknown)}")
    out = Path(directory)
    if out.exists() and not out.is_dir():
        raise InputError(f"--scalesim {directory}: exists and is not a folder")
    if tables is None:
        tables = cost_tables(network.layers, hardware.arrays(), tech)

    dataflow = network_dataflow(network, branches)
    run_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"deepopt_{network.name}_{hardware.J}x{hardware.K}_{dataflow}")
    comments = [
        f"SCALE-Sim configuration written by deepopt-mip for network {network.name} on {hardware.label()}",
        f"Dataflow {dataflow}: the branches carrying most MACs (XYZiZo, XZiYZo, XYZoZi, XZoYZi -> ws; ZiXYZo -> os)",
        f"SRAM kB: Ifmap = our ifmap SRAM, Filter = our filter SRAM, Ofmap = our psum SRAM; "
        f"Bandwidth = {hardware.dram_bw_bits_per_cycle:g} bits/cycle / {hardware.bits_ifmap}-bit words",
        "run SCALE-Sim (pip install 'deepopt-mip[scalesim]') in this folder and compare its cycles with ours:",
        f"  python -m scalesim.scale -c {CONFIG_NAME} -t {TOPOLOGY_NAME} -l {LAYOUT_NAME} -p {RESULTS_FOLDER}",
        "  deepopt-mip scalesim-compare .",
    ]

    topology = [_csv_line(SCALESIM_TOPOLOGY_HEADER)]
    layer_lines = [",".join(("layer", "kind", "branch", "dataflow", "scalesim_rows", "batch", "groups", "macs",
                             "cycles_ideal", "cycles_stall", "cycles_write", "delay_cycles")) + "\n"]
    seen: set[str] = set()
    for i, (layer, branch) in enumerate(zip(network.layers, branches)):
        rows = topology_rows(layer)
        names = []
        for row in rows:
            name, suffix = row[0], 2
            while name in seen:  # sanitising may make two names equal
                name = f"{row[0]}~{suffix}"
                suffix += 1
            seen.add(name)
            names.append(name)
            topology.append(_csv_line((name, *row[1:])))
        counts = tables.details[i][branch].counts
        values = [float(counts.cycles_ideal), float(counts.cycles_stall), float(counts.cycles_write),
                  float(tables.delay_cycles[i, BRANCHES.index(branch)])]
        layer_lines.append(",".join([
            _quote(layer.name), layer.kind, branch, BRANCH_DATAFLOW[branch], _quote(" ".join(names)),
            str(layer.batch), str(layer.groups), str(layer.macs), *(_number(v) for v in values)]) + "\n")

    rows = len(topology) - 1
    if rows >= MANY_ROWS and any(layer.groups > 1 for layer in network.layers):
        widest = max(network.layers, key=lambda layer: layer.groups)
        print(f"deepopt-mip: warning: --scalesim: {rows:,} SCALE-Sim topology rows, as SCALE-Sim has no groups and "
              f"a grouped layer is one row per group ({widest.name}: {widest.groups:,}); SCALE-Sim simulates "
              f"them one by one", file=sys.stderr)
    paths = {"config": out / CONFIG_NAME, "topology": out / TOPOLOGY_NAME, "layout": out / LAYOUT_NAME,
             "layers": out / LAYERS_NAME}
    atomic_write_text(paths["config"], config_text(run_name, hardware, dataflow, comments))
    atomic_write_text(paths["topology"], "".join(topology))
    atomic_write_text(paths["layout"], _csv_line(("Layer name",)))
    atomic_write_text(paths["layers"], "".join(layer_lines))
    return paths


def _number(value: float) -> str:
    if not math.isfinite(value):
        return "inf"
    return str(int(value)) if float(value).is_integer() else repr(value)


def _quote(text: str) -> str:
    text = " ".join(str(text).split())
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"') else text
