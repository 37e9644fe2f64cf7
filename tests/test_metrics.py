import numpy as np
import pytest

from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.metrics import check_metric, metric_value


def test_exponents():
    assert metric_value(2.0, 3.0, "energy") == 2.0
    assert metric_value(2.0, 3.0, "delay") == 3.0
    assert metric_value(2.0, 3.0, "edp") == 6.0
    assert metric_value(2.0, 3.0, "e2dp") == 12.0
    assert metric_value(2.0, 3.0, "ed2p") == 18.0


def test_energy_metric_ignores_infinite_delay():
    assert metric_value(2.0, np.inf, "energy") == 2.0
    assert np.isinf(metric_value(2.0, np.inf, "edp"))


def test_unknown_metric_is_a_clear_error():
    with pytest.raises(InputError, match="unknown metric 'speed'"):
        check_metric("speed")
