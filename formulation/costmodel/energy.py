"""Layer energy from access counts (paper eqs. 12-16).

E = E_MAC + E_RF + E_SRAM + E_DRAM with, for N MACs per image:

* E_MAC  = N * (e_add_bit * b_p + e_mul(b_f)),  e_mul(b) = e_mul8 * (b/8)^2
* E_RF   = N * e_rf_bit * (b_f + b_i + 2 b_p)   (filter, ifmap, psum read, psum write)
* E_SRAM = sum over s in {filter, ifmap, psum} of A_s * b_s * e_sram(size_s)
* E_DRAM = (A_f^D b_f + A_i^D b_i + A_o^D b_o) * e_dram_bit

Source: DeepOpt reference, LOS_Computation.m (weighted access plus MAC and RF energy).
"""

from __future__ import annotations

from dataclasses import dataclass

from deepopt_mip.formulation.costmodel.common import AccessCounts, ArrayHardware, Number
from deepopt_mip.formulation.hardware import BITS_PER_KB
from deepopt_mip.formulation.technology import Technology


@dataclass(frozen=True)
class EnergyParts:
    """Energy of one layer and branch, in joules, by where it is spent."""

    mac_j: Number
    rf_j: Number
    sram_j: Number
    dram_j: Number

    @property
    def total_j(self) -> Number:
        return self.mac_j + self.rf_j + self.sram_j + self.dram_j


def compute_energy_j(macs: Number, hw: ArrayHardware, tech: Technology) -> tuple[Number, Number]:
    """MAC and register-file energy of ``macs`` multiply-accumulates (same for every branch)."""
    mac_j = macs * (tech.add_j_per_bit * hw.bits_psum + tech.mul_j(hw.bits_filter))
    rf_j = macs * tech.rf_j_per_bit * (hw.bits_filter + hw.bits_ifmap + 2 * hw.bits_psum)
    return mac_j, rf_j


def sram_j_per_bit(hw: ArrayHardware, tech: Technology) -> tuple[Number, Number, Number]:
    """Per-bit access energy of the filter, ifmap and psum SRAM (J), by their sizes."""
    return (tech.sram_energy_j_per_bit(hw.fsram_bits / BITS_PER_KB),
            tech.sram_energy_j_per_bit(hw.isram_bits / BITS_PER_KB),
            tech.sram_energy_j_per_bit(hw.psram_bits / BITS_PER_KB))


def access_energy_j(counts: AccessCounts, hw: ArrayHardware, tech: Technology,
                    per_bit: tuple[Number, Number, Number] | None = None) -> tuple[Number, Number]:
    """SRAM and DRAM access energy of one branch's counts; ``per_bit``: :func:`sram_j_per_bit`, if the
    caller has it already (it depends on the hardware only)."""
    e_filter, e_ifmap, e_psum = sram_j_per_bit(hw, tech) if per_bit is None else per_bit
    sram_j = (
        counts.sram_filter * hw.bits_filter * e_filter
        + counts.sram_ifmap * hw.bits_ifmap * e_ifmap
        + counts.sram_psum * hw.bits_psum * e_psum
    )
    dram_j = (
        counts.dram_filter * hw.bits_filter + counts.dram_ifmap * hw.bits_ifmap
        + counts.dram_ofmap * hw.bits_ofmap
    ) * tech.dram_j_per_bit
    return sram_j, dram_j


def energy_parts(counts: AccessCounts, macs: Number, hw: ArrayHardware, tech: Technology,
                 per_bit: tuple[Number, Number, Number] | None = None) -> EnergyParts:
    """Paper eqs. 12-16 (module docstring); ``per_bit`` as for :func:`access_energy_j`."""
    mac_j, rf_j = compute_energy_j(macs, hw, tech)
    sram_j, dram_j = access_energy_j(counts, hw, tech, per_bit)
    return EnergyParts(mac_j=mac_j, rf_j=rf_j, sram_j=sram_j, dram_j=dram_j)
