"""The streaming grid pass: its blocks cover the in-budget points once, respect the block size, and the
enumeration over them returns what the full-grid enumeration returns (best point, objective, runners-up,
worst point), on random small spaces and networks."""

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepopt_mip.formulation.grid_blocks import (BAND_COUNTS, _group_costs, _parts, budget_blocks, in_budget_points,
                                                pair_groups)
from deepopt_mip.formulation.grid_stream import Candidates, keep_candidates
from deepopt_mip.formulation.networks import Network, load_network
from deepopt_mip.formulation.spaces import grid_chunks, grid_shape, load_space, parse_space
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.solvers.enumeration import enumerate_space

TECH = load_technology()
NETWORK_LAYERS = {name: load_network(name).layers for name in ("alexnet", "squeezenet-v1.1", "googlenet")}


def space_text(rows, cols, ratio, f, i, p, budget):
    return f"""
name: random
rows: {{min: {rows[0]}, max: {rows[1]}, step: {rows[2]}}}
cols: {{min: {cols[0]}, max: {cols[1]}, step: {cols[2]}}}
aspect_min_ratio: {ratio}
sram_kb: {{filter: {f}, ifmap: {i}, psum: {p}}}
bits: {{filter: 8, ifmap: 8, psum: 32}}
dram: {{bandwidth_bits_per_cycle: 128, block_bits: 128}}
area: {{budget_mm2: {budget}, tolerance: 0.0}}
"""


@st.composite
def spaces(draw):
    lo = draw(st.integers(4, 16))  # J and K start together, so the aspect rule leaves some pairs

    def axis():
        return lo, lo + draw(st.integers(0, 40)), draw(st.integers(1, 8))

    def sizes():
        values = draw(st.lists(st.integers(4, 160), min_size=1, max_size=6, unique=True))
        return sorted(float(v) for v in values)

    rows, cols, f, i, p = axis(), axis(), sizes(), sizes(), sizes()
    # a budget from the smallest point's area to a few times it, so most spaces hold some points
    smallest_mm2 = (lo * lo * TECH.pe_um2 + (f[0] + i[0] + p[0]) * 1024 * TECH.sram_um2_per_byte) / 1e6
    budget = round(smallest_mm2 * draw(st.floats(0.9, 4.0)), 3)
    text = space_text(rows, cols, draw(st.sampled_from([0.0, 0.25, 0.5])), f, i, p, budget)
    return parse_space(text, "random.yaml", TECH)


@st.composite
def networks(draw):
    name = draw(st.sampled_from(sorted(NETWORK_LAYERS)))
    layers = NETWORK_LAYERS[name]
    chosen = draw(st.lists(st.integers(0, len(layers) - 1), min_size=1, max_size=4, unique=True))
    return Network(name=f"{name}-part", layers=tuple(layers[n] for n in sorted(chosen)), source="test")


def valid_mask(space):
    valid = np.zeros(grid_shape(space), dtype=bool)
    for chunk in grid_chunks(space, 10**6):
        valid[chunk.pairs] = chunk.valid
    return valid


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spaces(), st.integers(1, 5000))
def test_blocks_cover_every_in_budget_point_once_within_the_block_size(space, max_points):
    shape = grid_shape(space)
    if 0 in shape:
        assert list(budget_blocks(space, max_points)) == []
        return
    count = np.zeros(shape, dtype=int)
    for block in budget_blocks(space, max_points):
        assert 1 <= block.size <= max_points
        count[block.pairs, block.f, block.i, block.p] += 1
    assert count.max(initial=0) <= 1
    rows, cols = space.array_pairs()
    f, i, p = (np.asarray(s) for s in space.fitting_sizes())
    area = space.area_um2(rows[:, None, None, None], cols[:, None, None, None], f[None, :, None, None],
                          i[None, None, :, None], p[None, None, None, :])
    in_budget = area <= space.limit_um2
    assert (count[in_budget] == 1).all()
    assert in_budget_points(space) >= in_budget.sum()


def group_cost(rooms, sizes, group, max_points, bands=None):
    """The estimated cost of one group of pairs (with ``bands``, else its best band count)."""
    choices = BAND_COUNTS if bands is None else (bands,)
    return min(int(_group_costs(_parts(float(rooms[group[0]]), sizes, max_points, b), np.array([len(group)]),
                                max_points)[0]) for b in choices)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-20, 400), min_size=1, max_size=7),
       st.lists(st.lists(st.integers(4, 160), min_size=1, max_size=5, unique=True), min_size=3, max_size=3),
       st.integers(50, 5000))
