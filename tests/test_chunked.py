"""The chunked enumeration (solvers/chunked.py) against the whole-grid enumeration."""

import itertools
import random

import numpy as np
import pytest

from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.grid_sums import is_separable
from deepopt_mip.formulation.networks import load_network
from deepopt_mip.formulation.grid_stream import block_flat_index
from deepopt_mip.formulation.spaces import load_space
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.solvers.chunked import ChunkBest, chunk_best, chunk_blocks, chunked_optimum, reduce_bests
from deepopt_mip.solvers.enumeration import enumerate_space, grid_bounds

TECH = load_technology()
SPACE_4MM2 = load_space("deepopt-16mm2", TECH).with_budget(4)
"""deepopt-16mm2 cut to 4 mm^2: 3,712 points in 29 J/K pairs."""
ALEXNET = load_network("alexnet")

CASES = [("energy", "network", 600), ("delay", "network", 2000), ("edp", "network", 600),
         ("ed2p", "network", 2000), ("edp", "layer-sum", 600)]
"""Metric, aggregation and the most points per block (several blocks each)."""


@pytest.mark.parametrize("metric,aggregate,max_points", CASES)
def test_chunked_optimum_equals_the_enumeration(metric, aggregate, max_points):
    whole = enumerate_space(ALEXNET, SPACE_4MM2, TECH, metric, aggregate, top_k=0, workers=1)
    chunked = chunked_optimum(ALEXNET, SPACE_4MM2, TECH, metric, aggregate, max_points=max_points)
    assert len(chunk_blocks(SPACE_4MM2, max_points)) > 1
    assert chunked.hardware == whole.hardware
    assert chunked.objective == whole.objective
    assert (chunked.energy_j, chunked.delay_cycles, chunked.area_mm2) == (whole.energy_j, whole.delay_cycles,
                                                                         whole.area_mm2)
    assert chunked.branches == whole.branches
    assert chunked.points == whole.points


def test_reduction_breaks_ties_by_area_then_grid_order():
    """Hand cases: equal objectives go to the smaller area, then the smaller grid index, in any order."""
    a = ChunkBest(objective=2.0, area_um2=10.0, flat_index=50, valid_points=3)
    b = ChunkBest(objective=2.0, area_um2=9.0, flat_index=70, valid_points=4)
    c = ChunkBest(objective=2.0, area_um2=9.0, flat_index=60, valid_points=5)
    d = ChunkBest(objective=3.0, area_um2=1.0, flat_index=1, valid_points=6)
    empty = ChunkBest(objective=np.inf, area_um2=np.inf, flat_index=None, valid_points=7)
    for order in itertools.permutations([a, b, c, d, empty]):
        best = reduce_bests(list(order))
        assert (best.flat_index, best.area_um2, best.valid_points) == (60, 9.0, 25)
    assert reduce_bests([empty]).flat_index is None


def test_blocks_in_any_order_reduce_to_the_same_point():
    blocks = chunk_blocks(SPACE_4MM2, 1000)
    bests = [chunk_best(ALEXNET, SPACE_4MM2, TECH, "delay", "network", b) for b in blocks]
    first = reduce_bests(bests)
    random.Random(1).shuffle(bests)
    assert reduce_bests(bests) == first


def test_each_block_reports_its_own_best_and_point_count():
    """Against the whole-grid pass: a block's best and its valid points are those of its grid points, and the
    blocks cover every valid point of the grid exactly once (over-budget points may sit in a block, never
    valid ones outside)."""
    blocks = chunk_blocks(SPACE_4MM2, 500)
    lower, _, area, valid = grid_bounds(ALEXNET, SPACE_4MM2, TECH, "edp", "layer-sum", workers=1)
    objective_all = np.where(valid, lower, np.inf).ravel()
    covered = np.zeros(valid.size, dtype=int)
    for block in blocks:
        assert block.size <= 500
        best = chunk_best(ALEXNET, SPACE_4MM2, TECH, "edp", "layer-sum", block)
        index = block_flat_index(SPACE_4MM2, block).ravel()
        covered[index] += 1
        objective = objective_all[index]
        assert best.valid_points == int(valid.ravel()[index].sum())
        if np.isfinite(objective).any():
            assert best.objective == objective.min()
            assert best.flat_index in index[objective == objective.min()]
    assert covered.max() == 1 and (covered[valid.ravel()] == 1).all()


def test_network_products_solve_only_a_few_points_exactly_per_block():
    assert not is_separable("edp", "network")
    bests = [chunk_best(ALEXNET, SPACE_4MM2, TECH, "edp", "network", b) for b in chunk_blocks(SPACE_4MM2, 1000)]
    total = reduce_bests(bests)
    assert 0 < total.exact_solves < total.valid_points / 4


def test_no_point_in_budget_is_an_input_error_naming_the_least_area():
    tiny = load_space("deepopt-16mm2", TECH).with_budget(0.5)
    # the smallest point: 8x8 PEs and three 4 kB SRAMs (A = J*K*pe_um2 + (f + i + p) kB * 1024 * um2/byte)
    least_mm2 = (8 * 8 * TECH.pe_um2 + 12 * 1024 * TECH.sram_um2_per_byte) / 1e6
    with pytest.raises(InputError, match=f"smallest point needs {least_mm2:.3f} mm"):
        chunked_optimum(ALEXNET, tiny, TECH, "energy", "network", max_points=1000)


def test_a_block_must_hold_a_point():
    with pytest.raises(InputError, match="at least one point"):
        chunk_blocks(SPACE_4MM2, 0)
