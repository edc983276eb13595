"""Lab instances: independent labs on one machine, each with its own names, network and state.

The default instance keeps the names the main job has always used (bridge vmplab0,
10.77.0.0/24, state in <cache>/lab, Pulumi.local.yaml in the checkout). Any other instance
(`--instance e2e`) gets its own bridge, /24, network namespaces, nspawn machine names, lab key,
host keys, state dir <cache>/lab/instances/<name> and stack file inside that dir, so that the
e2e suite can boot and take down a lab without touching the one `tools/deploy-local` deployed.
Node (host) names inside stay lab-master / lab-worker-N in every instance.

What stays shared: the Debian image (read-only lower layer of every host's overlay), the
cluster binaries, and the machine-wide sysctls (restored only when the last instance goes down).
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tools.common import ROOT, ToolError, cache_dir

from . import system

DEFAULT = "default"
DEFAULT_NETWORK = ipaddress.IPv4Network("10.77.0.0/24")
# Other instances take the first free 10.<N>.0.0/24 from N = 78 up (the e2e suite's: 10.78.0.0/24
# unless something on this machine already uses it).
OTHER_OCTETS = range(78, 128)
FIRST_HOST_OCTET = 10  # master .10, worker-1 .11, ...
DEFAULT_WORKERS = 2  # the platform spreads its replicas over two workers; drains need a second one
# Short enough for every name made from it: bridge vmplab-<name> and veth vmp<name>-w<N> stay
# within IFNAMSIZ (15).
NAME_PATTERN = re.compile(r"[a-z][a-z0-9]{0,7}")
HOST_ID = re.compile(r"master|worker-(\d+)")


def lab_root() -> Path:
    """<cache>/lab: the default instance's state, and what every instance shares."""
    d = cache_dir() / "lab"
    d.mkdir(parents=True, exist_ok=True)
    return d


