"""``deepopt-mip scalesim-compare DIR``: SCALE-Sim's cycles beside ours, per layer, for a ``--scalesim`` folder."""

from __future__ import annotations

import pandas as pd

from deepopt_mip.scripts.output import write_csv
from deepopt_mip.scripts.scalesim_results import (comparison_records, comparison_table, config_value,
                                                  load_comparison)


def run(directory, results=None, csv_path=None, quiet: bool = False) -> int:
    rows, report = load_comparison(directory, results)
    if csv_path:
        write_csv(csv_path, pd.DataFrame(comparison_records(rows)))
    if not quiet:
        print(f"ours: {directory}/layers.csv; SCALE-Sim: {report}")
        dataflow = config_value(directory, "architecture_presets", "Dataflow") or "?"
        print("cycles per image; compute = stall-free (SCALE-Sim: Total - Stall Cycles), "
              "total = with stalls (ours: delay); ratio = SCALE-Sim / ours")
        print(f"SCALE-Sim ran every layer with Dataflow {dataflow} (scalesim.cfg); df = the dataflow closest to "
              f"the layer's own branch\n")
        print(comparison_table(rows))
    return 0