def test_pair_groups_are_the_least_cost_cut_of_the_pairs_by_room(rooms, sizes, max_points):
    """The groups are consecutive runs of the pairs with room, sorted by room (largest first), and their
    estimated cost is the least over every way to cut that sequence into runs (brute force)."""
    rooms = np.asarray(rooms)
    sizes = tuple(np.asarray(sorted(s), dtype=float) for s in sizes)
    order = [int(n) for n in np.lexsort((np.arange(rooms.size), -rooms)) if rooms[n] > 0]
    groups = pair_groups(rooms, sizes, max_points)
    assert [int(n) for group, _ in groups for n in group] == order
    if not order:
        return
    found = sum(group_cost(rooms, sizes, group, max_points, bands) for group, bands in groups)
    least = min((sum(group_cost(rooms, sizes, order[a:b], max_points) for a, b in zip(cuts[:-1], cuts[1:]))
                 for inner in itertools.product((False, True), repeat=len(order) - 1)
                 for cuts in [[0] + [n + 1 for n, cut in enumerate(inner) if cut] + [len(order)]]))
    assert found == least


def test_fine_space_blocks_skip_most_of_the_cube():
    """SRAM sizes in 16 kB steps: the blocks hold less than a fifth of the cube (it is ~5% in budget)."""
    text = space_text((8, 200, 2), (8, 200, 2), 0.5, *[{"min": 4, "max": 500, "step": 16}] * 3, 16)
    space = parse_space(text.replace("'", ""), "fine.yaml", TECH)
    evaluated = sum(block.size for block in budget_blocks(space, 300_000))
    assert evaluated < 0.2 * np.prod(grid_shape(space))
    assert evaluated >= in_budget_points(space)


def same_solution(a, b):
    return (a.hardware == b.hardware and a.objective == b.objective and a.runners_up == b.runners_up
            and a.worst == b.worst and a.points == b.points and a.branches == b.branches)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spaces(), networks(), st.sampled_from(["energy", "delay", "edp", "e2dp", "ed2p"]),
       st.sampled_from(["network", "layer-sum"]), st.integers(0, 4), st.integers(1, 3000))
def test_streamed_enumeration_equals_the_full_grid(space, network, metric, aggregate, top_k, max_points):
    results = []
    for full in (True, False):
        try:
            results.append(enumerate_space(network, space, TECH, metric, aggregate, top_k, max_points=max_points,
                                           workers=1, full_grid=full, prune=False))
        except ValueError as exc:  # InputError: no point fits, or none runs every layer
            results.append(str(exc))
    full, streamed = results
    if isinstance(full, str):
        assert streamed == full
    else:
        assert same_solution(full, streamed)
        assert streamed.points_evaluated <= full.points_evaluated


@pytest.mark.parametrize("metric", ["energy", "edp"])
def test_streamed_enumeration_with_workers_equals_the_full_grid_on_the_builtin_space(metric):
    space = load_space("deepopt-16mm2", TECH)
    network = load_network("alexnet")
    full = enumerate_space(network, space, TECH, metric, "network", 3, workers=1, full_grid=True)
    streamed = enumerate_space(network, space, TECH, metric, "network", 3, max_points=20_000, workers=2, prune=False)
    assert same_solution(full, streamed)


@given(st.lists(st.tuples(st.floats(0, 10), st.floats(0, 10), st.sampled_from([1.0, 2.0])), max_size=30),
       st.integers(1, 4), st.booleans(), st.integers(1, 29))
def test_keeping_from_kept_parts_keeps_what_keeping_from_the_whole_keeps(rows, k, separable, cut):
    """keep(keep(A) + keep(B)) == keep(A + B): the candidates do not depend on the blocks."""
    lower = np.array([r[0] for r in rows])
    upper = lower if separable else lower + np.array([r[1] for r in rows])
    found = Candidates(np.arange(len(rows), dtype=np.int64), lower, upper, np.array([r[2] for r in rows]))
    whole = keep_candidates(found, k, separable)
    cut = min(cut, len(rows))
    parts = [keep_candidates(found.take(np.arange(cut)), k, separable),
             keep_candidates(found.take(np.arange(cut, len(rows))), k, separable)]
    again = keep_candidates(Candidates.joined(parts), k, separable)
    assert np.array_equal(again.index, whole.index)


def test_progress_counts_evaluated_points_up_to_the_total():
    space = load_space("deepopt-16mm2", TECH).with_budget(6)
    calls = []
    solution = enumerate_space(load_network("alexnet"), space, TECH, "energy", "network", 1,
                               progress=lambda done, total: calls.append((done, total)), max_points=5_000,
                               workers=1)
    dones = [done for done, _ in calls]
    assert len(calls) > 1 and dones == sorted(dones)
    assert calls[-1] == (solution.points_unpruned, solution.points_unpruned)  # skipped blocks count as done
    assert solution.points_evaluated <= solution.points_unpruned < np.prod(grid_shape(space))
