"""A workload: a named, ordered tuple of Conv/FC layers, and optionally its graph.

The type every loader returns: the network file (:mod:`~deepopt_mip.formulation.networks`)
and the ONNX import (:mod:`~deepopt_mip.formulation.onnx_import`) both build a
:class:`Network`; neither imports the other, and
:func:`~deepopt_mip.formulation.networks.load_network` dispatches between them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from deepopt_mip.formulation.errors import InputError
from deepopt_mip.formulation.graph import Edge, GraphError, Inputs, derive_edges, format_inputs
from deepopt_mip.formulation.layers import Layer

__all__ = ["Network"]

@dataclass(frozen=True)
class Network:
    """A workload: its name, its Conv/FC layers in execution order, where it came from, its graph.

    ``source`` is provenance only (``deepopt_mip.data:networks/<file>`` for a
    built-in, the path given for a user file) and takes no part in equality:
    two networks with the same name, layers and inputs are equal.

    ``inputs`` is ``None`` when the graph is not known (a file without the
    ``inputs`` column), else one entry per layer (:data:`~deepopt_mip.formulation.graph.Inputs`:
    a producer expression, the network input, or ``None`` for a layer whose
    inputs are not known). :attr:`edges` are derived from it and checked
    against the shapes (:func:`~deepopt_mip.formulation.graph.derive_edges`).
    """

    name: str
    layers: tuple[Layer, ...]
    source: str = field(default="", compare=False)
    inputs: tuple[Inputs, ...] | None = None
    edges: tuple[Edge, ...] = field(init=False, compare=False, repr=False)

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
        edges: tuple[Edge, ...] = ()
        if self.inputs is not None:
            object.__setattr__(self, "inputs", tuple(self.inputs))
            try:
                edges = derive_edges(self.layers, self.inputs)
            except GraphError as exc:
                where = self.layers[exc.index].name if exc.index < len(self.layers) else "?"
                raise InputError(f"network {self.name!r}: layer {where!r}: inputs: {exc}") from None
        object.__setattr__(self, "edges", edges)

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

    @property
    def has_graph(self) -> bool:
        """Whether the network says where its layers' inputs come from (``inputs`` is given)."""
        return self.inputs is not None

    def inputs_text(self, name: str) -> str:
        """The ``inputs`` cell of layer ``name`` as written in a network file ("?" if not known)."""
        if self.inputs is None:
            return "?"
        return format_inputs(self.inputs[self.layers.index(self.layer(name))])

    def to_frame(self):
        """The layers as a pandas DataFrame (the :class:`Layer` fields, as in the file, plus ``macs``)."""
        import pandas as pd

        columns = [f.name for f in fields(Layer)]
        rows = [{c: getattr(layer, c) for c in columns} | {"macs": layer.macs} for layer in self.layers]
        return pd.DataFrame(rows, columns=[*columns, "macs"])


