"""The local lab: two (or more) "VMs" on this machine that the `local` stack deploys to for real.

Each host is a systemd-nspawn container booting real systemd on its own overlay root (one cached
Debian image), in its own network namespace with a veth into a bridge on the machine, and
reachable over SSH with a lab key and pinned host keys. The machine reaches the hosts through
the bridge (SSH, and kubectl to the API server); the hosts reach each other over it at L2.
Nothing is routed beyond 10.77.0.0/24: the hosts have no default route and the machine does
not forward.

    python3 -m tools.lab up [--workers N]    # idempotent; writes Pulumi.local.yaml
    python3 -m tools.lab status
    python3 -m tools.lab down                # keeps the cached image and the lab key

Why each launch flag and each piece of plumbing is there: /work/shared/notes/lab.md and
tools/LAB-NOTES.md.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import ROOT, ToolError, cache_dir, pins, progress, run, write_if_changed

BRIDGE = "vmplab0"
NETWORK = ipaddress.IPv4Network("10.77.0.0/24")
GATEWAY = "10.77.0.1"  # the machine's address on the bridge
FIRST_HOST_OCTET = 10  # master .10, worker-1 .11, ...
SUITE = "bookworm"

# What the bootstrap's prereqs step checks for (components/settings.py defaults for Debian);
# baked into the image so that step is a no-op on hosts that cannot reach any mirror.
HOST_PACKAGES = {
    "controlPlane": ["openssl", "curl", "ca-certificates", "docker-registry", "skopeo", "apache2-utils"],
    "worker": ["openssl", "curl", "ca-certificates", "containerd", "runc", "containernetworking-plugins", "iptables", "conntrack"],
}
BASE_PACKAGES = [
    "systemd", "systemd-sysv", "dbus", "openssh-server", "iproute2", "procps", "ca-certificates",
    "curl", "openssl", "iptables", "conntrack", "kmod", "less",
]  # fmt: skip
IMAGE_PACKAGES = sorted(set(BASE_PACKAGES + HOST_PACKAGES["controlPlane"] + HOST_PACKAGES["worker"]))
# Bump when the image post-processing below changes, so a new image is built.
IMAGE_REVISION = "2"
# Units the packages enable. docker-registry would hold :5000 with Debian's config, and the
# bootstrap runs the registry as its own unit (vm-platform-registry): masked. containerd is
# only disabled: the bootstrap writes its config, then `systemctl enable` + `restart`s it,
# which a masked unit would refuse. The apt timers would only try to reach a mirror.
IMAGE_MASK = ["docker-registry.service", "apt-daily.timer", "apt-daily-upgrade.timer"]
IMAGE_DISABLE = ["containerd.service"]

# Machine-wide kernel settings the kubelet checks (protectKernelDefaults: true): /proc/sys is
# read-only inside the hosts, and these are not namespaced, so they are set once here.
MACHINE_SYSCTLS = {"vm/overcommit_memory": "1", "kernel/panic": "10", "kernel/panic_on_oops": "1"}

# Lab plumbing, not bootstrap config: nspawn mounts every cgroup-v1 controller read-only inside
# a container, where a VM would have its own writable cgroups. This oneshot stands in for that
# before anything creates cgroups (containerd's shims, the kubelet's /kubepods).
CGROUP_UNIT_NAME = "vmp-lab-cgroups-rw.service"
CGROUP_UNIT = """\
# Written by tools/lab.py (lab plumbing, not part of the platform's bootstrap): nspawn mounts the
# cgroup-v1 controllers read-only; a VM has writable cgroups of its own. Remount them rw.
[Unit]
Description=lab: make the cgroup-v1 controllers writable (stands in for a VM's own cgroups)
DefaultDependencies=no
After=sysinit.target
Before=containerd.service kubelet.service flanneld.service basic.target

[Service]
Type=oneshot
RemainAfterExit=yes
# ($$ is systemd's escape for a literal $)
ExecStart=/bin/sh -c 'for d in $$(findmnt -rn -t cgroup -o TARGET); do mount -o remount,bind,rw "$$d"; done'

[Install]
WantedBy=basic.target
"""

SSH_OPTS = [
    "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
    "-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=3", "-o", "LogLevel=ERROR",
]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Places


def lab_dir() -> Path:
    d = cache_dir() / "lab"
    d.mkdir(parents=True, exist_ok=True)
    return d


def key_path() -> Path:
    return lab_dir() / "id_ed25519"


def known_hosts_path() -> Path:
    return lab_dir() / "known_hosts"


@dataclass(frozen=True)
class LabHost:
    """One lab host. `id` is master or worker-N; the node, machine and host name is lab-<id>."""

    id: str
    index: int

    @property
    def name(self) -> str:
        return f"lab-{self.id}"

    @property
    def netns(self) -> str:
        return f"vmp-{self.id}"

    @property
    def veth(self) -> str:  # the machine's end; the host's end is eth0 (IFNAMSIZ: 15)
        return f"vmpv-{self.id}"[:15]

    @property
    def address(self) -> str:
        return str(NETWORK.network_address + FIRST_HOST_OCTET + self.index)

    @property
    def dir(self) -> Path:
        return lab_dir() / "hosts" / self.id

    @property
    def merged(self) -> Path:
        return self.dir / "root"

    @property
    def pid_file(self) -> Path:
        return self.dir / "pid"


def lab_hosts(workers: int) -> list[LabHost]:
    return [LabHost("master", 0)] + [LabHost(f"worker-{i}", i) for i in range(1, workers + 1)]


def existing_hosts() -> list[LabHost]:
    """Hosts that have any state (a directory or a network namespace), for down and status."""
    ids = {p.name for p in (lab_dir() / "hosts").glob("*") if p.is_dir()}
    ids |= {n[4:] for n in _netns_list() if n.startswith("vmp-")}
    out = []
    for i in sorted(ids, key=lambda s: (s != "master", int(s.split("-")[-1]) if s.startswith("worker-") and s.split("-")[-1].isdigit() else 0, s)):
        if i == "master":
            out.append(LabHost(i, 0))
        elif re.fullmatch(r"worker-\d+", i):
            out.append(LabHost(i, int(i.split("-")[1])))
    return out


# ---------------------------------------------------------------------------------------------
# Small helpers


def _out(cmd: Sequence[str], check: bool = True, timeout: float | None = None) -> str:
    p = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise ToolError(f"command failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr.strip()}")
    return p.stdout


def _ok(cmd: Sequence[str], timeout: float | None = None) -> bool:
    try:
        return subprocess.run(list(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _netns_list() -> list[str]:
    d = Path("/run/netns")
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def _link_exists(name: str, netns: str | None = None) -> bool:
    return _ok(["ip", *(["-n", netns] if netns else []), "link", "show", "dev", name])


def _mounts() -> list[tuple[str, str, str]]:
    """(mount point, fstype, super options) of this mount namespace, in mount order."""
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        pre, post = line.split(" - ", 1)
        fields, post_f = pre.split(), post.split()
        out.append((fields[4].replace("\\040", " "), post_f[0], post_f[2] if len(post_f) > 2 else ""))
    return out


def _mounted(path: Path) -> bool:
    return any(m == str(path) for m, _, _ in _mounts())


def _mounts_under(path: Path) -> list[str]:
    p = str(path)
    return [m for m, _, _ in _mounts() if m == p or m.startswith(p + "/")]


def _unmount_under(path: Path) -> None:
    for m in reversed(_mounts_under(path)):  # deepest (last mounted) first
        if not _ok(["umount", m]):
            run(["umount", "-l", m])


def _remove_tree(path: Path) -> None:
    """rm -rf that refuses to cross into anything still mounted beneath `path`."""
    if not path.exists():
        return
    _unmount_under(path)
    if _mounts_under(path):
        raise ToolError(f"refusing to remove {path}: still mounted: {_mounts_under(path)}")
    run(["rm", "-rf", "--one-file-system", str(path)])


def _sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key


def _pid_alive(pid: int, marker: str) -> bool:
    """True when `pid` runs and is the lab's nspawn for `marker` (not a reused PID or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X") and b"systemd-nspawn" in cmdline[0] and marker.encode() in cmdline


def _read_pid(h: LabHost) -> int | None:
    try:
        return int(h.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _running(h: LabHost) -> int | None:
    pid = _read_pid(h)
    return pid if pid and _pid_alive(pid, h.name) else None


# ---------------------------------------------------------------------------------------------
# Host prerequisites and the apt mirror (read from this machine's config, never named here)

HOST_TOOLS = {"debootstrap": "debootstrap", "systemd-nspawn": "systemd-container", "ip": "iproute2", "ssh": "openssh-client", "ssh-keygen": "openssh-client"}


def apt_mirror() -> str:
    """The Debian mirror this machine's apt uses for SUITE (deb822 .sources first, then sources.list)."""
    for f in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", f.read_text()):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.strip().startswith("#") or ":" not in line:
                    continue
                k, v = line.split(":", 1)
                fields[k.strip().lower()] = v.strip()
            if fields.get("enabled", "yes").lower() == "no":
                continue
            if "deb" in fields.get("types", "").split() and SUITE in fields.get("suites", "").split() and fields.get("uris"):
                return fields["uris"].split()[0]
    lists = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]
    for f in lists:
        if not f.is_file():
            continue
        for line in f.read_text().splitlines():
            parts = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
            if len(parts) >= 3 and parts[0] == "deb" and parts[2] == SUITE:
                return parts[1]
    raise ToolError(f"no enabled 'deb' source for {SUITE} in /etc/apt/sources.list(.d): configure apt on this machine first")


def _masker() -> Callable[[str], str]:
    """Replaces the mirror's host name in text bound for logs or errors (it is never printed)."""
    hosts: set[str] = set()
    try:
        m = re.match(r"^[a-z+]+://([^/:]+)", apt_mirror())
        if m:
            hosts.add(m.group(1))
    except ToolError:
        pass
    for f in [*Path("/etc/apt/sources.list.d").glob("*.sources"), *Path("/etc/apt").glob("sources.list*"), *Path("/etc/apt/sources.list.d").glob("*.list")]:
        if f.is_file():
            hosts |= set(re.findall(r"\b[a-z][a-z0-9+.-]*://([^/\s:]+)", f.read_text()))

    def mask(text: str) -> str:
        for h in hosts:
            text = text.replace(h, "<apt-mirror>")
        return text

    return mask


def run_masked(cmd: Sequence[str], log: Path, env: dict[str, str] | None = None) -> None:
    """common.run with a log, but with the mirror's host name masked in the log and the error."""
    mask = _masker()
    with open(log, "a") as f:
        f.write(mask(f"$ {' '.join(cmd)}\n"))
        f.flush()
        p = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", env={**os.environ, **(env or {})})
        assert p.stdout
        for line in p.stdout:
            f.write(mask(line))
        rc = p.wait()
    if rc != 0:
        tail = "".join(open(log).readlines()[-25:])
        raise ToolError(mask(f"command failed ({rc}): {' '.join(cmd)}\n--- last lines of {log} ---\n{tail}"))


def ensure_host_tools() -> None:
    missing = sorted({pkg for tool, pkg in HOST_TOOLS.items() if not shutil.which(tool)})
    if not missing:
        return
    progress(f"installing {' '.join(missing)} on this machine")
    log = lab_dir() / "apt.log"
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    run_masked(["apt-get", "update", "-q"], log, env)
    run_masked(["apt-get", "install", "-y", "-q", *missing], log, env)


# ---------------------------------------------------------------------------------------------
# The image


def image_hash() -> str:
    return hashlib.sha256(json.dumps([SUITE, "minbase", IMAGE_PACKAGES, IMAGE_MASK, IMAGE_DISABLE, IMAGE_REVISION]).encode()).hexdigest()[:12]


def rootfs_path() -> Path:
    return lab_dir() / f"rootfs-{image_hash()}"


def _chroot(root: Path, *cmd: str, log: Path) -> None:
    run(["chroot", str(root), *cmd], env={"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}, log=log)


def ensure_rootfs() -> Path:
    """Build the Debian image once (debootstrap into a temp dir, renamed when complete)."""
    final = rootfs_path()
    if final.is_dir():
        return final
    ensure_host_tools()
    t0 = time.monotonic()
    tmp = final.with_name(final.name + ".tmp")
    _remove_tree(tmp)  # a half image from an interrupted build
    log = lab_dir() / f"{final.name}.log"
    log.write_text("")
    progress(f"building the lab image {final.name} ({len(IMAGE_PACKAGES)} packages + deps, a few minutes); log: {log}")
    # --foreign, then policy-rc.d, then the second stage: packages are configured with the
    # policy in place, so none starts a service inside the chroot (i.e. on this machine).
    # (debootstrap's second stage also writes one, and removes it when it finishes.)
    run_masked(["debootstrap", "--foreign", "--variant=minbase", f"--include={','.join(IMAGE_PACKAGES)}", SUITE, str(tmp), apt_mirror()], log)
    progress(f"image: packages downloaded and unpacked ({time.monotonic() - t0:.0f}s); configuring")
    policy = tmp / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\n# lab image build: no package starts a service\nexit 101\n")
    policy.chmod(0o755)
    try:
        run_masked(["chroot", str(tmp), "/debootstrap/debootstrap", "--second-stage"], log, {"LC_ALL": "C"})
    finally:
        _unmount_under(tmp / "proc")
        _unmount_under(tmp / "sys")
        _unmount_under(tmp / "dev")
    progress(f"image: packages configured ({time.monotonic() - t0:.0f}s); finishing")
    policy.write_text("#!/bin/sh\n# lab image build: no package starts a service\nexit 101\n")
    policy.chmod(0o755)
    _chroot(tmp, "systemctl", "mask", *IMAGE_MASK, log=log)
    _chroot(tmp, "systemctl", "disable", *IMAGE_DISABLE, log=log)
    _chroot(tmp, "apt-get", "clean", log=log)
    policy.unlink()
    # Per-host identity is made per host (lab up): no shared SSH host keys or machine-id.
    for k in (tmp / "etc/ssh").glob("ssh_host_*"):
        k.unlink()
    (tmp / "etc/machine-id").write_text("")
    (tmp / "var/lib/dbus/machine-id").unlink(missing_ok=True)  # dbus's copy; each host links it to /etc/machine-id
    # The hosts reach no mirror and no DNS server; keep no trace of this machine's.
    (tmp / "etc/apt/sources.list").write_text("# lab image: the hosts reach no package mirror; the packages they need are baked in.\n")
    (tmp / "var/log/bootstrap.log").unlink(missing_ok=True)  # names the mirror; the masked log is beside the image
    for d in ("var/lib/apt/lists",):
        for p in (tmp / d).glob("*"):
            if p.is_file():
                p.unlink()
    (tmp / "etc/resolv.conf").unlink(missing_ok=True)
    (tmp / "etc/resolv.conf").write_text("# lab host: no DNS server; the nodes' names are in /etc/hosts\n")
    (tmp / "etc/hostname").write_text("lab\n")
    mask = _masker()
    leaks = [p for p in _grep_files(tmp, mask)]
    if leaks:
        raise ToolError(f"the image still names this machine's apt mirror in: {', '.join(leaks[:10])}")
    tmp.rename(final)
    size = _out(["du", "-sh", "--one-file-system", str(final)]).split()[0]
    progress(f"image {final.name} built in {time.monotonic() - t0:.0f}s ({size})")
    return final


def _grep_files(root: Path, mask: Callable[[str], str]) -> Iterable[str]:
    """Text files under etc/ and var/ (of an image) that mention a masked host name."""
    for sub in ("etc", "var/lib/apt", "var/log"):
        for dirpath, _, files in os.walk(root / sub):
            for fn in files:
                p = Path(dirpath) / fn
                if p.is_symlink() or not p.is_file() or p.stat().st_size > 4 << 20:
                    continue
                try:
                    text = p.read_text(errors="ignore")
                except OSError:
                    continue
                if mask(text) != text:
                    yield str(p.relative_to(root))


# ---------------------------------------------------------------------------------------------
# Lab key, per-host files


def ensure_lab_key() -> tuple[Path, str]:
    key = key_path()
    if not key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vm-platform-lab", "-f", str(key)])
        progress(f"made the lab SSH key {key}")
    return key, key.with_suffix(".pub").read_text().strip()


def host_key(h: LabHost) -> str | None:
    """The host's ed25519 public key as 'ssh-ed25519 AAAA...' (no comment), if it has one."""
    for base in (h.merged, h.dir / "upper"):
        p = base / "etc/ssh/ssh_host_ed25519_key.pub"
        if p.is_file():
            return " ".join(p.read_text().split()[:2])
    return None


def _write(path: Path, text: str, mode: int, changes: list[str], what: str) -> None:
    if path.is_file() and not path.is_symlink() and path.read_text() == text and (path.stat().st_mode & 0o7777) == mode:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        path.unlink()
    tmp = path.with_name(f".{path.name}.lab-tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    tmp.rename(path)
    changes.append(what)


def configure_host(h: LabHost, pubkey: str, changes: list[str]) -> None:
    """Identity, access and lab plumbing, written through the overlay (so into the upper dir)."""
    root = h.merged
    _write(root / "etc/hostname", f"{h.name}\n", 0o644, changes, f"{h.id}: hostname")
    _write(
        root / "etc/hosts", f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{h.address}\t{h.name}\n", 0o644, changes, f"{h.id}: /etc/hosts"
    )
    _write(root / "etc/resolv.conf", "# lab host: no DNS server; the nodes' names are in /etc/hosts\n", 0o644, changes, f"{h.id}: resolv.conf")
    mid = root / "etc/machine-id"
    if not mid.is_file() or not mid.read_text().strip():
        _write(mid, uuid.uuid4().hex + "\n", 0o444, changes, f"{h.id}: machine-id")
    dbus_id = root / "var/lib/dbus/machine-id"
    if not dbus_id.is_symlink():
        dbus_id.unlink(missing_ok=True)
        dbus_id.symlink_to("/etc/machine-id")
        changes.append(f"{h.id}: dbus machine-id")
    if not (root / "etc/ssh/ssh_host_ed25519_key").exists():
        _out(["ssh-keygen", "-A", "-f", str(root)])  # every default type, into <root>/etc/ssh
        changes.append(f"{h.id}: SSH host keys")
    (root / "root/.ssh").mkdir(mode=0o700, exist_ok=True)
    os.chmod(root / "root/.ssh", 0o700)
    _write(root / "root/.ssh/authorized_keys", pubkey + "\n", 0o600, changes, f"{h.id}: authorized_keys")
    _write(root / "etc/systemd/system" / CGROUP_UNIT_NAME, CGROUP_UNIT, 0o644, changes, f"{h.id}: cgroup unit")
    link = root / "etc/systemd/system/basic.target.wants" / CGROUP_UNIT_NAME
    if not link.is_symlink():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(f"/etc/systemd/system/{CGROUP_UNIT_NAME}")
        changes.append(f"{h.id}: cgroup unit enabled")
    (h.dir / "containerd").mkdir(exist_ok=True)


# ---------------------------------------------------------------------------------------------
# Network


def ensure_bridge(changes: list[str]) -> None:
    if not _link_exists(BRIDGE):
        run(["ip", "link", "add", BRIDGE, "type", "bridge"])
        changes.append(f"bridge {BRIDGE}")
    addr = f"{GATEWAY}/{NETWORK.prefixlen}"
    if addr not in _out(["ip", "-o", "-4", "addr", "show", "dev", BRIDGE]):
        run(["ip", "addr", "add", addr, "dev", BRIDGE])
        changes.append(f"bridge address {addr}")
    if "state UP" not in _out(["ip", "link", "show", "dev", BRIDGE]) and ",UP" not in _out(["ip", "link", "show", "dev", BRIDGE]):
        run(["ip", "link", "set", BRIDGE, "up"])
        changes.append(f"bridge {BRIDGE} up")


def ensure_netns(h: LabHost, changes: list[str]) -> None:
    if h.netns not in _netns_list():
        run(["ip", "netns", "add", h.netns])
        changes.append(f"{h.id}: netns {h.netns}")
    if not _link_exists(h.veth) or not _link_exists("eth0", h.netns):
        if _link_exists(h.veth):
            run(["ip", "link", "del", h.veth])
        run(["ip", "link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.netns])
        changes.append(f"{h.id}: veth {h.veth}")
    link = _out(["ip", "-o", "link", "show", "dev", h.veth])
    if f"master {BRIDGE}" not in link:
        run(["ip", "link", "set", h.veth, "master", BRIDGE])
        changes.append(f"{h.id}: veth into {BRIDGE}")
    if "state UP" not in link and "LOWER_UP" not in link:
        run(["ip", "link", "set", h.veth, "up"])
    addr = f"{h.address}/{NETWORK.prefixlen}"
    if addr not in _out(["ip", "-n", h.netns, "-o", "-4", "addr", "show", "dev", "eth0"]):
        run(["ip", "-n", h.netns, "addr", "add", addr, "dev", "eth0"])
        changes.append(f"{h.id}: address {h.address}")
    for dev in ("lo", "eth0"):
        if "UP" not in _out(["ip", "-n", h.netns, "-o", "link", "show", "dev", dev]).split(">")[0]:
            run(["ip", "-n", h.netns, "link", "set", dev, "up"])


def vxlan_supported() -> bool:
    """Whether a vxlan device can be made inside a network namespace (flannel's vxlan backend)."""
    ns = "vmp-vxlan-check"
    if ns in _netns_list():
        run(["ip", "netns", "del", ns])
    run(["ip", "netns", "add", ns])
    try:
        return _ok(["ip", "-n", ns, "link", "add", "vxlan-check", "type", "vxlan", "id", "1", "dstport", "8472", "nolearning"])
    finally:
        run(["ip", "netns", "del", ns])


# ---------------------------------------------------------------------------------------------
# cgroups: each host gets its own group in every hierarchy (else, with no systemd on the
# machine, every host's cgroup root is the machine's and two kubelets share /kubepods).


def cgroup_dirs() -> list[Path]:
    """This process's cgroup directory in every mounted hierarchy (v1 controllers and unified)."""
    own: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        own[ctrls] = path
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        pre, post = line.split(" - ", 1)
        fields, post_f = pre.split(), post.split()
        fstype, mroot, mpoint = post_f[0], fields[3], fields[4]
        if fstype == "cgroup2":
            key = ""
        elif fstype == "cgroup":
            opts = post_f[2].split(",")
            names = [o for o in opts if o not in ("rw", "ro") and not o.startswith(("release_agent", "clone_children", "noprefix", "xattr", "cpuset_v2_mode"))]
            key = next((k for k in own if k and set(k.split(",")) == set(names)), "")
            if not key:
                continue
        else:
            continue
        if key not in own:
            continue
        rel = os.path.relpath(own[key], mroot)
        out.append(Path(mpoint) / ("" if rel == "." else rel))
    return out


def make_host_cgroups(h: LabHost) -> list[Path]:
    dirs = []
    for parent in cgroup_dirs():
        d = parent / h.netns
        d.mkdir(exist_ok=True)
        if (parent / "cpuset.cpus").exists():
            for f in ("cpuset.cpus", "cpuset.mems"):
                (d / f).write_text((parent / f).read_text())
        dirs.append(d)
    (h.dir / "cgroups").write_text("".join(f"{d}\n" for d in dirs))
    return dirs


def _cgroup_tree_procs(d: Path) -> list[int]:
    pids: list[int] = []
    for dirpath, _, files in os.walk(d):
        if "cgroup.procs" in files:
            try:
                pids += [int(x) for x in (Path(dirpath) / "cgroup.procs").read_text().split()]
            except OSError:
                pass
    return pids


def remove_host_cgroups(h: LabHost) -> None:
    f = h.dir / "cgroups"
    dirs = [Path(x) for x in f.read_text().split()] if f.is_file() else []
    for d in dirs:
        if not d.is_dir():
            continue
        # Processes the lab started (the host's, left behind by a hard kill): by PID.
        for _ in range(20):
            pids = _cgroup_tree_procs(d)
            if not pids:
                break
            progress(f"{h.id}: killing {len(pids)} process(es) left in {d}")
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.25)
        subdirs = sorted((Path(p) for p, _, _ in os.walk(d)), key=lambda p: len(p.parts), reverse=True)
        for sd in subdirs:
            for _ in range(20):
                try:
                    sd.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.25)
            else:
                progress(f"{h.id}: could not remove cgroup {sd}")
    f.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# Boot, wait, stop


def nspawn_command(h: LabHost) -> list[str]:
    return [
        "systemd-nspawn", "-D", str(h.merged), "-M", h.name,
        "--register=no", "--keep-unit",  # no systemd (machined) on the machine to register with
        f"--network-namespace-path=/run/netns/{h.netns}",
        "--capability=all",  # CNI and iptables need CAP_NET_ADMIN (CAP_SYS_RESOURCE stays out of reach)
        "--system-call-filter=@keyring",  # runc joins a session keyring per container
        f"--bind={h.dir / 'containerd'}:/var/lib/containerd",  # overlayfs cannot be an upperdir on overlayfs
        "--bind-ro=/dev/kmsg",  # the kubelet's OOM watcher reads the kernel log
        "--resolv-conf=off",  # not this machine's resolver (unreachable from the lab network anyway)
        "--console=read-only", "-b",
    ]  # fmt: skip


def boot(h: LabHost, rootfs: Path, changes: list[str]) -> None:
    upper, work = h.dir / "upper", h.dir / "work"
    for d in (upper, work, h.merged):
        d.mkdir(parents=True, exist_ok=True)
    if not _mounted(h.merged):
        run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={rootfs},upperdir={upper},workdir={work}", str(h.merged)])
        changes.append(f"{h.id}: overlay root")


def launch(h: LabHost) -> int:
    dirs = make_host_cgroups(h)

    def into_host_cgroups() -> None:  # runs in the child, before exec
        for d in dirs:
            (d / "cgroup.procs").write_text(str(os.getpid()))

    log = open(h.dir / "console.log", "ab")
    p = subprocess.Popen(
        nspawn_command(h), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, close_fds=True,
        env={**os.environ, "SYSTEMD_NSPAWN_API_VFS_WRITABLE": "network"},  # /proc/sys/net writable inside
        start_new_session=True, preexec_fn=into_host_cgroups,
    )  # fmt: skip
    log.close()
    h.pid_file.write_text(f"{p.pid}\n")
    return p.pid


def ssh_cmd(h: LabHost, *cmd: str) -> list[str]:
    return ["ssh", "-i", str(key_path()), "-o", f"UserKnownHostsFile={known_hosts_path()}", *SSH_OPTS, f"root@{h.address}", *cmd]


def ssh_command(host: str) -> list[str]:
    """ssh to a lab host by node name (lab-master) or lab id (master); append the command."""
    for h in existing_hosts():
        if host in (h.name, h.id):
            return ssh_cmd(h)
    raise ToolError(f"no lab host {host!r} (hosts: {', '.join(h.name for h in existing_hosts()) or 'none'})")


def wait_ready(h: LabHost, timeout: float = 120) -> str:
    t0 = time.monotonic()
    while not _ok(ssh_cmd(h, "true"), timeout=10):
        if not _running(h):
            tail = "".join((h.dir / "console.log").read_text(errors="replace").splitlines(keepends=True)[-20:])
            raise ToolError(f"{h.id}: the nspawn process exited; last console lines:\n{tail}")
        if time.monotonic() - t0 > timeout:
            raise ToolError(f"{h.id}: no SSH on {h.address} after {timeout:.0f}s (console: {h.dir / 'console.log'})")
        time.sleep(0.3)
    t_ssh = time.monotonic() - t0
    p = subprocess.run(ssh_cmd(h, "timeout", str(int(timeout)), "systemctl", "is-system-running", "--wait"), capture_output=True, text=True)
    state = p.stdout.strip() or p.stderr.strip()
    if state not in ("running", "degraded"):
        raise ToolError(f"{h.id}: systemd says {state!r}")
    if state == "degraded":
        failed = _out(ssh_cmd(h, "systemctl", "--failed", "--no-legend", "--plain"), check=False).strip()
        progress(f"{h.id}: degraded; failed units: {failed}")
    progress(f"{h.id}: ssh after {t_ssh:.1f}s, systemd {state} after {time.monotonic() - t0:.1f}s")
    return state


def stop(h: LabHost) -> None:
    pid = _running(h)
    if pid:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while _pid_alive(pid, h.name) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _pid_alive(pid, h.name):
            progress(f"{h.id}: still running after 15s; SIGKILL")
            os.kill(pid, signal.SIGKILL)
            while _pid_alive(pid, h.name):
                time.sleep(0.1)
        progress(f"{h.id}: stopped (pid {pid})")
    h.pid_file.unlink(missing_ok=True)


def ensure_machine_sysctls(changes: list[str]) -> None:
    saved = lab_dir() / "machine-sysctls.json"
    before = json.loads(saved.read_text()) if saved.is_file() else {}
    for key, want in MACHINE_SYSCTLS.items():
        p = _sysctl_path(key)
        have = p.read_text().strip()
        if have == want:
            continue
        try:
            p.write_text(want)
        except OSError as e:
            progress(f"cannot set {key.replace('/', '.')}={want} on this machine ({e.strerror}); the kubelet will refuse to start with protectKernelDefaults")
            continue
        before.setdefault(key, have)
        changes.append(f"machine sysctl {key.replace('/', '.')}={want} (was {have})")
    if before:
        saved.write_text(json.dumps(before, indent=1) + "\n")


def restore_machine_sysctls() -> None:
    saved = lab_dir() / "machine-sysctls.json"
    if not saved.is_file():
        return
    for key, value in json.loads(saved.read_text()).items():
        try:
            _sysctl_path(key).write_text(value)
            progress(f"machine sysctl {key.replace('/', '.')} restored to {value}")
        except OSError as e:
            progress(f"could not restore {key}: {e.strerror}")
    saved.unlink()


# ---------------------------------------------------------------------------------------------
# The local stack's config


def binaries_dir() -> Path:
    return cache_dir() / "bin" / pins()["lab"]["kubernetes"]


# Kubelet settings for a node that is an nspawn container on a cgroup-v1 machine without
# CAP_SYS_RESOURCE. Each value with the reason, rendered as a comment in Pulumi.local.yaml.
KUBELET_OVERRIDES: list[tuple[str, Any, str]] = [
    ("failCgroupV1", False, "cgroup-v1 machine; true (the default from 1.35) exits: 'kubelet is configured to not run on a host using cgroup v1'"),
    ("maxOpenFiles", 20000, "hard limit here, no CAP_SYS_RESOURCE; more only logs 'Failed to set rlimit on max file handles'"),
    (
        "protectKernelDefaults",
        True,
        "/proc/sys is read-only inside; false exits: 'open /proc/sys/kernel/panic: read-only file system' (lab.py sets them on the machine)",
    ),
]
KUBELET_UNCHANGED = "defaults kept (checked in the lab): cgroupsPerQOS, localStorageCapacityIsolation, eviction thresholds, kernelMemcgNotification"


def stack_config(workers: int | None = None, *, host_keys: dict[str, str] | None = None, backend: str | None = None) -> tuple[dict[str, Any], str]:
    """(config, key path): the `local` stack's non-secret config as Pulumi.local.yaml holds it
    (`vm-platform:`-prefixed keys), and the lab's private key, which the operator stores as the
    secret sshPrivateKey. tests/e2e/conftest.py uses both.

    workers defaults to the lab's current worker count; host_keys (node name -> 'ssh-ed25519
    AAAA...') and backend default to the running lab's (pass them to build a config without one)."""
    values = _stack_values(workers if workers is not None else _current_workers(), host_keys, backend)
    return {f"vm-platform:{k}": v for k, v in values.items()}, str(key_path())


def _current_workers() -> int:
    return max(1, sum(1 for h in existing_hosts() if h.id != "master"))


def _stack_values(workers: int, host_keys: dict[str, str] | None, backend: str | None) -> dict[str, Any]:
    hosts = lab_hosts(workers)
    if host_keys is None:
        host_keys = {}
        for h in hosts:
            k = host_key(h)
            if not k:
                raise ToolError(f"{h.id} has no SSH host key yet: run `python3 -m tools.lab up` first")
            host_keys[h.name] = k
    if backend is None:
        f = lab_dir() / "flannel-backend"
        backend = f.read_text().strip() if f.is_file() else "vxlan"
    images = "~/.cache/vm-platform/images"

    def host(h: LabHost) -> dict[str, str]:
        return {"name": h.name, "address": h.address, "hostKey": host_keys[h.name]}

    return {
        "environment": "local",
        "kubernetesVersion": pins()["lab"]["kubernetes"],
        "pauseImage": "pause:3.10",
        "ssh": {"user": "root", "port": 22},
        "controlPlane": host(hosts[0]),
        "workers": [host(h) for h in hosts[1:]],
        "network": {
            "hostCidr": str(NETWORK),
            "podCidr": "10.244.0.0/16",
            "podSubnetLength": 24,
            "backend": backend,
            "serviceCidr": "10.96.0.0/16",
            "clusterDns": "10.96.0.10",
            "clusterDomain": "cluster.local",
            "loadBalancer": "none",
        },  # fmt: skip
        "binaries": {"source": "local", "localDir": str(binaries_dir()), "etcdVersion": pins()["lab"]["etcd"], "flannelVersion": pins()["lab"]["flannel"]},
        "registry": {
            "port": 5000,
            "tls": True,
            "auth": False,
            "storageDir": "/var/lib/registry",
            "binary": "/usr/bin/docker-registry",
            "images": [
                {"name": "pause:3.10", "archive": f"{images}/pause-3.10.oci.tar"},
                {"name": "eureka-server:1.0.0", "archive": f"{images}/eureka-server-1.0.0.oci.tar"},
            ],
        },  # fmt: skip
        "hostPackages": {"controlPlane": list(HOST_PACKAGES["controlPlane"]), "worker": list(HOST_PACKAGES["worker"])},
        "runtime": {"cgroupDriver": "cgroupfs", "restrictOomScoreAdj": True, "cniBinDir": "/usr/lib/cni", "snapshotter": "overlayfs", "maxOpenFiles": 20000},
        "kubelet": {k: v for k, v, _ in KUBELET_OVERRIDES},
        "eureka": {
            "namespace": "platform",
            "image": "eureka-server:1.0.0",
            "replicas": 2,
            "serviceType": "NodePort",
            "servicePort": 80,
            "containerPort": 8761,
            "hostPort": 0,
            "maxSurge": "1",
            "maxUnavailable": "0",
            "minAvailable": 1,
            "resources": {"requests": {"cpu": "250m", "memory": "384Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
        },  # fmt: skip
        "maintenance": {"nodes": [], "drain": True},
        "namespaces": ["platform"],
    }


_PLAIN = re.compile(r"^[A-Za-z0-9_./~+-][A-Za-z0-9_./~:+ -]*$")
_YAML_SPECIAL = {"true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"}


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    s = str(v)
    if not s or not _PLAIN.match(s) or s.lower() in _YAML_SPECIAL or re.fullmatch(r"[-+0-9.]+", s) or s.endswith(" ") or ": " in s:
        return json.dumps(s)
    return s


def _emit(key: str, v: Any, indent: int, comments: dict[str, str], path: str) -> list[str]:
    pad = " " * indent
    note = f"  # {comments[path]}" if path in comments else ""
    if isinstance(v, dict):
        if not v:
            return [f"{pad}{key}: {{}}{note}"]
        if (
            all(not isinstance(x, (dict, list)) and len(_scalar(x)) <= 24 for x in v.values())
            and len(v) <= 3
            and path not in comments
            and not any(f"{path}.{k}" in comments for k in v)
        ):
            return [f"{pad}{key}: {{{', '.join(f'{k}: {_scalar(x)}' for k, x in v.items())}}}"]
        lines = [f"{pad}{key}:{note}"]
        for k, x in v.items():
            lines += _emit(k, x, indent + 2, comments, f"{path}.{k}")
        return lines
    if isinstance(v, list):
        if all(not isinstance(x, (dict, list)) for x in v):
            return [f"{pad}{key}: [{', '.join(_scalar(x) for x in v)}]{note}"]
        lines = [f"{pad}{key}:{note}"]
        for x in v:
            sub = [ln for k, y in x.items() for ln in _emit(k, y, indent + 4, comments, f"{path}[].{k}")]
            lines += [f"{pad}  - {sub[0].lstrip()}", *sub[1:]]
        return lines
    return [f"{pad}{key}: {_scalar(v)}{note}"]


def render_stack_yaml(cfg: dict[str, Any], key: str) -> str:
    comments = {f"kubelet.{k}": why for k, _, why in KUBELET_OVERRIDES}
    comments["network.backend"] = (
        "per tools/lab.py's check: vxlan devices work inside a network namespace"
        if cfg["network"]["backend"] == "vxlan"
        else "vxlan devices cannot be made inside a network namespace here"
    )
    comments["kubelet"] = KUBELET_UNCHANGED
    comments["network.loadBalancer"] = "nothing announces LoadBalancer addresses in the lab"
    comments["runtime.restrictOomScoreAdj"] = "no CAP_SYS_RESOURCE: pod sandboxes cannot lower oom_score_adj"
    comments["runtime.cgroupDriver"] = "the kubelet manages /kubepods directly on the host's own cgroup-v1 subtree"
    comments["eureka.serviceType"] = "no load balancer in the lab; reach it on a node port"
    body = [ln for k, v in cfg.items() for ln in _emit(f"vm-platform:{k}", v, 2, comments, k)]
    header = [
        "# local: the lab on this machine (tools/lab.py): nspawn hosts on the bridge " + BRIDGE + " (" + str(NETWORK) + ").",
        "# Written by `python3 -m tools.lab up` (re-run it after `lab down`: host keys change); not committed.",
        f"# Secret, set once per lab key: pulumi config set --secret sshPrivateKey < {key}",
        "config:",
    ]
    return "\n".join(header + body) + "\n"


def write_stack_file(workers: int, backend: str) -> tuple[Path, bool]:
    path = ROOT / "Pulumi.local.yaml"
    text = render_stack_yaml(_stack_values(workers, None, backend), str(key_path())) + _kept_secrets(path)
    changed = not path.exists() or path.read_text() != text
    write_if_changed(path, text)
    return path, changed


def _kept_secrets(path: Path) -> str:
    """The parts of an existing Pulumi.local.yaml that pulumi wrote: the secure values and the
    encryption salt. Rewriting the file must keep them, or the stack's secrets (in config and in
    state) could no longer be decrypted."""
    if not path.exists():
        return ""
    text = path.read_text()
    kept = [f"  {k}:\n    secure: {v}\n" for k, v in re.findall(r"^  (\S+):\n    secure: (\S+)$", text, re.M)]
    kept += [f"encryptionsalt: {v}\n" for v in re.findall(r"^encryptionsalt: (\S+)$", text, re.M)]
    return "".join(kept)


# ---------------------------------------------------------------------------------------------
# Commands


def up(workers: int) -> None:
    t0 = time.monotonic()
    if os.geteuid() != 0:
        raise ToolError("the lab needs root (network namespaces, mounts, cgroups)")
    changes: list[str] = []
    rootfs = ensure_rootfs()
    key, pubkey = ensure_lab_key()
    bins = _ensure_binaries()
    backend_file = lab_dir() / "flannel-backend"
    if not backend_file.is_file():
        backend = "vxlan" if vxlan_supported() else "host-gw"
        backend_file.write_text(backend + "\n")
        progress(f"flannel backend: {backend} (vxlan device {'can' if backend == 'vxlan' else 'cannot'} be made in a network namespace)")
    backend = backend_file.read_text().strip()
    ensure_machine_sysctls(changes)
    ensure_bridge(changes)

    wanted = lab_hosts(workers)
    for extra in [h for h in existing_hosts() if h.id not in {w.id for w in wanted}]:
        progress(f"{extra.id}: not in this lab (--workers {workers}); removing it")
        host_down(extra)
        changes.append(f"{extra.id}: removed")

    started: list[tuple[LabHost, float]] = []
    for h in wanted:
        h.dir.mkdir(parents=True, exist_ok=True)
        ensure_netns(h, changes)
        boot(h, rootfs, changes)
        lower = next((o for m, t, o in _mounts() if m == str(h.merged)), "")
        if f"lowerdir={rootfs}" not in lower:
            progress(f"{h.id}: runs on an older image; `lab down` then `lab up` to move it to {rootfs.name}")
        configure_host(h, pubkey, changes)
        if not _running(h):
            pid = launch(h)
            started.append((h, time.monotonic()))
            changes.append(f"{h.id}: booted (pid {pid})")
    _write(known_hosts_path(), "".join(f"{h.address} {host_key(h)}\n" for h in wanted), 0o644, changes, "known_hosts")
    for h, ts in started:
        wait_ready(h)
        progress(f"{h.id}: up in {time.monotonic() - ts:.1f}s after launch")
    if not started:
        for h in wanted:
            if not _ok(ssh_cmd(h, "true"), timeout=10):
                raise ToolError(f"{h.id}: running (pid {_running(h)}) but SSH to {h.address} fails; try `lab down` then `lab up`")
    path, cfg_changed = write_stack_file(workers, backend)
    if cfg_changed:
        changes.append(f"{path.name}")
    if changes:
        progress(f"lab up in {time.monotonic() - t0:.1f}s; changed:")
        for line in _group(changes):
            progress(f"  {line}")
    else:
        progress("lab already up: nothing changed")
    for h in wanted:
        print(f"{h.name:14} {h.address:12} ssh -i {key} -o UserKnownHostsFile={known_hosts_path()} root@{h.address}")
    print(f"stack config: {path} (binaries: {bins})")
    print("next, once per lab key:")
    print(f"  pulumi config set --stack local --secret sshPrivateKey < {key}")


def _group(changes: list[str]) -> list[str]:
    """'master: hostname', 'master: netns' -> 'master: hostname, netns' (order kept)."""
    groups: dict[str, list[str]] = {}
    for c in changes:
        head, _, rest = c.partition(": ")
        key, item = (head, rest) if rest and " " not in head else ("lab", c)
        groups.setdefault(key, []).append(item)
    return [f"{k}: {', '.join(v)}" for k, v in groups.items()]


def _ensure_binaries() -> Path:
    from . import binaries

    return binaries.ensure()


def host_down(h: LabHost) -> None:
    stop(h)
    # nspawn's mount-propagation dir: it declines to remove it when /run is a disk file system.
    _remove_tree(Path("/run/systemd/nspawn/propagate") / h.name)
    remove_host_cgroups(h)
    _unmount_under(h.dir)
    if _link_exists(h.veth):
        run(["ip", "link", "del", h.veth])
    if h.netns in _netns_list():
        run(["ip", "netns", "del", h.netns])
    _remove_tree(h.dir)
    progress(f"{h.id}: removed")


def down() -> None:
    t0 = time.monotonic()
    errors = []
    for h in existing_hosts():
        try:
            host_down(h)
        except (ToolError, OSError) as e:
            errors.append(f"{h.id}: {e}")
    if _link_exists(BRIDGE):
        run(["ip", "link", "del", BRIDGE])
        progress(f"bridge {BRIDGE} removed")
    known_hosts_path().unlink(missing_ok=True)
    restore_machine_sysctls()
    if errors:
        raise ToolError("lab down left state behind:\n" + "\n".join(errors))
    progress(f"lab down in {time.monotonic() - t0:.1f}s (kept: the image {rootfs_path().name} and the lab key)")


def status() -> int:
    hosts = existing_hosts()
    print(
        f"bridge {BRIDGE}: {'present' if _link_exists(BRIDGE) else 'absent'}; image {rootfs_path().name}: {'built' if rootfs_path().is_dir() else 'not built'}"
    )
    if not hosts:
        print("no lab hosts")
        return 1
    bad = 0
    for h in hosts:
        netns = h.netns in _netns_list()
        pid = _running(h)
        ssh = pid is not None and _ok(ssh_cmd(h, "true"), timeout=10)
        state = _out(ssh_cmd(h, "systemctl", "is-system-running"), check=False, timeout=15).strip() if ssh else "-"
        bad += not (netns and pid and ssh and state in ("running", "degraded"))
        print(f"{h.name:14} {h.address:12} netns={'yes' if netns else 'no':3} pid={pid or '-':<8} ssh={'ok' if ssh else 'no':3} systemd={state}")
    return 1 if bad else 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tools.lab", description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=("up", "down", "status"))
    ap.add_argument("--workers", type=int, default=None, help="number of worker hosts (up; default: as many as are up now, else 1)")
    a = ap.parse_args(argv)
    if a.workers is None:
        a.workers = _current_workers()
    if a.workers < 1 or a.workers > 20:
        ap.error("--workers must be 1..20")
    try:
        if a.command == "up":
            up(a.workers)
        elif a.command == "down":
            down()
        else:
            return status()
    except ToolError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
