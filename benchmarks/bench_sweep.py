"""A study on a local process pool and on a Dask LocalCluster: wall times and whether the tables are equal.

    python benchmarks/bench_sweep.py [--sweep benchmarks/sweeps/five-networks.yaml] [--workers 2] --out DIR

Runs the study with ``--workers N`` into DIR/local, then on a LocalCluster of
N worker processes (one thread each, loopback, no dashboard) into
DIR/cluster, and prints both wall times and whether results.csv,
results.parquet and penalty.csv are byte-identical. Needs the
``distributed`` extra.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import time
from pathlib import Path

from deepopt_mip.sweeps.sweep import sweep

TABLES = ("results.csv", "results.parquet", "penalty.csv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", default=str(Path(__file__).parent / "sweeps" / "five-networks.yaml"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", required=True, help="folder for DIR/local and DIR/cluster (emptied first)")
    args = parser.parse_args()
    from distributed import LocalCluster

    out = Path(args.out)
    for name in ("local", "cluster"):
        shutil.rmtree(out / name, ignore_errors=True)
    start = time.perf_counter()
    local = sweep(args.sweep, out / "local", workers=args.workers)
    local_s = time.perf_counter() - start
    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None)
    try:
        start = time.perf_counter()
        remote = sweep(args.sweep, out / "cluster", scheduler=cluster.scheduler_address)
        cluster_s = time.perf_counter() - start
    finally:
        cluster.close()
    equal = all(filecmp.cmp(out / "local" / t, out / "cluster" / t, shallow=False) for t in TABLES)
    print(f"{'engine':<26}{'cells':>6}{'wall s':>9}")
    print(f"{f'local pool, {args.workers} workers':<26}{local.ran:>6}{local_s:>9.1f}")
    print(f"{f'LocalCluster, {args.workers} workers':<26}{remote.ran:>6}{cluster_s:>9.1f}")
    print(f"tables ({', '.join(TABLES)}) byte-identical: {'yes' if equal else 'NO'}")


if __name__ == "__main__":
    main()
