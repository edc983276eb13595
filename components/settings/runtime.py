"""What runs on the hosts: Kubernetes version and binaries, the container runtime, OS packages,
kubelet overrides and the cluster PKI."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .core import Edit, Reader
from .fields import REMOVE, Bool, Choice, FreeMap, Int, Kind, Names, Number, Spec, Text, as_bool, as_int, setting

TYPE_CHECKING = False  # typing is not imported at run time (import cost of every preview)
if TYPE_CHECKING:
    from typing import Any

SUPPORTED_K8S_MINORS = range(30, 38)
BINARY_SOURCES = ("release", "local")
SEMVER = r"v?\d+\.\d+\.\d+"
SHA256 = r"[a-f0-9]{64}"
PACKAGE = r"[A-Za-z0-9.+_-]+"


class KubernetesVersion(Kind):
    """v1.<minor>.<patch> with a minor the host scripts and templates support."""

    shape = f"v1.{SUPPORTED_K8S_MINORS.start}.0 to v1.{SUPPORTED_K8S_MINORS.stop - 1}.x"

    def __init__(self) -> None:
        super().__init__("a Kubernetes version such as v1.34.4")

    def explain(self, v: Any) -> str | None:
        m = re.fullmatch(r"v1\.(\d+)\.(\d+)", v) if isinstance(v, str) else None
        if m is None:
            return self.expected
        if int(m.group(1)) not in SUPPORTED_K8S_MINORS:
            return f"a supported minor version (v1.{SUPPORTED_K8S_MINORS.start} to v1.{SUPPORTED_K8S_MINORS.stop - 1})"
        return None


# The executables of the etcd release the control plane runs (etcdutl: snapshot restore).
ETCD_BINARIES = ("etcd", "etcdctl", "etcdutl")
VERSION_PLACEHOLDER = "{kubernetesVersion}"  # in binaries.localDir: the stack's version
KUBERNETES_VERSION = Spec(KubernetesVersion(), doc="Kubernetes version of every component", example="v1.34.4")


@dataclass(frozen=True)
class BinarySettings:
    """Where the hosts get their executables: official release URLs (sha256-checked) or a local directory."""

    source: str = setting(Choice(*BINARY_SOURCES), "release", "release: download on the hosts; local: copy from binaries.localDir")
    release_base_url: str = setting(Text(r"https://\S+", "an https:// URL", shape="URL"), "", "Kubernetes release URL (when source is release)")
    local_dir: str = setting(
        Text(r"/.*", "an absolute path on this machine", shape="path"),
        "",
        "directory of the cluster binaries on this machine (when source is local); `{kubernetesVersion}` in it is replaced by the stack's version, so an upgrade changes one key",
        example="/var/cache/vm-platform/bin/{kubernetesVersion}",
    )
    etcd_version: str = setting(Text(SEMVER, "a version such as v3.6.5"), "v3.6.5", "etcd version")
    flannel_version: str = setting(Text(SEMVER, "a version such as v0.27.4"), "v0.27.4", "flannel version")
    sha256: Mapping[str, str] = setting(
        FreeMap(None, "a map of binary name to sha256"), {}, "`{name: hex}` pins; otherwise the checksum published beside each file is used"
    )


@dataclass(frozen=True)
class RuntimeSettings:
    """containerd and the kubelet's view of it."""

    cgroup_driver: str = setting(Choice("systemd", "cgroupfs"), "systemd", "cgroup driver of containerd and the kubelet")
    restrict_oom_score_adj: bool = setting(Bool(), False, "containerd's restrict_oom_score_adj (hosts without CAP_SYS_RESOURCE)")
    cni_bin_dir: str = setting(
        Text(r"/\S*", "an absolute directory of CNI plugins on the workers", shape="path"), "/usr/lib/cni", "CNI plugin directory on the workers"
    )
    snapshotter: str = setting(Choice("overlayfs", "native"), "overlayfs", "containerd snapshotter")
    max_open_files: int = setting(Int(1024, 1 << 20), 1048576, "open-file limit of containerd")


