"""A hardware point: the array, its three SRAMs, bit widths and the DRAM link."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepopt_mip.formulation.costmodel.common import ArrayHardware, Number
from deepopt_mip.formulation.errors import InputError

BITS_PER_KB = 8 * 1024


@dataclass(frozen=True)
class HardwarePoint:
    """One accelerator configuration: J PE rows, K PE columns (the paper's and the JSON's names), SRAM sizes
    in kB, bit widths in bits, DRAM bandwidth in bits per cycle."""

    J: int
    K: int
    fsram_kb: float
    isram_kb: float
    psram_kb: float
    bits_filter: int = 8
    bits_ifmap: int = 8
    bits_psum: int = 32
    dram_bw_bits_per_cycle: int = 128
    dram_block_bits: int = 128

    def __post_init__(self) -> None:
        for name in ("J", "K", "fsram_kb", "isram_kb", "psram_kb", "bits_filter", "bits_ifmap",
                     "bits_psum", "dram_bw_bits_per_cycle", "dram_block_bits"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise InputError(f"hardware: {name} must be a positive number, got {value!r}")
        for name in ("J", "K", "bits_filter", "bits_ifmap", "bits_psum"):
            if int(getattr(self, name)) != getattr(self, name):
                raise InputError(f"hardware: {name} must be an integer, got {getattr(self, name)!r}")
        short = register_shortfall(self.arrays())
        if short:
            raise InputError("hardware: " + "; ".join(short))

    def arrays(self) -> ArrayHardware:
        return array_hardware(
            rows=self.J, cols=self.K, fsram_kb=self.fsram_kb, isram_kb=self.isram_kb,
            psram_kb=self.psram_kb, bits_filter=self.bits_filter, bits_ifmap=self.bits_ifmap,
            bits_psum=self.bits_psum, dram_bw_bits_per_cycle=self.dram_bw_bits_per_cycle,
            dram_block_bits=self.dram_block_bits,
        )

    def label(self) -> str:
        return (f"{self.J}x{self.K}, SRAM f/i/p {self.fsram_kb:g}/{self.isram_kb:g}/{self.psram_kb:g} kB, "
                f"bits f/i/p {self.bits_filter}/{self.bits_ifmap}/{self.bits_psum}")


def array_hardware(rows: Number, cols: Number, fsram_kb: Number, isram_kb: Number, psram_kb: Number,
                   bits_filter: Number = 8, bits_ifmap: Number = 8, bits_psum: Number = 32,
                   dram_bw_bits_per_cycle: Number = 128, dram_block_bits: Number = 128) -> ArrayHardware:
    """The branch functions' view of hardware given in kB (scalars or arrays), unchecked.

    Ofmaps are stored at the ifmap width (they are the next layer's ifmaps).
    """
    def as_float(v: Number) -> Number:
        return np.asarray(v, dtype=float) if isinstance(v, np.ndarray) else float(v)

    return ArrayHardware(
        rows=as_float(rows), cols=as_float(cols),
        fsram_bits=as_float(fsram_kb) * BITS_PER_KB, isram_bits=as_float(isram_kb) * BITS_PER_KB,
        psram_bits=as_float(psram_kb) * BITS_PER_KB,
        bits_filter=as_float(bits_filter), bits_ifmap=as_float(bits_ifmap), bits_psum=as_float(bits_psum),
        bits_ofmap=as_float(bits_ifmap), dram_bw_bits_per_cycle=as_float(dram_bw_bits_per_cycle),
        dram_block_bits=as_float(dram_block_bits),
    )


def register_bits(hw: ArrayHardware) -> tuple[Number, Number, Number]:
    """Register-file storage of the array, per SRAM it is loaded from (bits).

    Filter: one weight per PE (J*K*b_f); ifmap: one column's worth, broadcast
    to all columns (J*b_i); psum: one per column (K*b_p). Reference:
    LOS_Main.m, which refuses SRAMs smaller than these.
    """
    return (hw.rows * hw.cols * hw.bits_filter, hw.rows * hw.bits_ifmap, hw.cols * hw.bits_psum)


def registers_fit(hw: ArrayHardware) -> Number:
    """True where every SRAM is at least as large as the registers it feeds."""
    filt, ifmap, psum = register_bits(hw)
    return (hw.fsram_bits >= filt) & (hw.isram_bits >= ifmap) & (hw.psram_bits >= psum)


def register_shortfall(hw: ArrayHardware) -> list[str]:
    """Human-readable reasons why a (scalar) hardware point's SRAMs are too small."""
    out = []
    for sram, size_bits, need_bits in zip(("filter", "ifmap", "psum"),
                                          (hw.fsram_bits, hw.isram_bits, hw.psram_bits), register_bits(hw)):
        if float(np.asarray(size_bits)) < float(np.asarray(need_bits)):
            out.append(f"{sram} SRAM of {size_bits / BITS_PER_KB:g} kB is smaller than the array's "
                       f"{sram} registers ({need_bits / BITS_PER_KB:g} kB)")
    return out


def parse_array(text: str) -> tuple[int, int]:
    """'32x64' -> (32, 64): J rows by K columns."""
    parts = text.lower().replace(" ", "").split("x")
    try:
        rows, cols = (int(p) for p in parts)
    except ValueError:
        raise InputError(f"--array {text!r}: expected ROWSxCOLS with positive integers, e.g. 32x64") from None
    if rows < 1 or cols < 1:
        raise InputError(f"--array {text!r}: rows and columns must be positive")
    return rows, cols


def parse_triple(text: str, option: str, integer: bool = False) -> tuple[float, float, float]:
    """'16,32,8' -> (16, 32, 8) for --sram (kB) and --bits."""
    parts = text.replace(" ", "").split(",")
    try:
        values = tuple(int(p) if integer else float(p) for p in parts)
    except ValueError:
        kind = "integers" if integer else "numbers"
        raise InputError(f"{option} {text!r}: expected three comma-separated {kind}, e.g. 16,32,8") from None
    if len(values) != 3:
        raise InputError(f"{option} {text!r}: expected exactly three values (filter, ifmap, psum)")
    if any(v <= 0 for v in values):
        raise InputError(f"{option} {text!r}: values must be positive")
    return values
