"""Memory: the estimate is checked before a run (one line, exit 2, when it exceeds what the machine has),
the streaming pass's memory does not grow with the grid, --workers reaches the grid pass."""

import numpy as np
import pytest

from deepopt_mip.formulation import grid_stream, memory
from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.grid_stream import BYTES_PER_POINT, stream_memory_bytes
from deepopt_mip.formulation.grid_sums import grid_sums, grid_sums_memory_bytes
from deepopt_mip.formulation.memory import available_bytes, check_memory
from deepopt_mip.formulation.networks import load_network
from deepopt_mip.formulation.spaces import grid_shape, load_space
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.scripts.cli import main
from deepopt_mip.scripts.progress import eta_s
from deepopt_mip.solvers.enumeration import enumerate_space

TECH = load_technology()
FINE_SPACE = """name: fine
rows: {min: 8, max: auto, step: 1}
cols: {min: 8, max: auto, step: 1}
aspect_min_ratio: 0.5
sram_kb:
  filter: {min: 4, max: 508, step: 4}
  ifmap: {min: 4, max: 508, step: 4}
  psum: {min: 4, max: 508, step: 4}
bits: {filter: 8, ifmap: 8, psum: 32}
dram: {bandwidth_bits_per_cycle: 128, block_bits: 128}
area: {budget_mm2: 16, tolerance: 0.0}
"""


def fine_space(folder):
    """The 2.1 G-point space of :data:`FINE_SPACE`, written in ``folder``."""
    path = folder / "fine.yaml"
    path.write_text(FINE_SPACE)
    return load_space(path, TECH)


def stopped_at_the_memory_check(monkeypatch) -> list:
    """Make every streamed pass stop at its memory check (an ``InterruptedError``); the list the checked
    estimates are appended to."""
    checked = []

    def record(estimate, what):
        checked.append(estimate)
        raise InterruptedError

    monkeypatch.setattr(grid_stream, "check_memory", record)
    return checked


def test_check_memory_refuses_in_one_line_with_the_estimate():
    check_memory(10 * 2**30, "a run", available=11 * 2**30)
    with pytest.raises(InputError, match=r"^a run would need about 10\.0 GB of memory, more than the 2\.0 GB "
                                         r"available$"):
        check_memory(10 * 2**30, "a run", available=2 * 2**30)


def test_the_machine_reports_its_available_memory():
    available = available_bytes()
    assert available is None or available > 0


def test_stream_estimate_depends_on_the_block_size_not_the_grid():
    assert stream_memory_bytes(300_000, 2) - stream_memory_bytes(100_000, 2) == 2 * BYTES_PER_POINT * 200_000


def test_a_space_too_large_to_materialise_is_refused_up_front(tmp_path):
    """The full-grid pass (the reference the streamed passes are tested against)
    over a 2.1 G-point cube needs about 300 GB: refused before any work, in one line; the streaming pass's
    estimate (the enumeration's, the MIP's, the studies' and the study frontier's) stays small."""
    path = tmp_path / "fine.yaml"
    path.write_text(FINE_SPACE)
    space = load_space(path, TECH)
    assert np.prod(grid_shape(space)) > 2e9
    assert grid_sums_memory_bytes(grid_shape(space), True, 300_000, 2) > 30 * 2**30
    assert stream_memory_bytes(300_000, 2) < 2 * 2**30
    with pytest.raises(InputError) as refused:
        grid_sums(load_network("alexnet"), space, TECH, "edp", False, workers=2)
    err = str(refused.value)
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("the full grid of space 'fine'")
    assert "would need about" in err and "GB of memory" in err


def test_the_streaming_pass_is_refused_when_the_machine_lacks_memory_for_its_blocks(monkeypatch, capsys):
    monkeypatch.setattr(memory, "available_bytes", lambda: 2**20)
    status = main(["allocate", "--network", "alexnet", "--metric", "energy", "--quiet", "--workers", "1"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("deepopt-mip: error: the grid pass over space 'deepopt-16mm2'")
    assert len(err.strip().splitlines()) == 1


def test_workers_option_is_checked_and_reaches_the_pass(capsys):
    assert main(["allocate", "--network", "alexnet", "--metric", "energy", "--quiet", "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err
    assert main(["allocate", "--network", "alexnet", "--metric", "energy", "--workers", "2"]) == 0
    one = enumerate_space(load_network("alexnet"), load_space("deepopt-16mm2", TECH), TECH, "energy", "network",
                          workers=1)
    assert f"{one.objective:.6g}"[:5] in capsys.readouterr().out.replace(",", "")


def test_eta_is_the_rest_at_the_rate_so_far():
    assert eta_s(10.0, 25, 100) == 30.0
