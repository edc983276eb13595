"""The lab's Debian image: one debootstrap root, built once and shared by every host's overlay.

It carries every package the bootstrap's prereqs step checks for, so that step is a no-op on
hosts that reach no mirror. The mirror is read from this machine's apt configuration and never
named: logs and errors mask it, and the build fails if the finished image still names it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from components.settings.reference import default_config
from tools.common import ToolError, progress, run

from . import system
from .instance import lab_root, lock

SUITE = "bookworm"

# What the bootstrap's prereqs step checks for: the settings' defaults (hostPackages), baked in.
HOST_PACKAGES = default_config()["hostPackages"]
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

HOST_TOOLS = {"debootstrap": "debootstrap", "systemd-nspawn": "systemd-container", "ip": "iproute2", "ssh": "openssh-client", "ssh-keygen": "openssh-client"}
NO_SERVICES = "#!/bin/sh\n# lab image build: no package starts a service\nexit 101\n"
NO_DNS = "# lab host: no DNS server; the nodes' names are in /etc/hosts\n"


# ---------------------------------------------------------------------------------------------
# The apt mirror (read from this machine's config, never named here)


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


def masker() -> Callable[[str], str]:
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
    mask = masker()
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
    log = lab_root() / "apt.log"
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    run_masked(["apt-get", "update", "-q"], log, env)
    run_masked(["apt-get", "install", "-y", "-q", *missing], log, env)


# ---------------------------------------------------------------------------------------------
# The image


def image_hash() -> str:
    return hashlib.sha256(json.dumps([SUITE, "minbase", IMAGE_PACKAGES, IMAGE_MASK, IMAGE_DISABLE, IMAGE_REVISION]).encode()).hexdigest()[:12]


def rootfs_path() -> Path:
    return lab_root() / f"rootfs-{image_hash()}"


def ensure_rootfs() -> Path:
    """Build the Debian image once (debootstrap into a temp dir, renamed when complete)."""
    final = rootfs_path()
    if final.is_dir():
        return final
    with lock("rootfs"):  # another instance's `up` may be building it right now
        if not final.is_dir():
            _build(final)
    return final


def _build(final: Path) -> None:
    ensure_host_tools()
    t0 = time.monotonic()
    tmp = final.with_name(final.name + ".tmp")
    system.remove_tree(tmp)  # a half image from an interrupted build
    log = lab_root() / f"{final.name}.log"
    log.write_text("")
    progress(f"building the lab image {final.name} ({len(IMAGE_PACKAGES)} packages + deps, a few minutes); log: {log}")
    _debootstrap(tmp, log, t0)
    progress(f"image: packages configured ({time.monotonic() - t0:.0f}s); finishing")
    _finish(tmp, log)
    leaks = list(_grep_files(tmp, masker()))
    if leaks:
        raise ToolError(f"the image still names this machine's apt mirror in: {', '.join(leaks[:10])}")
    tmp.rename(final)
    size = system.out(["du", "-sh", "--one-file-system", str(final)]).split()[0]
    progress(f"image {final.name} built in {time.monotonic() - t0:.0f}s ({size})")


def _debootstrap(tmp: Path, log: Path, t0: float) -> None:
    """--foreign, then policy-rc.d, then the second stage: packages are configured with the
    policy in place, so none starts a service inside the chroot (i.e. on this machine).
    (debootstrap's second stage also writes one, and removes it when it finishes.)"""
    run_masked(["debootstrap", "--foreign", "--variant=minbase", f"--include={','.join(IMAGE_PACKAGES)}", SUITE, str(tmp), apt_mirror()], log)
    progress(f"image: packages downloaded and unpacked ({time.monotonic() - t0:.0f}s); configuring")
    policy = tmp / "usr/sbin/policy-rc.d"
    policy.write_text(NO_SERVICES)
    policy.chmod(0o755)
    try:
        run_masked(["chroot", str(tmp), "/debootstrap/debootstrap", "--second-stage"], log, {"LC_ALL": "C"})
    finally:
        for d in ("proc", "sys", "dev"):
            system.unmount_under(tmp / d)


def _chroot(root: Path, *cmd: str, log: Path) -> None:
    run(["chroot", str(root), *cmd], env={"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}, log=log)


def _finish(tmp: Path, log: Path) -> None:
    """Units masked and disabled, no shared identity, no trace of this machine's mirror or DNS."""
    policy = tmp / "usr/sbin/policy-rc.d"
    policy.write_text(NO_SERVICES)
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
    for p in (tmp / "var/lib/apt/lists").glob("*"):
        if p.is_file():
            p.unlink()
    (tmp / "etc/resolv.conf").unlink(missing_ok=True)
    (tmp / "etc/resolv.conf").write_text(NO_DNS)
    (tmp / "etc/hostname").write_text("lab\n")


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
