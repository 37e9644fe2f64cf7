"""One large space split into grid chunks that run as Dask tasks: points/s per worker and the scaling.

    python benchmarks/bench_chunks.py [--network googlenet-v1] [--metric energy] [--aggregate network]
        [--space benchmarks/spaces/fine-16mm2.yaml] [--chunk-points 60000] [--workers 1,2] [--check]

For each worker count, starts a Dask LocalCluster of that many worker
processes (one thread each, loopback, no dashboard), warms the workers up
(imports), then solves the space with
:func:`deepopt_mip.solvers.chunked.chunked_optimum`, one task per chunk, and
prints the wall time, points per second per worker, the speed-up over the
first worker count and the projected time for a space of
``--project-points`` in-budget points (default 1.0e10, the 1 kB / step-1
space at 16 mm^2) on ``--project-workers`` workers (default 100) at the
measured per-worker rate. ``--check`` also runs the whole-grid enumeration
and checks the optimum is the same. Needs the ``distributed`` extra.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from deepopt_mip.formulation.networks import load_network
from deepopt_mip.formulation.spaces import load_space
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.solvers.chunked import chunk_blocks, chunked_optimum


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="googlenet-v1")
    parser.add_argument("--metric", default="energy")
    parser.add_argument("--aggregate", default="network")
    parser.add_argument("--space", default=str(Path(__file__).parent / "spaces" / "fine-16mm2.yaml"))
    parser.add_argument("--chunk-points", type=int, default=60_000)
    parser.add_argument("--workers", default="1,2", help="worker counts to measure, comma-separated")
    parser.add_argument("--project-points", type=float, default=1.0e10)
    parser.add_argument("--project-workers", type=int, default=100)
    parser.add_argument("--check", action="store_true", help="also check against the whole-grid enumeration")
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    from deepopt_mip.sweeps.dask_worker import AllocatorPlugin

    tech = load_technology()
    space = load_space(args.space, tech)
    network = load_network(args.network)
    blocks = chunk_blocks(space, args.chunk_points)
    print(f"{network.name}, {args.metric} ({args.aggregate}), space {space.name}, {len(blocks)} chunks of at most "
          f"{args.chunk_points:,} points")
    print(f"{'workers':>7}{'points':>11}{'wall s':>9}{'points/s/worker':>17}{'speed-up':>10}"
          f"{f'projected {args.project_points:.1e} pts on {args.project_workers}':>32}  optimum")
    first = None
    results = []
    for workers in (int(w) for w in args.workers.split(",")):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None)
        try:
            client = Client(cluster, set_as_default=False)
            try:
                client.register_plugin(AllocatorPlugin())  # as the sweep does (sweeps/dask_worker.py)
                client.run(__import__, "deepopt_mip.solvers.chunked")

                def on_cluster(function, parts):
                    return client.gather(client.map(function, parts, pure=False))

                start = time.perf_counter()
                solution = chunked_optimum(network, space, tech, args.metric, args.aggregate, args.chunk_points,
                                           map_blocks=on_cluster)
                wall = time.perf_counter() - start
            finally:
                client.close()
        finally:
            cluster.close()
        first = first or (workers, wall)
        rate = solution.points / wall / workers
        projected = args.project_points / (rate * args.project_workers)
        hw = solution.hardware
        results.append(solution)
        print(f"{workers:>7}{solution.points:>11,}{wall:>9.1f}{rate:>17,.0f}"
              f"{first[1] / wall:>10.2f}{_hours(projected):>32}  {hw.J}x{hw.K} "
              f"{hw.fsram_kb:g}/{hw.isram_kb:g}/{hw.psram_kb:g} kB {solution.objective:.6g}")
    same = all((s.hardware, s.objective) == (results[0].hardware, results[0].objective) for s in results)
    print(f"same optimum for every worker count: {'yes' if same else 'NO'}")
    if args.check:
        from deepopt_mip.solvers.enumeration import enumerate_space
        whole = enumerate_space(network, space, tech, args.metric, args.aggregate, top_k=0)
        print(f"equals the whole-grid enumeration: "
              f"{'yes' if (whole.hardware, whole.objective) == (results[0].hardware, results[0].objective) else 'NO'}")


if __name__ == "__main__":
    main()
