"""A Conv or FC layer of a workload, as written in a network file.

Shapes follow the paper's notation: ifmap H x W (unpadded) with ``pad``
pixels of zero padding per side, C input channels, R x S filters, F filters,
E x G ofmap, stride U, ``groups`` channel groups and a ``batch`` of images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Union

import numpy as np

from deepopt_mip.formulation.errors import InputError

Number = Union[int, float, np.ndarray]
"""A scalar or a numpy array that broadcasts against the other fields."""

LAYER_KINDS = ("conv", "fc")
MAX_FIELD = 2**31 - 1
"""Largest value of any size field (and of ``pad``): larger ones are typos, and overflow float arithmetic."""


@dataclass(frozen=True)
class LayerShape:
    """One convolution (one group of it) as the cost model's branch functions see it.

    ``ifmap_h``/``ifmap_w`` are the *padded* ifmap sizes (H + 2*pad). Any field
    may be an array (the subvolume wrappers call a branch on hardware-dependent
    widths and heights).
    """

    filter_h: Number  # R
    filter_w: Number  # S
    ifmap_h: Number  # H, padded
    ifmap_w: Number  # W, padded
    channels: Number  # C (per group)
    ofmap_h: Number  # E
    ofmap_w: Number  # G
    filters: Number  # F (per group)
    stride: Number  # U

    def replace(self, **changes: Number) -> "LayerShape":
        return replace(self, **changes)


@dataclass(frozen=True)
class Layer:
    """One Conv/FC layer.

    ``pad`` is per side and may be a multiple of 0.5: GoogleNet-v1's first
    layer pads 2 pixels on one side and 3 on the other, written 2.5 as in the
    reference. The padded ifmap is H + 2*pad. FC layers are 1x1 ifmap, 1x1
    filter and 1x1 ofmap with C inputs and F outputs.
    """

    name: str
    kind: str
    ifmap_h: int
    ifmap_w: int
    pad: float
    channels: int
    filter_h: int
    filter_w: int
    filters: int
    ofmap_h: int
    ofmap_w: int
    stride: int = 1
    groups: int = 1
    batch: int = 1

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise InputError(f"layer {self.name!r}: " + "; ".join(problems))

    def problems(self) -> list[str]:
        """Every inconsistency of this layer's fields, as short phrases."""
        out: list[str] = []
        if not self.name or not str(self.name).strip():
            out.append("name is empty")
        if self.kind not in LAYER_KINDS:
            out.append(f"kind {self.kind!r} is not one of {', '.join(LAYER_KINDS)}")
        positive = ("ifmap_h", "ifmap_w", "channels", "filter_h", "filter_w", "filters",
                    "ofmap_h", "ofmap_w", "stride", "groups", "batch")
        for field in positive:
            value = getattr(self, field)
            if not isinstance(value, (int,)) or isinstance(value, bool) or value < 1:
                out.append(f"{field} must be a positive integer, got {value!r}")
            elif value > MAX_FIELD:
                out.append(f"{field} {value} is larger than {MAX_FIELD}")
        if (not isinstance(self.pad, (int, float)) or isinstance(self.pad, bool) or not 0 <= self.pad <= MAX_FIELD
                or (2 * self.pad) != int(2 * self.pad)):
            out.append(f"pad must be a multiple of 0.5 from 0 to {MAX_FIELD}, got {self.pad!r}")
        if out:
            return out
        if self.channels % self.groups or self.filters % self.groups:
            out.append(f"channels {self.channels} and filters {self.filters} must both divide by groups {self.groups}")
        if self.kind == "fc":
            ones = ("ifmap_h", "ifmap_w", "filter_h", "filter_w", "ofmap_h", "ofmap_w")
            not_one = [f for f in ones if getattr(self, f) != 1]
            if not_one or self.pad:
                out.append("an fc layer has 1x1 ifmap, filter and ofmap and no padding "
                           f"(got {', '.join(f'{f}={getattr(self, f)}' for f in not_one) or f'pad={self.pad}'})")
        for axis, ifmap, filt, ofmap in (("h", self.padded_h, self.filter_h, self.ofmap_h),
                                         ("w", self.padded_w, self.filter_w, self.ofmap_w)):
            if filt > ifmap:
                out.append(f"filter_{axis} {filt} exceeds the padded ifmap_{axis} {ifmap:g}")
                continue
            expected = math.floor((ifmap - filt) / self.stride) + 1
            if ofmap != expected:
                out.append(f"ofmap_{axis} {ofmap} does not match floor((ifmap_{axis} + 2*pad - filter_{axis}) / stride) + 1 = {expected}")
        return out

    @property
    def padded_h(self) -> float:
        return self.ifmap_h + 2 * self.pad

    @property
    def padded_w(self) -> float:
        return self.ifmap_w + 2 * self.pad

    @property
    def macs(self) -> int:
        """Multiply-accumulates per image: R*S*(C/groups)*E*G*F."""
        return (self.filter_h * self.filter_w * (self.channels // self.groups)
                * self.ofmap_h * self.ofmap_w * self.filters)

    def group_shape(self) -> LayerShape:
        """The shape one group presents to the branch functions (C/groups, F/groups)."""
        return LayerShape(
            filter_h=self.filter_h, filter_w=self.filter_w,
            ifmap_h=self.padded_h, ifmap_w=self.padded_w,
            channels=self.channels // self.groups,
            ofmap_h=self.ofmap_h, ofmap_w=self.ofmap_w,
            filters=self.filters // self.groups, stride=self.stride,
        )
