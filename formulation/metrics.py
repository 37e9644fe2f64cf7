"""Performance metrics and how layer costs aggregate into one number.

A metric is E^a * D^b (docs/model.md section 5.4):

=========  ===  ===
metric      a    b
=========  ===  ===
energy      1    0
delay       0    1
edp         1    1
e2dp        2    1
ed2p        1    2
=========  ===  ===

* ``network`` aggregation: (sum_l E_l)^a * (sum_l D_l)^b, what a chip does.
* ``layer-sum`` aggregation: sum_l E_l^a * D_l^b, what the reference computes.

Energy is in joules and delay in cycles throughout.
"""

from __future__ import annotations

import numpy as np

from deepopt_mip.formulation.costmodel.common import Number
from deepopt_mip.formulation.errors import InputError

METRIC_EXPONENTS: dict[str, tuple[int, int]] = {
    "energy": (1, 0),
    "delay": (0, 1),
    "edp": (1, 1),
    "e2dp": (2, 1),
    "ed2p": (1, 2),
}
METRIC_LABELS = {"energy": "E [J]", "delay": "D [cycles]", "edp": "E*D [J*cycles]",
                 "e2dp": "E^2*D [J^2*cycles]", "ed2p": "E*D^2 [J*cycles^2]"}
AGGREGATIONS = ("network", "layer-sum")


def check_metric(metric: str) -> tuple[int, int]:
    """The exponents (a, b) of ``metric``; a clear error for an unknown name."""
    try:
        return METRIC_EXPONENTS[metric]
    except KeyError:
        raise InputError(f"unknown metric {metric!r}: choose one of {', '.join(METRIC_EXPONENTS)}") from None


def check_aggregate(aggregate: str) -> str:
    if aggregate not in AGGREGATIONS:
        raise InputError(f"unknown aggregation {aggregate!r}: choose one of {', '.join(AGGREGATIONS)}")
    return aggregate


def metric_value(energy_j: Number, delay_cycles: Number, metric: str) -> Number:
    """E^a * D^b, with inf wherever a quantity the metric uses is inf.

    A quantity with exponent 0 does not enter (an energy-only metric ignores
    an infinite delay, as the reference does for ZiXYZo).
    """
    a, b = check_metric(metric)
    energy = np.asarray(energy_j, dtype=float)
    delay = np.asarray(delay_cycles, dtype=float)
    shape = np.broadcast(energy, delay).shape
    # E^a D^b without multiplying an array of ones first (1 * x is x: the same numbers, fewer passes),
    # nor raising to the power 1 (x**1 is x)
    if a and b:
        value = (energy if a == 1 else energy**a) * (delay if b == 1 else delay**b)
    elif a or b:
        value = energy**a if a else delay**b
        if np.shape(value) != shape:
            value = np.broadcast_to(value, shape).copy()
    else:
        value = np.ones(shape)
    return value
