"""deepopt-mip sweep on a real Dask distributed cluster: a LocalCluster of worker processes on loopback.

A cluster is started and closed in a finally, pass or fail: one for the file's tests that leave the cluster as
they found it, and one of its own for the test that kills a worker. The serial references (serial_small,
serial_nine) come from conftest.py, run once per session.
"""

import os
import signal

import pytest

from deepopt_mip.formulation.networks import load_network
from deepopt_mip.formulation.spaces import load_space
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.solvers.chunked import chunked_optimum
from deepopt_mip.solvers.enumeration import enumerate_space
from deepopt_mip.sweeps.sweep import sweep
from sweep_cases import NINE, SMALL, cell_files, outputs, write_sweep

distributed = pytest.importorskip("distributed")


def local_cluster():
    """Two worker processes of one thread each, on 127.0.0.1, no dashboard."""
    return distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                    dashboard_address=None)


@pytest.fixture(scope="module")
def cluster():
    """One cluster for the tests that leave its workers as they were (an interrupted sweep only cancels its
    own tasks)."""
    local = local_cluster()
    try:
        yield local
    finally:
        local.close()


@pytest.fixture
def own_client():
    """A client on a cluster of its own, for a test that kills one of its workers."""
    local = local_cluster()
    try:
        connected = distributed.Client(local, set_as_default=False)
        try:
            yield connected
        finally:
            connected.close()
    finally:
        local.close()


@pytest.fixture
def client(cluster):
    connected = distributed.Client(cluster, set_as_default=False)
    try:
        yield connected
    finally:
        connected.close()


def test_a_worker_killed_mid_sweep_loses_and_duplicates_no_cell(own_client, serial_nine, tmp_path):
    client = own_client
    study = write_sweep(tmp_path, NINE)
    killed = []

    def kill_a_busy_worker(done, total):
        if killed:
            return
        processing = client.processing()
        busy = [address for address, keys in processing.items() if keys] or sorted(processing)
        killed.append(busy[0])
        pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
        os.kill(pid, signal.SIGKILL)

    result = sweep(study, tmp_path / "cluster", scheduler=client, on_cell=kill_a_busy_worker, plots=False)
    assert killed and killed[0] not in client.scheduler_info()["workers"]  # that worker process is gone
    assert result.ran == 9 and len(cell_files(tmp_path / "cluster")) == 9
    assert result.results["key"].is_unique and len(result.results) == 9
    assert outputs(tmp_path / "cluster") == outputs(serial_nine[0])


def test_cluster_equals_serial(cluster, serial_small, tmp_path):
    """The same bytes as the serial run (test_sweep.py checks that the local pool gives these bytes too)."""
    on_cluster = sweep(write_sweep(tmp_path, SMALL), tmp_path / "cluster", scheduler=cluster.scheduler_address,
                       plots=False)
    assert on_cluster.engine == "dask" and on_cluster.ran == 8
    assert outputs(tmp_path / "cluster") == outputs(serial_small[0])


def test_an_interrupted_cluster_sweep_resumes(cluster, serial_nine, tmp_path):
    study = write_sweep(tmp_path, NINE)

    def stop_after_three(done, total):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep(study, tmp_path / "out", scheduler=cluster.scheduler_address, on_cell=stop_after_three, plots=False)
    assert len(cell_files(tmp_path / "out")) == 3 and not (tmp_path / "out" / "results.csv").exists()
    again = sweep(study, tmp_path / "out", scheduler=cluster.scheduler_address, plots=False)
    assert (again.ran, again.skipped) == (6, 3)
    assert outputs(tmp_path / "out") == outputs(serial_nine[0])


def test_chunks_as_dask_tasks_reduce_to_the_enumerations_optimum(client):
    tech = load_technology()
    space = load_space("deepopt-16mm2", tech).with_budget(4)
    network = load_network("alexnet")

    def on_cluster(function, blocks):
        return client.gather(client.map(function, blocks, pure=False))

    for metric, aggregate in (("energy", "network"), ("edp", "network")):  # separable, and bound and prune
        got = chunked_optimum(network, space, tech, metric, aggregate, max_points=1000, map_blocks=on_cluster)
        want = enumerate_space(network, space, tech, metric, aggregate, top_k=0, workers=1)
        assert (got.hardware, got.objective, got.points) == (want.hardware, want.objective, want.points)