_PACKAGES = Names(PACKAGE, "a list of OS package names", shape="list of package names")


@dataclass(frozen=True)
class PackageSettings:
    """OS packages the bootstrap installs when missing (the defaults are Debian's names)."""

    control_plane: tuple[str, ...] = setting(
        _PACKAGES, ("openssl", "curl", "ca-certificates", "docker-registry", "skopeo", "apache2-utils"), "packages of the control-plane host"
    )
    worker: tuple[str, ...] = setting(
        _PACKAGES,
        ("openssl", "curl", "ca-certificates", "containerd", "runc", "containernetworking-plugins", "iptables", "conntrack"),
        "packages of every worker",
    )


@dataclass(frozen=True)
class PkiSettings:
    """Lifetimes of the certificates the bootstrap issues (the cluster CA and every certificate it signs)."""

    ca_validity_days: int = setting(Int(30, 36500), 3650, "validity of the cluster CA, in days")
    cert_validity_days: int = setting(Int(1, 3650), 365, "validity of each certificate the CA signs, in days (at most caValidityDays)")
    renew_days: float = setting(
        Number(0, 3650),
        30,
        "`up` renews every leaf certificate that expires within this many days (the preview shows it and the restarts first); a CA in it gets a warning (0: never; fractions allowed; unset, at most a third of certValidityDays)",
    )

    @property
    def renewal_window_days(self) -> float:
        """renew_days, or a third of cert_validity_days when that is shorter: what the default
        shrinks to (a renewDays written that long is refused: checks.py)."""
        return window_days(self.renew_days, self.cert_validity_days)


def window_days(renew_days: float, cert_validity_days: int) -> float:
    return renew_days if renew_days < cert_validity_days else round(cert_validity_days / 3, 3)


KUBELET = Spec(
    FreeMap(r"[a-zA-Z][a-zA-Z0-9]*", "a map of KubeletConfiguration fields (camelCase) to values"),
    {},
    "KubeletConfiguration fields merged (deeply) over the platform's defaults; anonymous or unauthorized access is refused",
    custom=True,
)


def parse_binaries(r: Reader) -> BinarySettings:
    values = r.section(BinarySettings, "binaries")
    for name, digest in (values["sha256"] or {}).items():
        if not (isinstance(digest, str) and re.fullmatch(SHA256, digest)):
            path = f"binaries.sha256.{name}"
            r.problem(path, "a 64-character lower-case sha256", digest, fixes=[(Edit(path, REMOVE),)])
            values["sha256"] = None
    return BinarySettings(**values)


def parse_runtime(r: Reader) -> RuntimeSettings:
    return RuntimeSettings(**r.section(RuntimeSettings, "runtime"))


def parse_packages(r: Reader) -> PackageSettings:
    return PackageSettings(**r.section(PackageSettings, "hostPackages"))


def parse_pki(r: Reader) -> PkiSettings:
    return PkiSettings(**r.section(PkiSettings, "pki"))


def _dig(m: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(m, Mapping) or k not in m:
            return None
        m = m[k]
    return m


def refuse_open_kubelet(r: Reader, kubelet: Mapping[str, Any]) -> None:
    """The kubelet API runs commands in pods: overrides must not open it to anonymous or
    unauthorized clients (the merge is deep, so only these keys can do that)."""
    anonymous = _dig(kubelet, "authentication", "anonymous", "enabled")
    if anonymous is not None and as_bool(anonymous) is not False:
        r.problem(
            "kubelet.authentication.anonymous.enabled",
            "false: an anonymous kubelet API lets anyone who reaches a node read its pods and run commands in them",
            anonymous,
            False,
        )
    mode = _dig(kubelet, "authorization", "mode")
    if mode is not None and mode != "Webhook":
        r.problem("kubelet.authorization.mode", "Webhook: any other mode lets every client that reaches the kubelet do everything", mode, "Webhook")
    port = kubelet.get("readOnlyPort")
    if port is not None and as_int(port) != 0:
        r.problem("kubelet.readOnlyPort", "0 (off): the read-only port serves pod and node details without authentication", port, 0)
