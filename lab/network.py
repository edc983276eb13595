"""The lab's network: one bridge per instance on the machine, one network namespace per host
with a veth into that bridge.

The machine reaches the hosts through the bridge (SSH, and kubectl to the API server); the
hosts reach each other over it at L2. Nothing is routed beyond the instance's /24: the hosts
have no default route and the machine does not forward.
"""

from __future__ import annotations

from tools.common import progress, run

from . import system
from .instance import Instance, LabHost


def ensure_bridge(inst: Instance, changes: list[str]) -> None:
    bridge = inst.bridge
    if not system.link_exists(bridge):
        run(["ip", "link", "add", bridge, "type", "bridge"])
        changes.append(f"bridge {bridge}")
    addr = f"{inst.gateway}/{inst.network.prefixlen}"
    if addr not in system.out(["ip", "-o", "-4", "addr", "show", "dev", bridge]):
        run(["ip", "addr", "add", addr, "dev", bridge])
        changes.append(f"bridge address {addr}")
    link = system.out(["ip", "link", "show", "dev", bridge])
    if "state UP" not in link and ",UP" not in link:
        run(["ip", "link", "set", bridge, "up"])
        changes.append(f"bridge {bridge} up")


def remove_bridge(inst: Instance) -> None:
    if system.link_exists(inst.bridge):
        run(["ip", "link", "del", inst.bridge])
        progress(f"bridge {inst.bridge} removed")


def ensure_netns(h: LabHost, changes: list[str]) -> None:
    bridge = h.instance.bridge
    if h.netns not in system.netns_list():
        run(["ip", "netns", "add", h.netns])
        changes.append(f"{h.id}: netns {h.netns}")
    if not system.link_exists(h.veth) or not system.link_exists("eth0", h.netns):
        if system.link_exists(h.veth):
            run(["ip", "link", "del", h.veth])
        run(["ip", "link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.netns])
        changes.append(f"{h.id}: veth {h.veth}")
    link = system.out(["ip", "-o", "link", "show", "dev", h.veth])
    if f"master {bridge}" not in link:
        run(["ip", "link", "set", h.veth, "master", bridge])
        changes.append(f"{h.id}: veth into {bridge}")
    if "state UP" not in link and "LOWER_UP" not in link:
        run(["ip", "link", "set", h.veth, "up"])
    addr = f"{h.address}/{h.instance.network.prefixlen}"
    if addr not in system.out(["ip", "-n", h.netns, "-o", "-4", "addr", "show", "dev", "eth0"]):
        run(["ip", "-n", h.netns, "addr", "add", addr, "dev", "eth0"])
        changes.append(f"{h.id}: address {h.address}")
    for dev in ("lo", "eth0"):
        if "UP" not in system.out(["ip", "-n", h.netns, "-o", "link", "show", "dev", dev]).split(">")[0]:
            run(["ip", "-n", h.netns, "link", "set", dev, "up"])


def remove_netns(h: LabHost) -> None:
    if system.link_exists(h.veth):
        run(["ip", "link", "del", h.veth])
    if h.netns in system.netns_list():
        run(["ip", "netns", "del", h.netns])


def vxlan_supported(inst: Instance) -> bool:
    """Whether a vxlan device can be made inside a network namespace (flannel's vxlan backend)."""
    ns = "vmp-vxlan-check" if inst.is_default else f"vmp-vxlan-check-{inst.name}"
    if ns in system.netns_list():
        run(["ip", "netns", "del", ns])
    run(["ip", "netns", "add", ns])
    try:
        return system.ok(["ip", "-n", ns, "link", "add", "vxlan-check", "type", "vxlan", "id", "1", "dstport", "8472", "nolearning"])
    finally:
        run(["ip", "netns", "del", ns])


def flannel_backend(inst: Instance) -> str:
    """vxlan where a vxlan device can be made in a network namespace, else host-gw; checked
    once per instance and remembered in its state dir."""
    f = inst.dir / "flannel-backend"
    if not f.is_file():
        backend = "vxlan" if vxlan_supported(inst) else "host-gw"
        f.write_text(backend + "\n")
        progress(f"flannel backend: {backend} (vxlan device {'can' if backend == 'vxlan' else 'cannot'} be made in a network namespace)")
    return f.read_text().strip()
