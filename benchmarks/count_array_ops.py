"""How many numpy operations the grid pass makes per layer and branch, by the size of what they produce.

    python benchmarks/count_array_ops.py [--spaces paper sram16] [--networks googlenet] [--metrics energy edp]
                                         [--lines 12]

For every space, network and metric, the largest block of the streaming pass
(``grid_blocks.budget_blocks``, blocks of at most 300,000 points) is evaluated
once with ``grid_sums.layer_terms`` on hardware arrays of a numpy subclass that
records every array an operation returns (ufuncs and numpy functions such as
``np.where``). Arrays are classed by which block axes they span, in the pass's
layout (filter, ifmap, psum, pairs): ``full`` (all four), ``ifmap`` (ifmap,
psum, pairs), ``filter`` (filter, psum, pairs), ``psum x pairs`` and
``smaller`` (where the filter and ifmap axes are equally long, as on the
paper's grid, both three-axis kinds count as ``ifmap``). The table gives operations per layer and branch in each class;
``--lines`` lists the source lines of the cost model and the grid pass that make
the most full-block arrays.

Why: the time of one full-block operation is set by the block's size (numpy
runs about 1-2 ns per element for an add or a ``np.where`` on arrays of a few
hundred thousand elements, memory-bound), so the count of full-block
operations per layer and branch bounds the pass's rate from below in numpy,
whatever else is made faster (README "Speed"). Counting slows the pass down;
the counts do not depend on the machine.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from dataclasses import fields
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import SRAM_STEPS, space_file  # noqa: E402

from deepopt_mip.formulation.costmodel.common import ArrayHardware  # noqa: E402
from deepopt_mip.formulation.grid_blocks import budget_blocks  # noqa: E402
from deepopt_mip.formulation.grid_stream import block_hardware  # noqa: E402
from deepopt_mip.formulation.grid_sums import pairs_last, distinct_layers, is_separable, layer_terms  # noqa: E402
from deepopt_mip.formulation.networks import load_network  # noqa: E402
from deepopt_mip.formulation.spaces import load_space  # noqa: E402
from deepopt_mip.formulation.technology import load_technology  # noqa: E402

CLASSES = ("full", "ifmap", "filter", "psum x pairs", "smaller")
PACKAGE_ROOT = Path(__file__).resolve().parent.parent


class Recorder:
    """Counts the arrays returned by operations on :class:`Recorded` arrays, by class and by source line."""

    def __init__(self, block_shape: tuple[int, ...]):
        f, i, p, pairs = block_shape
        self.sizes = {"full": f * i * p * pairs, "ifmap": i * p * pairs, "filter": f * p * pairs,
                      "psum x pairs": p * pairs}
        self.by_class: collections.Counter = collections.Counter()
        self.full_lines: collections.Counter = collections.Counter()

    def classify(self, size: int) -> str:
        for name in CLASSES[:-1]:
            if size >= self.sizes[name]:
                return name
        return "smaller"

    def record(self, result) -> None:
        if not isinstance(result, np.ndarray):
            return
        name = self.classify(result.size)
        self.by_class[name] += 1
        if name == "full":
            self.full_lines[caller_line()] += 1


RECORDER: Recorder | None = None


def caller_line() -> str:
    """The first frame outside numpy and this script: ``module.py:line`` of the project's code."""
    frame = sys._getframe(2)
    while frame is not None and (str(PACKAGE_ROOT) not in frame.f_code.co_filename
                                 or frame.f_code.co_filename == __file__):
        frame = frame.f_back
    return "?" if frame is None else f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno}"


def plain(value):
    """``value`` with every :class:`Recorded` array (also inside lists and tuples) as a plain ndarray."""
    if isinstance(value, Recorded):
        return value.view(np.ndarray)
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    return value


class Recorded(np.ndarray):
    """An ndarray whose operations report what they return to :data:`RECORDER` and stay :class:`Recorded`."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if "out" in kwargs:
            kwargs["out"] = plain(kwargs["out"])
        result = getattr(ufunc, method)(*plain(inputs), **kwargs)
        return self._wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        result = func(*plain(args), **{k: plain(v) for k, v in kwargs.items()})
        return self._wrap(result)

    @staticmethod
    def _wrap(result):
        if isinstance(result, tuple):
            return tuple(Recorded._wrap(r) for r in result)
        RECORDER.record(result)
        return result.view(Recorded) if type(result) is np.ndarray else result


def count(space_path: str, network: str, metric: str, tech) -> tuple[Recorder, int, int]:
    """Record one evaluation of the space's largest block; (recorder, layer-branches, block points)."""
    global RECORDER
    space = load_space(space_path, tech)
    layers = distinct_layers(load_network(network))
    largest = max(budget_blocks(space, 300_000), key=lambda b: b.size)
    hw = pairs_last(block_hardware(space, largest)[0])
    shape = np.broadcast_shapes(*(np.shape(getattr(hw, f.name)) for f in fields(ArrayHardware)))
    RECORDER = Recorder(shape)
    hw = ArrayHardware(*(v.view(Recorded) if isinstance(v, np.ndarray) else v
                         for v in (getattr(hw, f.name) for f in fields(ArrayHardware))))
    separable = is_separable(metric, "network")
    for layer, times in layers:
        layer_terms(layer, times, hw, tech, metric, separable, shape)
    return RECORDER, len(layers) * 5, largest.size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", nargs="+", default=["paper", "sram16"], choices=list(SRAM_STEPS))
    parser.add_argument("--networks", nargs="+", default=["googlenet"])
    parser.add_argument("--metrics", nargs="+", default=["energy", "edp"])
    parser.add_argument("--lines", type=int, default=0, help="list this many source lines making full arrays")
    args = parser.parse_args()
    tech = load_technology()
    print(f"{'space':<9}{'network':<11}{'metric':<8}{'block':>9}" + "".join(f"{c:>14}" for c in CLASSES))
    with tempfile.TemporaryDirectory() as folder:
        for space in args.spaces:
            path = space_file(space, folder)
            for network in args.networks:
                for metric in args.metrics:
                    recorder, per, points = count(path, network, metric, tech)
                    print(f"{space:<9}{network:<11}{metric:<8}{points:>9,}"
                          + "".join(f"{recorder.by_class[c] / per:>14.1f}" for c in CLASSES), flush=True)
                    for line, n in recorder.full_lines.most_common(args.lines):
                        print(f"{'':<37}{n / per:>6.2f}  {line}")


if __name__ == "__main__":
    main()
