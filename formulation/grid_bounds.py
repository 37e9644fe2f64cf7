"""Lower bounds of a point's objective that hold over a whole block of the grid (docs/model.md section 6.1).

Per distinct layer and J/K pair, valid for every loop order and every SRAM
size (the derivations, equation by equation, are in docs/model.md 6.1; all
counts per group, times the layer's groups; an FC layer of batch N is a
1x1 convolution over W = G = N, per image):

* delay  D >= cycles_ideal + T(E G F b_o) >= R E G ceil(C / C_uv) ceil(F / F_uv) + T(E G F b_o)
  (stall >= 0; batched FC: ceil(. / N) of each part);
* energy E >= E_MAC + E_RF + e_dram (b_f D_f + b_i D_i + b_o D_o) + b_f A_f e_f + b_i A_i e_i + b_p A_p e_p
  with the compulsory DRAM traffic D_f = R S C F, D_i = C x (ifmap rows touched) x (columns touched),
  D_o = E G F, the least SRAM counts A_* of a family of loop orders (the four X-innermost orders, and
  ZiXYZo), and e_f, e_i, e_p the *least* per-bit SRAM energies over the block's sizes (the technology's
  table is not monotone: nothing here assumes it is). The energy bound is the least over the families.

Only C_uv = min(floor(J / S), C) and F_uv = min(K, F) carry the hardware,
so :func:`pair_bounds` computes, per layer and pair, a constant and three
coefficients of (e_f, e_i, e_p) per family; :func:`block_lower_bound`
turns them into a bound of the objective for the block's sizes:
sum_l n_l E_l, sum_l n_l D_l, sum_l n_l E_l^a D_l^b (``layer-sum``
products) or (sum_l n_l E_l)^a (sum_l n_l D_l)^b (``network`` products),
each a lower bound because every term is increasing in E_l and D_l.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from deepopt_mip.formulation.costmodel.common import (ArrayHardware, LayerShape, ofmap_write_cycles, quiet,
                                                      unit_volume)
from deepopt_mip.formulation.costmodel.branch_xyzozi import xyzozi_masked
from deepopt_mip.formulation.costmodel.branch_xzoyzi import xzoyzi_masked
from deepopt_mip.formulation.costmodel.energy import compute_energy_j
from deepopt_mip.formulation.metrics import check_metric, metric_value
from deepopt_mip.formulation.technology import Technology

ROUNDING_MARGIN = 1e-9
"""A block is skipped only where its bound exceeds the incumbent by this relative margin: the bound and the
exact objective are summed in different orders, so where the bound is tight (delay without stall) the two
may differ in the last bits."""


@dataclass(frozen=True)
class PairBounds:
    """Per distinct layer l, family m and pair n: energy = const + coef_f e_f + coef_i e_i + coef_p e_p (J,
    each e in J/bit), and the delay bound (cycles); ``counts`` the layers' multiplicities; ``complete``
    where the bounds hold (elsewhere the bound of a point is 0)."""

    const: np.ndarray  # (layers, families, pairs)
    coef_f: np.ndarray
    coef_i: np.ndarray
    coef_p: np.ndarray
    delay: np.ndarray  # (layers, pairs)
    counts: np.ndarray  # (layers,)
    complete: np.ndarray  # (pairs, psum sizes): every layer's volume covers are complete (complete_covers)

    def energy(self, pairs: np.ndarray, e_f: float, e_i: float, e_p: float) -> np.ndarray:
        """Energy bound of every layer for the listed pairs, the least over the families: (layers, pairs)."""
        value = (self.const[..., pairs] + self.coef_f[..., pairs] * e_f + self.coef_i[..., pairs] * e_i
                 + self.coef_p[..., pairs] * e_p)
        return value.min(axis=1)


def touched_extent(ofmap: float, stride: float, filt: float) -> float:
    """Ifmap positions along one axis that some output reads: the union of the windows [g U, g U + S),
    g = 0..G-1: (G - 1) U + S when S >= U, else G S."""
    return (ofmap - 1) * stride + filt if filt >= stride else ofmap * filt


def _layer_counts(shape: LayerShape, c_uv, f_uv, per_image: float, families: bool):
    """Least DRAM counts (D_f, D_i, D_o) and, per family, least SRAM counts (A_f, A_i, A_p), of one group
    over ``per_image`` images (1, or the batch of a batched FC layer)."""
    r, s, c, f = shape.filter_h, shape.filter_w, shape.channels, shape.filters
    e, g, u = shape.ofmap_h, shape.ofmap_w, shape.stride
    filter_sets = np.ceil(f / f_uv)
    dram = (r * s * c * f / per_image,
            c * touched_extent(e, u, r) * touched_extent(g, u, s) / per_image,
            e * g * f / per_image)
    # X-innermost orders: each weight read once per ofmap row, every ofmap row of R ifmap rows read once per
    # filter set, each psum written by the first filter row, read and written by the R - 1 others and by
    # every later channel step.
    x_inner = (r * s * c * f * e, r * c * e * g * filter_sets,
               e * g * f * (2 * r - 1 + 2 * r * np.ceil(c / c_uv - 1)))
    if not families:
        return dram, [tuple(a / per_image for a in x_inner)]
    # ZiXYZo: every weight read per MAC, R x S x C inputs per output element and filter set, each psum once.
    zi_first = (r * s * c * f * e * g, r * s * c * e * g * filter_sets, e * g * f)
    return dram, [x_inner, zi_first]


def _bound_shape(layer) -> tuple[LayerShape, float]:
    """The shape the branch functions see (a batched FC layer: a 1x1 convolution over W = G = N) and the
    images it covers."""
    shape = layer.group_shape()
    if layer.kind == "fc" and layer.batch > 1:
        return shape.replace(ifmap_w=layer.batch, ofmap_w=layer.batch), float(layer.batch)
    return shape, 1.0


@quiet
def complete_covers(layer, hw: ArrayHardware):
    """Where the volume cover of XYZoZi and XZoYZi (docs/model.md 4.0) tiles the whole ofmap, so that the
    bounds' argument "the tiles partition the ofmap" holds; elsewhere the bounds of the layer are 0.

    The cover's tiles never exceed the region they are meant to fill, and each tile writes its E' G' F'
    outputs once (D_o), so the cover is complete exactly where the branch's D_o is E G F. It is not
    everywhere: the Y pass repeats floor(E / E2) tiles of the F2 filters that fit beside its own E2 rows,
    which may be fewer than the first pass's F1 = F, and no F pass follows (section 7, item 5), e.g. at a
    fractional X(W). The extents depend on J, K and p only, so ``hw`` needs no filter or ifmap size.
    """
    if layer.kind == "fc" and layer.batch == 1:
        return True  # ZoZi's passes floor(F / F') F' + F_r are F filters; ZiZo has no cover
    shape, _ = _bound_shape(layer)
    whole = shape.ofmap_h * shape.ofmap_w * shape.filters
    orders = (xyzozi_masked,) if layer.kind == "fc" else (xyzozi_masked, xzoyzi_masked)
    complete = True
    for order in orders:
        complete = complete & (order(shape, hw).counts.dram_ofmap >= whole)  # NaN (cannot run): incomplete
    return complete


@quiet
def layer_bounds(layer, hw: ArrayHardware, tech: Technology):
    """(const, coef_f, coef_i, coef_p) per family and the delay bound of one layer on the pairs of ``hw``
    (rows and cols arrays; SRAM sizes unused), valid where :func:`complete_covers` holds."""
    shape, per_image = _bound_shape(layer)
    batched = per_image > 1
    c_uv, f_uv = unit_volume(shape, hw)
    c_uv = np.where(c_uv >= 1, c_uv, 0.0)  # C_uv = 0: no order runs the layer; the bounds below are inf
    cycles = (shape.filter_h * shape.ofmap_h * shape.ofmap_w * np.ceil(shape.channels / c_uv)
              * np.ceil(shape.filters / f_uv))
    write = ofmap_write_cycles(shape.ofmap_h * shape.ofmap_w * shape.filters, hw)
    if batched:
        cycles, write = np.ceil(cycles / per_image), np.ceil(write / per_image)
    if layer.kind == "fc" and not batched:
        # batch-1 FC orders (ZiZo, ZoZi): C F weights and C inputs read at least once, each output written once
        dram = (shape.channels * shape.filters, shape.channels, shape.filters)
        families = [(shape.channels * shape.filters, shape.channels, shape.filters)]
    else:
        dram, families = _layer_counts(shape, c_uv, f_uv, per_image, families=layer.kind != "fc")
    mac_j, rf_j = compute_energy_j(layer.macs, hw, tech)
    groups = layer.groups
    dram_j = (dram[0] * hw.bits_filter + dram[1] * hw.bits_ifmap + dram[2] * hw.bits_ofmap) * tech.dram_j_per_bit
    # C_uv = 0 makes every order infeasible (layer_cost): the bound is inf there too
    blocked = np.where(c_uv >= 1, 0.0, np.inf)
    const = [mac_j + rf_j + groups * dram_j + blocked for _ in families]
    coef = [[groups * a_f * hw.bits_filter, groups * a_i * hw.bits_ifmap, groups * a_p * hw.bits_psum]
            for a_f, a_i, a_p in families]
    delay = groups * (cycles + write) + blocked
    return const, coef, delay


def pair_bounds(layers: list[tuple[object, int]], hw: ArrayHardware, tech: Technology,
                psum_kb: np.ndarray) -> PairBounds:
    """:class:`PairBounds` of the distinct ``layers`` (with their counts) on the J/K pairs of ``hw`` (its
    rows and cols 1-D arrays of the pairs; its SRAM sizes are not read) and the psum sizes ``psum_kb``."""
    from deepopt_mip.formulation.hardware import BITS_PER_KB

    pairs = np.broadcast_shapes(np.shape(hw.rows), np.shape(hw.cols))
    psum_bits = np.asarray(psum_kb, dtype=float)[None, :] * BITS_PER_KB
    grid = replace(hw, rows=np.reshape(hw.rows, (-1, 1)), cols=np.reshape(hw.cols, (-1, 1)), fsram_bits=psum_bits,
                   isram_bits=psum_bits, psram_bits=psum_bits)
    complete = np.ones((pairs[0] if pairs else 1, psum_bits.size), dtype=bool)
    const, coef_f, coef_i, coef_p, delay = [], [], [], [], []
    for layer, _ in layers:
        c, coef, d = layer_bounds(layer, hw, tech)
        complete &= complete_covers(layer, grid)
        # two families for conv layers, one for FC: repeat the one so every layer has two
        while len(c) < 2:
            c, coef = c + c[:1], coef + coef[:1]
        const.append([np.broadcast_to(v, pairs) for v in c])
        coef_f.append([np.broadcast_to(v[0], pairs) for v in coef])
        coef_i.append([np.broadcast_to(v[1], pairs) for v in coef])
        coef_p.append([np.broadcast_to(v[2], pairs) for v in coef])
        delay.append(np.broadcast_to(d, pairs))
    return PairBounds(*(np.array(v, dtype=float) for v in (const, coef_f, coef_i, coef_p, delay)),
                      counts=np.array([n for _, n in layers], dtype=float), complete=complete)


def least_energy_per_bit(tech: Technology, sizes_kb) -> float:
    """The least per-bit SRAM energy over ``sizes_kb`` (no monotonicity of the table assumed)."""
    return float(np.min(tech.sram_energy_j_per_bit(np.asarray(sizes_kb, dtype=float))))


@quiet
def block_lower_bound(bounds: PairBounds, pairs: np.ndarray, e_f: float, e_i: float, e_p: float, psum: slice,
                      metric: str, separable: bool) -> np.ndarray:
    """Per listed pair, a lower bound of the objective at every point of the pair whose psum size is in
    ``psum`` (indices) and whose SRAM sizes have per-bit energies at least e_f, e_i, e_p: separable
    objectives sum_l n_l m(E_l, D_l) (for E or D alone this is the network sum too), network products
    (sum_l n_l E_l)^a (sum_l n_l D_l)^b; 0 for a pair with an incomplete cover at one of those sizes."""
    check_metric(metric)
    holds = bounds.complete[pairs, psum].all(axis=1)
    energy = bounds.energy(pairs, e_f, e_i, e_p)
    delay = bounds.delay[:, pairs]
    counts = bounds.counts[:, None]
    if separable:
        value = (counts * metric_value(energy, delay, metric)).sum(axis=0)
    else:
        value = metric_value((counts * energy).sum(axis=0), (counts * delay).sum(axis=0), metric)
    return np.where(holds, value, 0.0)


@quiet
def point_lower_bounds(bounds: PairBounds, pairs: np.ndarray, e_f: np.ndarray, e_i: np.ndarray, e_p: np.ndarray,
                       psum: slice, metric: str, separable: bool) -> np.ndarray:
    """The bound of :func:`block_lower_bound` at every point of a box: pairs x filter x ifmap x psum sizes
    with per-bit energies ``e_f``, ``e_i``, ``e_p`` (1-D; the psum sizes are those of indices ``psum``).
    Built layer by layer, so it needs a few arrays of the box, not one per layer."""
    check_metric(metric)
    e_f, e_i, e_p = (np.asarray(e, dtype=float) for e in (e_f, e_i, e_p))
    shape = (pairs.size, e_f.size, e_i.size, e_p.size)
    total = np.zeros(shape)
    for l, count in enumerate(bounds.counts):
        energy = None
        for m in range(bounds.const.shape[1]):
            value = ((bounds.const[l, m, pairs][:, None] + bounds.coef_i[l, m, pairs][:, None] * e_i)[:, None, :, None]
                     + (bounds.coef_f[l, m, pairs][:, None] * e_f)[:, :, None, None]
                     + (bounds.coef_p[l, m, pairs][:, None] * e_p)[:, None, None, :])
            energy = value if energy is None else np.minimum(energy, value, out=energy)
        delay = bounds.delay[l, pairs][:, None, None, None]
        total += count * (metric_value(energy, delay, metric) if separable else energy)
    if not separable:
        total = metric_value(total, (bounds.counts[:, None] * bounds.delay[:, pairs]).sum(axis=0)[:, None, None, None],
                             metric)
    return np.where(bounds.complete[pairs, psum][:, None, None, :], total, 0.0)
