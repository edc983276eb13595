"""Where each host gets its Kubernetes, etcd and flannel executables.

Per stack: `release` downloads official release files on the host and checks their sha256
(pinned in `binaries.sha256`, else the checksum published beside the file); `local` copies
files from a directory on the machine running Pulumi (the lab builds them) and checks the
sha256 computed here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from . import remote as r
from .settings import Settings
from .settings.runtime import ETCD_BINARIES
from .steps import CommandStep, Dependency, HostSteps

KUBERNETES_CONTROL_PLANE_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
KUBERNETES_WORKER_BINARIES = ("kubelet", "kube-proxy")
FLANNEL_BINARIES = ("flanneld",)
NETPOL_BINARIES = ("vmp-netpol",)  # the project's own: only ever from binaries.localDir
STAGE_DIR = r.STAGE_DIR


@dataclass(frozen=True)
class BinarySource:
    """How one executable reaches a host: a URL (optionally a tarball member) or a local file."""

    name: str
    url: str = ""
    member: str = ""
    local_path: str = ""
    sha256: str = ""


def source_for(settings: Settings, name: str) -> BinarySource:
    b = settings.binaries
    pinned = b.sha256.get(name, "")
    if b.source == "local":
        path = os.path.join(settings.binaries_dir, name)
        return BinarySource(name, local_path=path, sha256=pinned or (r.file_sha256(path) if os.path.exists(path) else ""))
    if name in ETCD_BINARIES:
        v = b.etcd_version
        return BinarySource(
            name,
            url=f"https://github.com/etcd-io/etcd/releases/download/{v}/etcd-{v}-linux-amd64.tar.gz",
            member=f"etcd-{v}-linux-amd64/{name}",
            sha256=pinned,
        )
    if name == "flanneld":
        return BinarySource(name, url=f"https://github.com/flannel-io/flannel/releases/download/{b.flannel_version}/flanneld-amd64", sha256=pinned)
    return BinarySource(name, url=f"{b.release_base_url.rstrip('/')}/{settings.kubernetes_version}/bin/linux/amd64/{name}", sha256=pinned)


def install_binaries(
    steps: HostSteps, settings: Settings, names: Sequence[str], *, after: Sequence[Dependency], install_after: Sequence[Dependency] = ()
) -> dict[str, CommandStep]:
    """One install step per executable (`<prefix>-bin-<name>`). Returns name -> step; a step's
    digest is the executable's version stamp, so a restart that reads it follows upgrades.
    install_after: what the installs (not the copies to the host's staging dir) also wait for,
    e.g. a worker's drain before its new kubelet."""
    installed: dict[str, CommandStep] = {}
    for name in names:
        src = source_for(settings, name)
        env: dict[str, object] = {"NAME": name}
        deps: Sequence[Dependency] = after
        if src.local_path:
            if not os.path.exists(src.local_path):
                raise pulumi.RunError(f"binaries.localDir: expected {src.local_path} to exist (build it with `python -m tools.binaries`), found nothing")
            staged = f"{STAGE_DIR}/{name}"
            deps = [steps.copy(f"stage-{name}", src.local_path, staged, digest=src.sha256, triggers=[src.sha256], after=after)]
            env.update(SRC=staged, SHA256=src.sha256)
        else:
            env.update(URL=src.url)
            if src.member:
                env["MEMBER"] = src.member
            if src.sha256:
                env["ARCHIVE_SHA256" if src.member else "SHA256"] = src.sha256
        installed[name] = steps.run(
            f"bin-{name}",
            "install-binary.sh",
            env=env,
            delete=("remove-file.sh", {"DEST": f"/usr/local/bin/{name}"}),
            after=[*deps, *install_after],
            digest=version_stamp(settings, name),
        )
    return installed


def version_stamp(settings: Settings, name: str) -> str:
    """What identifies the executable a service runs: a restart trigger for that service."""
    src = source_for(settings, name)
    return src.sha256 or src.url
