"""The fusion program streamed over the in-budget points against the full-grid pass (formulation/fusion_stream.py).

* The slabs cover every in-budget point once, one ifmap SRAM size each.
* Keeping every point, the streamed values and sums are the full pass's, bit
  for bit, whatever the slab size and the workers.
* Keeping from kept parts keeps what keeping from the whole keeps.
* The frontier's slabs keep exactly the corners no unfused schedule
  dominates, and nothing else; the tables built on demand for the points
  the sweep solves are those built for every offered point.
* The enumeration and the MIP with fusion give the same solution streamed
  and over the whole grid (energy and E*D), also where the kept points do not
  settle the search and the pass runs again.
* The memory check refuses a pass too large in one line, before any work.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepopt_mip.formulation import memory
from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.fusion_grid import fusion_sums
from deepopt_mip.formulation.fusion_stream import (FusedPoints, FusionStream, KeepRule, fusion_slabs,
                                                   stream_fusion)
from deepopt_mip.formulation.fusion_mip_points import (FrontierDataOnDemand, achievable_pairs, frontier_corners,
                                                       fused_corners, fusion_frontier_data)
from deepopt_mip.formulation.graph import NETWORK_INPUT
from deepopt_mip.formulation.mip_points import undominated_corners
from deepopt_mip.formulation.networks import Network, load_network
from deepopt_mip.formulation.spaces import AxisRange, grid_shape, load_space
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.scripts.cli import main
from deepopt_mip.solvers import fusion_enumeration, fusion_mip
from deepopt_mip.solvers.fusion_enumeration import enumerate_fusion
from deepopt_mip.solvers.fusion_mip import mip_fusion_allocate
from test_grid_stream import spaces

TECH = load_technology(None)


def _fire_modules(end: int) -> Network:
    full = load_network("squeezenet-v1.1")
    return Network(f"fire6-{end}", full.layers[13:end], inputs=(NETWORK_INPUT,) + full.inputs[14:end])


@pytest.fixture(scope="module")
def small_space():
    """4 mm^2, 16 PE rows, 8 kB psum SRAM: K, the filter and the ifmap SRAM vary (142 valid points)."""
    return load_space("deepopt-16mm2", TECH).with_budget(4).restricted(rows=16, psram_kb=8)


@pytest.fixture(scope="module")
def fusing_space():
    """32 PE rows, 16 kB filter and 8 kB psum SRAM at 16 mm^2, ifmap SRAMs up to 256 kB: fusion pays here."""
    base = load_space("deepopt-16mm2", TECH).restricted(rows=32, psram_kb=8, fsram_kb=16)
    return replace(base, cols=AxisRange(16, 40, 4), isram_kb=(16.0, 32.0, 64.0, 128.0, 256.0))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spaces(), st.integers(1, 3000))
def test_slabs_cover_every_in_budget_point_once_one_ifmap_size_each(space, max_points):
    shape = grid_shape(space)
    count = np.zeros(shape, dtype=int)
    for slab in fusion_slabs(space, max_points):
        assert 1 <= slab.size <= max_points and slab.i.stop - slab.i.start == 1
        count[slab.pairs, slab.f, slab.i, slab.p] += 1
    if 0 in shape:
        return
    rows, cols = space.array_pairs()
    f, i, p = (np.asarray(s) for s in space.fitting_sizes())
    area = space.area_um2(rows[:, None, None, None], cols[:, None, None, None], f[None, :, None, None],
                          i[None, None, :, None], p[None, None, None, :])
    assert count.max(initial=0) <= 1 and (count[area <= space.limit_um2] == 1).all()


@pytest.mark.parametrize("metric, aggregate", [("energy", "network"), ("edp", "network"), ("edp", "layer-sum")])
@pytest.mark.parametrize("max_points, workers", [(9, 1), (60, 2), (50_000, 1)])
@pytest.mark.parametrize("budget_mm2", [2, 16])
def test_streamed_values_are_the_full_pass_bit_for_bit(fusing_space, budget_mm2, metric, aggregate, max_points,
                                                       workers):
    """On the fusing space and on a 2 mm^2 space where J, K, the ifmap and the psum SRAM vary."""
    network = _fire_modules(17)
    space = fusing_space if budget_mm2 == 16 else load_space("deepopt-16mm2", TECH).with_budget(2).restricted(
        fsram_kb=16)
    sums, area, valid = fusion_sums(network, space, TECH, metric, aggregate)
    streamed = stream_fusion(network, space, TECH, metric, aggregate, KeepRule.everything(),
                             max_points=max_points, workers=workers)
    points = streamed.points
    assert streamed.valid_points == valid.sum() >= 30 and np.isinf(streamed.left_out)
    assert len(list(fusion_slabs(space, max_points))) >= (3 if max_points < 100 else 1)
    assert np.array_equal(points.index, np.flatnonzero(valid.ravel()))
    assert np.array_equal(points.area_um2, area.ravel()[points.index])
    for got, full in zip(points.sums, sums, strict=True):
        assert np.array_equal(got, full.ravel()[points.index])


@pytest.mark.parametrize("max_points, workers", [(9, 1), (60, 2), (50_000, 1)])
@pytest.mark.parametrize("budget_mm2", [8, 16])
def test_the_frontier_slabs_keep_exactly_the_corners_no_unfused_schedule_dominates(fusing_space, budget_mm2,
                                                                                   max_points, workers):
    """The frontier's screen in the slabs against the screen applied afterwards to every runnable point's
    corner (how the frontier screened before): the same points with the same corners, bit for bit, and
    the parent holds no other point."""
    network = _fire_modules(17)
    space = fusing_space.with_budget(budget_mm2)
    every = fused_corners(network, space, TECH)
    pairs = achievable_pairs(network, space, TECH)
    at = every.positions(every.runnable)
    expected = every.runnable[undominated_corners(every.energy_j[at], every.delay_cycles[at], *pairs)]
    assert 0 < expected.size < every.runnable.size
    screened = frontier_corners(network, space, TECH, workers=workers, max_points=max_points)
    assert np.array_equal(screened.index, expected) and np.array_equal(screened.runnable, expected)
    assert screened.valid_points == every.valid_points
    back = every.positions(expected)
    for got, full in ((screened.energy_j, every.energy_j), (screened.delay_cycles, every.delay_cycles),
                      (screened.area_um2, every.area_um2)):
        assert np.array_equal(got, full[back])


@pytest.mark.parametrize("batch", [1, 3, 256])
def test_frontier_tables_built_on_demand_are_those_of_every_offered_point(fusing_space, batch):
    """Asked for in a shuffled order, a batch at a time, each offered point's data is the one built over
    every offered point at once: the same points, modes, capacities, corners and tables, bit for bit."""
    network = _fire_modules(17)
    corners = frontier_corners(network, fusing_space, TECH)
    every = fusion_frontier_data(network, fusing_space, TECH, corners, corners.runnable)
    lazy = FrontierDataOnDemand(network, fusing_space, TECH, corners, corners.runnable, batch)
    assert np.array_equal(lazy.points.flat_index, every.points.flat_index) and lazy.modes == every.modes
    assert lazy.delay_floor_cycles == every.delay_floor_cycles
    for n in np.random.default_rng(7).permutation(every.points.size).tolist():
        got, want = lazy.at(n), every.at(n)
        assert got.modes == want.modes and np.array_equal(got.points.flat_index, want.points.flat_index)
        for a, b in ((got.capacity_bits, want.capacity_bits), (got.corner_energy_j, want.corner_energy_j),
                     (got.corner_delay_cycles, want.corner_delay_cycles), (got.points.area_um2, want.points.area_um2)):
            assert np.array_equal(a, b)
        assert got.energy_j.keys() == want.energy_j.keys()
        for key in want.energy_j:
            assert np.array_equal(got.energy_j[key], want.energy_j[key])
            assert np.array_equal(got.delay_cycles[key], want.delay_cycles[key])


def _stream(values, uppers, cut):
    """A pass over points 0..n-1 with ``values`` (and unfused ``uppers``) in parts cut at ``cut``."""
    n = values.size
    parts = np.split(np.arange(n), sorted(set(cut)))
    return [(FusedPoints(idx, np.ones(idx.size), values[idx], (values[idx],)), uppers[idx]) for idx in parts]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 30)), min_size=1, max_size=40),
       st.integers(0, 5), st.integers(0, 4), st.booleans(), st.lists(st.integers(0, 40), max_size=6))
def test_keeping_from_kept_parts_keeps_what_keeping_from_the_whole_keeps(rows, first, uppers, bounded, cut):
    values = np.array([float(v) if v < 19 else np.inf for v, _ in rows])
    upper = np.array([float(v + u) if u < 28 else np.inf for v, u in rows])
    rule = KeepRule(first=first, tolerance=0.05, uppers=uppers, margin=0.01, bounded_by_uppers=bounded)

    def start(points, up):
        least = np.sort(up[np.isfinite(up)])[:rule.uppers]
        return FusionStream(points, least, np.inf, int(points.index.size)).kept(rule)

    empty = FusionStream(FusedPoints.empty(1), np.zeros(0), np.inf, 0)
    whole = empty.merged(start(*_stream(values, upper, [])[0]), rule)
    parts = empty
    for points, up in _stream(values, upper, cut):
        parts = parts.merged(start(points, up), rule)
    assert np.array_equal(parts.points.index, whole.points.index)
    assert parts.left_out == whole.left_out and np.array_equal(parts.least_uppers, whole.least_uppers)
    limit = whole.threshold(rule)
    finite = np.isfinite(values)
    assert np.array_equal(whole.points.index, np.flatnonzero(finite & (values <= limit)))
    dropped = values[finite & (values > limit)]
    assert whole.left_out == (dropped.min() if dropped.size else np.inf)


def _same(a, b):
    assert a.solution.to_dict(timings=False) == b.solution.to_dict(timings=False)
    assert a.fused == b.fused and a.unfused == b.unfused


@pytest.mark.parametrize("metric, max_points, workers", [("energy", 7, 1), ("edp", 40, 2)])
def test_streamed_enumeration_equals_the_full_grid(small_space, metric, max_points, workers):
    """Optimum, runners-up, fused edges and schedule, bit for bit, from several slabs and workers."""
    network = _fire_modules(22)
    full = enumerate_fusion(network, small_space, TECH, metric, "network", top_k=4, full_grid=True)
    streamed = enumerate_fusion(network, small_space, TECH, metric, "network", top_k=4, max_points=max_points,
                                workers=workers)
    _same(streamed, full)
    assert len(full.solution.runners_up) == 4 and full.solution.points == 142


def test_products_keep_few_points_and_search_again_where_the_kept_ones_do_not_settle(fusing_space, monkeypatch):
    """E*D: the kept points are few; with the unfused bound cut to a tenth (so the kept points miss some of
    the best), the search notices and runs again over every point: the same solution."""
    network = _fire_modules(17)
    kept = stream_fusion(network, fusing_space, TECH, "edp", "network",
                         KeepRule(uppers=3, margin=fusion_enumeration.UPPER_MARGIN), unfused="least")
    assert kept.points.index.size < kept.valid_points / 2 and np.isfinite(kept.left_out)
    full = enumerate_fusion(network, fusing_space, TECH, "edp", "network", top_k=2, full_grid=True)
    _same(enumerate_fusion(network, fusing_space, TECH, "edp", "network", top_k=2, max_points=30), full)
    passes = []
    monkeypatch.setattr(fusion_enumeration, "UPPER_MARGIN", -0.9)
    monkeypatch.setattr(fusion_enumeration, "stream_fusion",
                        lambda *a, **k: passes.append(a[5]) or stream_fusion(*a, **k))
    _same(enumerate_fusion(network, fusing_space, TECH, "edp", "network", top_k=2, max_points=30), full)
    assert passes == [KeepRule(uppers=3, margin=-0.9), KeepRule.everything()]


def test_mip_products_pass_again_where_a_round_needs_points_left_out(fusing_space, monkeypatch):
    """E*D by MIP with one point in the first round (so that a second round follows): the same solution and
    bound when the pass keeps that point alone (the unfused bound cut to a tenth) and must pass again for
    the second round; equal to the enumeration."""
    network = _fire_modules(17)
    monkeypatch.setattr(fusion_mip, "FIRST_OFFER", 1)
    streamed = mip_fusion_allocate(network, fusing_space, TECH, "edp", "network")
    passes = []
    monkeypatch.setattr(fusion_mip, "UPPER_MARGIN", -0.9)
    monkeypatch.setattr(fusion_mip, "fused_corners", lambda *a: passes.append(a[5]) or fused_corners(*a))
    again = mip_fusion_allocate(network, fusing_space, TECH, "edp", "network", workers=2)
    _same(again, streamed)
    assert len(passes) == 2 and np.isfinite(passes[1].threshold)
    enum = enumerate_fusion(network, fusing_space, TECH, "edp", "network", top_k=0)
    assert streamed.solution.objective == pytest.approx(enum.solution.objective, rel=1e-9)


def test_the_fusion_pass_is_refused_up_front_when_the_machine_lacks_memory(monkeypatch, capsys):
    monkeypatch.setattr(memory, "available_bytes", lambda: 2**20)
    for solver in ("enumerate", "mip"):
        status = main(["allocate", "--network", "squeezenet-v1.1", "--metric", "energy", "--fusion", "--quiet",
                       "--solver", solver, "--workers", "1"])
        err = capsys.readouterr().err
        assert status == 2 and len(err.strip().splitlines()) == 1
        assert err.startswith("deepopt-mip: error: the fusion program over space 'deepopt-16mm2' (1 worker x "
                              "blocks of 50,000 points) would need about")
    with pytest.raises(InputError, match="would need about"):
        stream_fusion(_fire_modules(17), load_space("deepopt-16mm2", TECH), TECH, "energy", "network",
                      KeepRule(first=1), workers=1)
