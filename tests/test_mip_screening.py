"""The MIP's exact screening of separable objectives: only points that can still win are offered."""

import numpy as np
import pytest

from deepopt_mip.formulation.mip_points import SEPARABLE_OFFER, screen_least, separable_data
from deepopt_mip.formulation.networks import load_network
from deepopt_mip.formulation.spaces import load_space
from deepopt_mip.formulation.technology import load_technology
from deepopt_mip.solvers.enumeration import enumerate_space
from deepopt_mip.solvers.mip import mip_allocate

TECH = load_technology()


def test_screen_least_by_hand():
    objective = np.array([3.0, np.inf, 1.0, 2.0, 2.0, 5.0, 2.0])
    area = np.array([1.0, 1.0, 1.0, 9.0, 4.0, 1.0, 4.0])
    # ranked: 2 (1.0), then the 2.0s by area then index: 4, 6, 3; then 0, 5; index 1 cannot run
    offered, left_out_least = screen_least(objective, area, 3)
    assert offered.tolist() == [2, 4, 6] and left_out_least == 2.0
    offered, left_out_least = screen_least(objective, area, 5)
    assert offered.tolist() == [0, 2, 3, 4, 6] and left_out_least == 5.0
    offered, left_out_least = screen_least(objective, area, 6)
    assert offered.tolist() == [0, 2, 3, 4, 5, 6] and left_out_least == np.inf
    offered, _ = screen_least(objective, area, 100)
    assert offered.tolist() == [0, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("metric, aggregate", [("energy", "network"), ("delay", "network"), ("edp", "layer-sum")])
def test_screened_points_are_the_least_of_every_runnable_point(metric, aggregate):
    network = load_network("squeezenet-v1.1")
    space = load_space("deepopt-16mm2", TECH).with_budget(4)
    every = separable_data(network, space, TECH, metric, aggregate, offer=None)
    screened = separable_data(network, space, TECH, metric, aggregate)
    assert every.points.size == every.runnable_points == screened.runnable_points > SEPARABLE_OFFER
    assert screened.points.size == SEPARABLE_OFFER
    offered = set(screened.points.flat_index.tolist())
    assert offered <= set(every.points.flat_index.tolist())
    left_out = np.array([c for n, c in zip(every.points.flat_index, every.objective) if int(n) not in offered])
    assert left_out.size == every.points.size - SEPARABLE_OFFER
    # the screening argument: nothing left out is below anything offered
    assert left_out.min() == screened.screen_objective >= screened.objective.max()
    assert screened.objective.min() == every.objective.min()


@pytest.mark.parametrize("metric, aggregate", [("energy", "network"), ("delay", "network"), ("e2dp", "layer-sum")])
def test_screened_mip_equals_the_enumeration_and_its_bound_holds(metric, aggregate):
    network = load_network("alexnet")
    space = load_space("deepopt-16mm2", TECH).with_budget(6)
    mip = mip_allocate(network, space, TECH, metric, aggregate)
    enum = enumerate_space(network, space, TECH, metric, aggregate, top_k=0)
    assert mip.status == "optimal" and mip.objective == pytest.approx(enum.objective, rel=1e-9)
    assert mip.best_bound <= enum.objective * (1 + 1e-9)
    assert mip.points == enum.points