@dataclass(frozen=True)
class Instance:
    """One lab: the names and places of its bridge, hosts and state."""

    name: str
    network: ipaddress.IPv4Network

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT

    @property
    def bridge(self) -> str:
        return "vmplab0" if self.is_default else f"vmplab-{self.name}"

    @property
    def gateway(self) -> str:
        """The machine's address on the bridge."""
        return str(self.network.network_address + 1)

    @property
    def dir(self) -> Path:
        d = lab_root() if self.is_default else lab_root() / "instances" / self.name
        d.mkdir(parents=True, exist_ok=True)
        return d

    @property
    def key_path(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def known_hosts_path(self) -> Path:
        return self.dir / "known_hosts"

    @property
    def stack_file(self) -> Path:
        return ROOT / "Pulumi.local.yaml" if self.is_default else self.dir / "Pulumi.local.yaml"

    @property
    def netns_prefix(self) -> str:
        return "vmp-" if self.is_default else f"vmp-{self.name}-"

    @property
    def label(self) -> str:
        """How progress lines name this instance ('lab' for the default)."""
        return "lab" if self.is_default else f"lab {self.name}"

    @property
    def cli_flag(self) -> str:
        """The `--instance` argument that selects this instance ('' for the default)."""
        return "" if self.is_default else f" --instance {self.name}"

    def host(self, host_id: str) -> LabHost:
        m = HOST_ID.fullmatch(host_id)
        if not m:
            raise ToolError(f"no lab host id {host_id!r} (master or worker-N)")
        return LabHost(self, host_id, int(m.group(1) or 0))

    def hosts(self, workers: int) -> list[LabHost]:
        return [self.host("master")] + [self.host(f"worker-{i}") for i in range(1, workers + 1)]

    def existing_hosts(self) -> list[LabHost]:
        """Hosts that have any state (a directory or a network namespace), for down and status."""
        ids = {p.name for p in (self.dir / "hosts").glob("*") if p.is_dir()}
        ids |= {n.removeprefix(self.netns_prefix) for n in system.netns_list() if n.startswith(self.netns_prefix)}
        hosts = [self.host(i) for i in ids if HOST_ID.fullmatch(i)]
        return sorted(hosts, key=lambda h: h.index)

    def current_workers(self) -> int:
        return sum(1 for h in self.existing_hosts() if h.id != "master") or DEFAULT_WORKERS


@dataclass(frozen=True)
class LabHost:
    """One lab host. `id` is master or worker-N; the node and host name is lab-<id>."""

    instance: Instance
    id: str
    index: int

    @property
    def name(self) -> str:
        return f"lab-{self.id}"

    @property
    def machine(self) -> str:
        """nspawn's machine name: unique on the machine, so it also marks the host's process."""
        return self.name if self.instance.is_default else f"lab-{self.instance.name}-{self.id}"

    @property
    def netns(self) -> str:
        return f"{self.instance.netns_prefix}{self.id}"

    @property
    def veth(self) -> str:
        """The machine's end of the host's veth (the host's end is eth0); at most 15 characters."""
        if self.instance.is_default:
            return f"vmpv-{self.id}"[:15]
        short = "m" if self.id == "master" else f"w{self.index}"
        return f"vmp{self.instance.name}-{short}"

    @property
    def address(self) -> str:
        return str(self.instance.network.network_address + FIRST_HOST_OCTET + self.index)

    @property
    def dir(self) -> Path:
        return self.instance.dir / "hosts" / self.id

    @property
    def merged(self) -> Path:
        return self.dir / "root"

    @property
    def pid_file(self) -> Path:
        return self.dir / "pid"


def _record(name: str) -> Path:
    return lab_root() / "instances" / name / "instance.json"


def _check_name(name: str) -> None:
    if name != DEFAULT and not NAME_PATTERN.fullmatch(name):
        raise ToolError(f"lab instance name {name!r}: expected 1 to 8 lower-case letters or digits, starting with a letter")


def exists(name: str) -> bool:
    """Whether the instance has been made on this machine (the default always exists)."""
    _check_name(name)
    return name == DEFAULT or _record(name).is_file()


def get(name: str = DEFAULT, *, create: bool = False) -> Instance:
    """The instance called `name`. Another instance than the default exists once its first
    `up` recorded its network; with create=True that network is allocated here."""
    _check_name(name)
    if name == DEFAULT:
        return Instance(DEFAULT, DEFAULT_NETWORK)
    record = _record(name)
    if record.is_file():
        return Instance(name, ipaddress.IPv4Network(json.loads(record.read_text())["network"]))
    if not create:
        raise ToolError(f"no lab instance {name!r} on this machine (`python3 -m tools.lab up --instance {name}` makes it)")
    with lock("instances"):
        if not record.is_file():  # made by a concurrent `up` meanwhile
            network = _free_network()
            record.parent.mkdir(parents=True, exist_ok=True)
            tmp = record.with_name(record.name + ".tmp")
            tmp.write_text(json.dumps({"network": str(network)}) + "\n")
            tmp.rename(record)
    return get(name)


def others(than: Instance) -> list[Instance]:
    """Every recorded instance (the default included) except `than`."""
    names = [DEFAULT] + sorted(p.parent.name for p in (lab_root() / "instances").glob("*/instance.json"))
    return [get(n) for n in names if n != than.name]


@contextmanager
def lock(what: str) -> Iterator[None]:
    """An exclusive lock on something every instance shares (the instance records, the image,
    the machine sysctls), so two `up`s at once (main job and e2e suite) take turns on it."""
    with open(lab_root() / f".{what}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _machine_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network this machine has an address or a route in."""
    nets = []
    for cmd in (["ip", "-o", "-4", "addr", "show"], ["ip", "-4", "route", "show", "table", "all"]):
        for token in system.out(cmd, check=False).split():
            if re.fullmatch(r"\d+\.\d+\.\d+\.\d+(/\d+)?", token):
                nets.append(ipaddress.IPv4Network(token, strict=False))
    return nets


def _free_network() -> ipaddress.IPv4Network:
    """The first 10.<N>.0.0/24 that no instance has and nothing on this machine is in (a default
    route, 0.0.0.0/0, overlaps everything and does not count)."""
    taken = [i.network for i in others(get(DEFAULT))] + [DEFAULT_NETWORK] + [n for n in _machine_networks() if n.prefixlen > 0]
    for octet in OTHER_OCTETS:
        candidate = ipaddress.IPv4Network(f"10.{octet}.0.0/24")
        if not any(candidate.overlaps(t) for t in taken):
            return candidate
    raise ToolError(f"no free 10.<N>.0.0/24 (N {OTHER_OCTETS.start}..{OTHER_OCTETS.stop - 1}) for another lab instance")
