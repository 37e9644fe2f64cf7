"""The MIP's streamed screening against the screen over the whole grid (brute force over the full-grid
pass), on random small spaces and networks, with blocks small enough to split every grid."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepopt_mip.formulation import memory
from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.grid_stream import stream_memory_bytes
from deepopt_mip.formulation.grid_sums import grid_sums, grid_sums_memory_bytes
from deepopt_mip.formulation.metrics import metric_value
from deepopt_mip.formulation.mip_points import frontier_data, least_pairs, screen_least, separable_data
from deepopt_mip.formulation.networks import load_network
from deepopt_mip.formulation.spaces import grid_shape, load_space
from deepopt_mip.formulation.spaces import parse_space
from test_grid_stream import TECH, networks, space_text

SMALL_BLOCKS = st.sampled_from([40, 300, 3000])


@st.composite
def spaces(draw):
    """Small random spaces (a few hundred to a few thousand points), so that small blocks split them."""
    lo = draw(st.integers(4, 16))

    def axis():
        return lo, lo + draw(st.integers(0, 24)), draw(st.integers(2, 8))

    def sizes():
        values = draw(st.lists(st.integers(4, 160), min_size=1, max_size=4, unique=True))
        return sorted(float(v) for v in values)

    rows, cols, f, i, p = axis(), axis(), sizes(), sizes(), sizes()
    smallest_mm2 = (lo * lo * TECH.pe_um2 + (f[0] + i[0] + p[0]) * 1024 * TECH.sram_um2_per_byte) / 1e6
    budget = round(smallest_mm2 * draw(st.floats(0.9, 4.0)), 3)
    return parse_space(space_text(rows, cols, draw(st.sampled_from([0.0, 0.5])), f, i, p, budget), "random.yaml",
                       TECH)


def full_grid_frontier_screen(network, space, metric):
    """The screen of docs/mip.md section 4 over the whole grid, by brute force: a runnable point is kept
    unless some feasible schedule of some runnable point lies at or below its ideal corner and differs from
    it, or (with a product metric) its corner's product exceeds the least product of those schedules."""
    sums, _, valid = grid_sums(network, space, TECH, metric or "edp", False, workers=1)
    e_min, d_min, *schedules = (s.ravel() for s in sums)
    runnable = np.flatnonzero(valid.ravel() & np.isfinite(e_min) & np.isfinite(d_min))
    if runnable.size == 0:
        return runnable, np.inf, int(valid.sum())
    pairs_e = np.concatenate([schedules[k][runnable] for k in (0, 2, 4)])
    pairs_d = np.concatenate([schedules[k][runnable] for k in (1, 3, 5)])
    e, d = e_min[runnable, None], d_min[runnable, None]
    dominated = ((pairs_e <= e) & (pairs_d <= d) & ((pairs_e < e) | (pairs_d < d))).any(axis=1)
    keep = ~dominated
    if metric is not None:
        keep &= metric_value(e_min[runnable], d_min[runnable], metric) <= metric_value(pairs_e, pairs_d,
                                                                                       metric).min()
    return runnable[keep], d_min[runnable].min(), int(valid.sum())


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spaces(), networks(), st.sampled_from([None, "edp", "e2dp", "ed2p"]), SMALL_BLOCKS)
def test_streamed_frontier_screen_equals_the_full_grid_screen(space, network, metric, max_points):
    want, floor, valid = full_grid_frontier_screen(network, space, metric)
    if want.size == 0:
        with pytest.raises(InputError):
            frontier_data(network, space, TECH, metric, workers=1, max_points=max_points)
        return
    data = frontier_data(network, space, TECH, metric, workers=1, max_points=max_points)
    assert data.points.flat_index.tolist() == want.tolist()
    assert data.delay_floor_cycles == floor
    assert data.points.grid_points == valid


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spaces(), networks(), st.sampled_from([("energy", "network"), ("delay", "network"), ("edp", "layer-sum")]),
       st.integers(1, 6), SMALL_BLOCKS)
def test_streamed_separable_screen_equals_the_full_grid_screen(space, network, objective, offer, max_points):
    metric, aggregate = objective
    (values,), area, valid = grid_sums(network, space, TECH, metric, True, workers=1)
    flat_values = np.where(valid.ravel(), values.ravel(), np.inf)
    runnable = int(np.isfinite(flat_values).sum())
    if runnable == 0:
        with pytest.raises(InputError):
            separable_data(network, space, TECH, metric, aggregate, workers=1, offer=offer, max_points=max_points)
        return
    want, want_screen = screen_least(flat_values, area.ravel(), offer)
    data = separable_data(network, space, TECH, metric, aggregate, workers=1, offer=offer, max_points=max_points)
    assert data.points.flat_index.tolist() == want.tolist()
    assert data.objective.tolist() == flat_values[want].tolist()
    assert data.points.area_um2.tolist() == area.ravel()[want].tolist()
    assert data.screen_objective == want_screen
    assert data.runnable_points == runnable and data.points.grid_points == int(valid.sum())


def test_least_pairs_by_hand():
    energy = np.array([3.0, 1.0, 2.0, 1.0, 2.0, 4.0, 1.0])
    delay = np.array([1.0, 5.0, 2.0, 5.0, 4.0, 1.0, 6.0])
    e, d = least_pairs(energy, delay)
    assert list(zip(e.tolist(), d.tolist())) == [(1.0, 5.0), (2.0, 2.0), (3.0, 1.0)]


def test_a_space_too_large_for_the_full_grid_pass_now_runs_in_the_streaming_pass_memory(monkeypatch):
    """With memory for one worker's blocks of 2,000 points but not for the full-grid pass (arrays of the
    cube and chunks of whole J/K pairs), the MIP's screening runs."""
    space = load_space("deepopt-16mm2", TECH).with_budget(3)
    network = load_network("alexnet")
    available = stream_memory_bytes(2000, 1) + 2**20
    assert grid_sums_memory_bytes(grid_shape(space), False, int(np.prod(grid_shape(space))), 1) > available
    monkeypatch.setattr(memory, "available_bytes", lambda: available)
    with pytest.raises(InputError, match="would need about"):
        grid_sums(network, space, TECH, "edp", False, workers=1)
    assert separable_data(network, space, TECH, "energy", "network", workers=1, max_points=2000).points.size > 0
    assert frontier_data(network, space, TECH, "edp", workers=1, max_points=2000).points.size > 0
