"""Fixtures shared by several test files: reference sweeps that more than one file compares against.

Each is run once per session, serially in this process; the tests only read its output folder."""

import pytest

from deepopt_mip.sweeps.sweep import sweep
from sweep_cases import NINE, SMALL, write_sweep


@pytest.fixture(scope="session")
def serial_small(tmp_path_factory):
    """The SMALL study run cell after cell in this process, plots drawn: (output folder, SweepResult)."""
    folder = tmp_path_factory.mktemp("serial_small")
    result = sweep(write_sweep(folder, SMALL), folder / "out", workers=1)
    return folder / "out", result


@pytest.fixture(scope="session")
def serial_nine(tmp_path_factory):
    """The NINE study run cell after cell in this process, no plots: (output folder, SweepResult)."""
    folder = tmp_path_factory.mktemp("serial_nine")
    result = sweep(write_sweep(folder, NINE), folder / "out", workers=1, plots=False)
    return folder / "out", result
