"""``deepopt-mip networks``: the built-in workloads, or one network's layers."""

from __future__ import annotations

from deepopt_mip.formulation.networks import BUILTIN_NETWORKS, load_network
from deepopt_mip.scripts.names import NAME_WIDTH, short_names


def run(show: str | None = None, network=None) -> int:
    if show:
        network = network if network is not None else load_network(show)
        print(f"{network.name}: {len(network)} layers, {network.macs / 1e9:.3f} GMAC per image ({network.source})")
        print(f"{'layer':<{NAME_WIDTH}}{'kind':>5}{'ifmap':>10}{'pad':>5}{'C':>7}{'RxS':>7}{'F':>7}{'ofmap':>10}{'U':>3}{'grp':>4}{'batch':>6}{'MMAC':>10}")
        names = short_names([l.name for l in network.layers])
        for name, l in zip(names, network.layers):
            print(f"{name:<{NAME_WIDTH}}{l.kind:>5}{f'{l.ifmap_h}x{l.ifmap_w}':>10}{l.pad:>5g}{l.channels:>7}"
                  f"{f'{l.filter_h}x{l.filter_w}':>7}{l.filters:>7}{f'{l.ofmap_h}x{l.ofmap_w}':>10}{l.stride:>3}"
                  f"{l.groups:>4}{l.batch:>6}{l.macs / 1e6:>10.2f}")
        return 0
    print(f"{'network':<18}{'layers':>7}{'conv':>6}{'fc':>4}{'GMAC/image':>12}")
    for name in BUILTIN_NETWORKS:
        network = load_network(name)
        fc = sum(l.kind == "fc" for l in network.layers)
        print(f"{name:<18}{len(network):>7}{len(network) - fc:>6}{fc:>4}{network.macs / 1e9:>12.3f}")
    return 0
