"""A workload: a named, ordered tuple of Conv/FC layers.

The type every loader returns: the network file (:mod:`~deepopt_mip.formulation.networks`)
and the ONNX import (:mod:`~deepopt_mip.formulation.onnx_import`) both build a
:class:`Network`; neither imports the other, and
:func:`~deepopt_mip.formulation.networks.load_network` dispatches between them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.layers import Layer

__all__ = ["Network"]

@dataclass(frozen=True)
class Network:
    """A workload: its name, its Conv/FC layers in execution order, where it came from.

    ``source`` is provenance only (``deepopt_mip.data:networks/<file>`` for a
    built-in, the path given for a user file) and takes no part in equality:
    two networks with the same name and layers are equal.
    """

    name: str
    layers: tuple[Layer, ...]
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.name or not str(self.name).strip():
            raise InputError("network name is empty")
        if not self.layers:
            raise InputError(f"network {self.name!r} has no layers")
        for layer in self.layers:
            if not isinstance(layer, Layer):
                raise InputError(f"network {self.name!r}: {layer!r} is not a Layer")
        seen: set[str] = set()
        for layer in self.layers:
            if layer.name in seen:
                raise InputError(f"network {self.name!r}: layer name {layer.name!r} appears twice")
            seen.add(layer.name)

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def macs(self) -> int:
        """Multiply-accumulates per image: the sum of the layers' :attr:`Layer.macs`."""
        return sum(layer.macs for layer in self.layers)

    def layer(self, name: str) -> Layer:
        """The layer called ``name`` (:class:`KeyError` if there is none)."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"network {self.name!r} has no layer {name!r}")

    def to_frame(self):
        """The layers as a pandas DataFrame (the :class:`Layer` fields, as in the file, plus ``macs``)."""
        import pandas as pd

        columns = [f.name for f in fields(Layer)]
        rows = [{c: getattr(layer, c) for c in columns} | {"macs": layer.macs} for layer in self.layers]
        return pd.DataFrame(rows, columns=[*columns, "macs"])


