"""Stack configuration, read in one place and turned into frozen, typed settings.

Everything is validated before any resource is registered. All problems are collected and
reported at once; each names the key path, what was expected, what was found, and the
`pulumi config set --path ...` command that fixes it.

`parse_settings(raw, stack)` works on plain dicts (unit tests call it directly);
`load_settings()` reads the current stack's config and calls it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

PROJECT = "vm-platform"

SUPPORTED_K8S_MINORS = range(30, 38)
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")
LB_IMPLEMENTATIONS = ("none", "external")
FLANNEL_BACKENDS = ("vxlan", "host-gw")
BINARY_SOURCES = ("release", "local")

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_K8S_VERSION = re.compile(r"^v1\.(\d+)\.(\d+)$")
_SEMVER = re.compile(r"^v?\d+\.\d+\.\d+$")
_HOST_KEY = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,3}$")
_REPO = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_CPU = re.compile(r"^(\d+m|\d+(\.\d+)?)$")
_MEMORY = re.compile(r"^\d+(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_PERCENT_OR_INT = re.compile(r"^(\d+|\d{1,3}%)$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_SHA256 = re.compile(r"^[a-f0-9]{64}$")
_KUBELET_SETTING = re.compile(r"^[a-zA-Z][a-zA-Z0-9]*$")


class Secret:
    """A secret config value. Never printed; turned into a secret Output where it is used."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def output(self) -> Any:
        import pulumi

        return pulumi.Output.secret(self._value)

    def __repr__(self) -> str:
        return "Secret(****)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Problem:
    path: str
    expected: str
    found: Any
    fix: str

    def __str__(self) -> str:
        return f"{self.path}: expected {self.expected}, found {_show(self.found)}. Fix: {self.fix}"


class ConfigError(Exception):
    """All configuration problems of a stack, reported at once."""

    def __init__(self, stack: str, problems: list[Problem]) -> None:
        self.stack = stack
        self.problems = problems
        lines = [f"stack '{stack}' has {len(problems)} configuration problem(s):"]
        lines += [f"  - {p}" for p in problems]
        super().__init__("\n".join(lines))


class Described(str):
    """A found-value that is a description (e.g. "a plaintext value"), shown without quotes."""


def _show(value: Any) -> str:
    if isinstance(value, Described):
        return str(value)
    if value is _MISSING:
        return "nothing (the key is not set)"
    if isinstance(value, Secret):
        return "a secret value"
    return json.dumps(value) if not isinstance(value, str) else f'"{value}"'


_MISSING = object()


# ---------------------------------------------------------------------------------------------
# Typed settings


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    host_key: str


@dataclass(frozen=True)
class SshSettings:
    user: str
    port: int
    private_key: Secret
    dial_error_limit: int
    per_dial_timeout: int


@dataclass(frozen=True)
class NetworkSettings:
    host_cidr: str
    pod_cidr: str
    pod_subnet_length: int
    backend: str
    service_cidr: str
    cluster_dns: str
    cluster_domain: str
    api_server_port: int
    load_balancer: str

    @property
    def kubernetes_service_ip(self) -> str:
        return str(next(ipaddress.ip_network(self.service_cidr).hosts()))


@dataclass(frozen=True)
class BinarySettings:
    source: str
    release_base_url: str
    local_dir: str
    etcd_version: str
    flannel_version: str
    sha256: Mapping[str, str]


@dataclass(frozen=True)
class RegistryImage:
    name: str  # repository:tag inside the private registry
    archive: str  # OCI archive on the machine running Pulumi ("" = pushed by other means)


@dataclass(frozen=True)
class RegistrySettings:
    port: int
    tls: bool
    allow_plain_http: bool
    auth: bool
    username: str
    password: Secret | None
    storage_dir: str
    binary: str
    images: tuple[RegistryImage, ...]


@dataclass(frozen=True)
class RuntimeSettings:
    cgroup_driver: str
    restrict_oom_score_adj: bool
    cni_bin_dir: str
    snapshotter: str
    max_open_files: int


@dataclass(frozen=True)
class PackageSettings:
    control_plane: tuple[str, ...]
    worker: tuple[str, ...]


@dataclass(frozen=True)
class Resources:
    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str


@dataclass(frozen=True)
class EurekaSettings:
    namespace: str
    image: str  # repository:tag (or repository@digest) inside the private registry
    replicas: int
    service_type: str
    service_port: int
    container_port: int
    host_port: int  # 0 = off
    max_surge: str
    max_unavailable: str
    min_available: int
    resources: Resources


@dataclass(frozen=True)
class MaintenanceSettings:
    nodes: tuple[str, ...]
    drain: bool


@dataclass(frozen=True)
class AppSecret:
    name: str
    namespace: str
    data: Mapping[str, Secret]


@dataclass(frozen=True)
class Settings:
    stack: str
    environment: str
    kubernetes_version: str
    ssh: SshSettings
    control_plane: Host
    workers: tuple[Host, ...]
    network: NetworkSettings
    binaries: BinarySettings
    registry: RegistrySettings
    pause_image: str
    runtime: RuntimeSettings
    packages: PackageSettings
    kubelet: Mapping[str, Any]
    eureka: EurekaSettings
    maintenance: MaintenanceSettings
    namespaces: tuple[str, ...]
    secrets: tuple[AppSecret, ...] = field(default_factory=tuple)

    @property
    def registry_host(self) -> str:
        """host:port of the private registry, as nodes and image references name it."""
        return f"{self.control_plane.address}:{self.registry.port}"

    def image_ref(self, repo_tag: str) -> str:
        return f"{self.registry_host}/{repo_tag}"

    @property
    def schedulable_workers(self) -> tuple[Host, ...]:
        return tuple(w for w in self.workers if w.name not in self.maintenance.nodes)

    @property
    def cluster_id(self) -> str:
        """Stable identifier of the cluster for the Kubernetes provider (survives new kubeconfigs)."""
        return f"{PROJECT}-{self.stack}-{self.control_plane.name}"


# ---------------------------------------------------------------------------------------------
# Parsing


class _Reader:
    """Reads typed values from the raw config, collecting problems instead of raising."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.problems: list[Problem] = []

    def problem(self, path: str, expected: str, found: Any, fix_value: Any, secret: bool = False) -> None:
        self.problems.append(Problem(path, expected, found, fix_command(path, fix_value, secret)))

    def get(self, path: str) -> Any:
        node: Any = self.raw
        for part in _split(path):
            if isinstance(part, int):
                if not isinstance(node, list) or part >= len(node):
                    return _MISSING
                node = node[part]
            else:
                if not isinstance(node, Mapping) or part not in node:
                    return _MISSING
                node = node[part]
        return node

    def value(
        self,
        path: str,
        check: Callable[[Any], bool],
        expected: str,
        fix_value: Any,
        default: Any = _MISSING,
        convert: Callable[[Any], Any] = lambda v: v,
    ) -> Any:
        v = self.get(path)
        if v is _MISSING and default is not _MISSING:
            return default
        try:
            ok = v is not _MISSING and check(v)
        except (ValueError, TypeError):
            ok = False
        if not ok:
            self.problem(path, expected, v, fix_value)
            return default if default is not _MISSING else None
        return convert(v)

    def string(self, path: str, pattern: re.Pattern[str] | None, expected: str, fix: Any, default: Any = _MISSING) -> Any:
        return self.value(path, lambda v: isinstance(v, str) and (pattern is None or bool(pattern.match(v))), expected, fix, default)

    def integer(self, path: str, lo: int, hi: int, fix: Any, default: Any = _MISSING) -> Any:
        return self.value(
            path,
            lambda v: _as_int(v) is not None and lo <= _as_int(v) <= hi,  # type: ignore[operator]
            f"an integer from {lo} to {hi}",
            fix,
            default,
            convert=_as_int,
        )

    def boolean(self, path: str, fix: Any, default: Any = _MISSING) -> Any:
        return self.value(path, lambda v: _as_bool(v) is not None, "true or false", fix, default, convert=_as_bool)

    def enum(self, path: str, choices: Iterable[str], default: Any = _MISSING) -> Any:
        choices = tuple(choices)
        return self.string(path, re.compile("^(" + "|".join(map(re.escape, choices)) + ")$"), "one of " + ", ".join(choices), choices[0], default)

    def ipv4(self, path: str, fix: Any) -> Any:
        return self.value(path, lambda v: isinstance(v, str) and ipaddress.IPv4Address(v) is not None, "an IPv4 address", fix)

    def cidr(self, path: str, fix: Any) -> Any:
        return self.value(
            path,
            lambda v: isinstance(v, str) and "/" in v and ipaddress.IPv4Network(v, strict=True) is not None,
            "an IPv4 network in CIDR form (e.g. 10.0.0.0/16, host bits zero)",
            fix,
        )

    def listing(self, path: str, fix: Any, default: Any = _MISSING) -> Any:
        return self.value(path, lambda v: isinstance(v, list), "a list", fix, default)


def _split(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for token in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        parts.append(int(token[1:-1]) if token.startswith("[") else token)
    return parts


def _as_int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and re.fullmatch(r"-?\d+", v.strip()):
        return int(v)
    return None


def _as_bool(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    return None


def _leaves(path: str, value: Any) -> list[tuple[str, Any]]:
    """(path, scalar) pairs for a structured value, in `pulumi config set --path` syntax."""
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(f"{path}.{k}", v)]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(f"{path}[{i}]", v)]
    return [(path, value)]


def _quote(text: str) -> str:
    return text if re.fullmatch(r"[A-Za-z0-9._/:%@+=-]+", text) else "'" + text.replace("'", "'\\''") + "'"


def fix_command(path: str, value: Any = None, secret: bool = False) -> str:
    """The `pulumi config` command(s) that set `path` to `value` (structured values leaf by leaf)."""
    if value is None:  # secrets: let pulumi prompt for the value so it never reaches shell history
        return f"pulumi config set {'--path ' if '.' in path or '[' in path else ''}--secret {path}"
    if value == [] or value == {}:
        return f"pulumi config rm --path {_quote(path)}"
    commands = []
    for leaf_path, leaf in _leaves(path, value):
        rendered = leaf if isinstance(leaf, str) else json.dumps(leaf)
        commands.append(f"pulumi config set --path {_quote(leaf_path)} {_quote(rendered)}")
    return " && ".join(commands)


def parse_image(ref: str) -> tuple[str, str, str] | None:
    """Split `repo:tag` or `repo@sha256:...` into (repo, tag, digest); None when malformed."""
    if "@" in ref:
        repo, digest = ref.split("@", 1)
        return (repo, "", digest) if _REPO.match(repo) and _DIGEST.match(digest) else None
    if ":" not in ref:
        return None
    repo, tag = ref.rsplit(":", 1)
    return (repo, tag, "") if _REPO.match(repo) and _TAG.match(tag) else None


def _pinned_image(v: Any) -> bool:
    parsed = parse_image(v) if isinstance(v, str) else None
    return parsed is not None and parsed[1] != "latest"


def _package_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) and re.match(r"^[A-Za-z0-9.+_-]+$", x) for x in v)


def _quantity(pattern: re.Pattern[str]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and bool(pattern.match(v))


def _cpu_millis(v: str) -> float:
    return float(v[:-1]) if v.endswith("m") else float(v) * 1000


_MEM_FACTORS = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def _mem_bytes(v: str) -> float:
    m = re.match(r"^(\d+)(\w*)$", v)
    assert m
    return int(m.group(1)) * _MEM_FACTORS[m.group(2)]


def parse_settings(raw: Mapping[str, Any], stack: str) -> Settings:
    """Validate the raw config of `stack` and return typed settings, or raise ConfigError."""
    r = _Reader(raw)

    environment = r.string("environment", _DNS_LABEL, "a lower-case name such as dev or prod", stack)
    k8s_version = r.string("kubernetesVersion", _K8S_VERSION, "a Kubernetes version such as v1.34.4", "v1.34.4")
    if k8s_version:
        minor = int(_K8S_VERSION.match(k8s_version).group(1))  # type: ignore[union-attr]
        if minor not in SUPPORTED_K8S_MINORS:
            r.problem(
                "kubernetesVersion",
                f"a supported minor version (v1.{SUPPORTED_K8S_MINORS.start} to v1.{SUPPORTED_K8S_MINORS.stop - 1})",
                k8s_version,
                "v1.34.4",
            )

    # SSH
    ssh_user = r.string("ssh.user", re.compile(r"^[a-z_][a-z0-9_-]*$"), "a user name", "root", default="root")
    ssh_port = r.integer("ssh.port", 1, 65535, 22, default=22)
    dial_limit = r.integer("ssh.dialErrorLimit", 1, 1000, 10, default=10)
    dial_timeout = r.integer("ssh.perDialTimeout", 1, 600, 15, default=15)
    key = raw.get("sshPrivateKey", _MISSING)
    private_key: Secret | None = None
    if not isinstance(key, Secret) or "PRIVATE KEY" not in key.reveal():
        found = key if not isinstance(key, str) else Described("a plaintext value (it must be stored as a secret)")
        r.problems.append(
            Problem("sshPrivateKey", "an SSH private key stored as a secret", found, "pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519")
        )
    else:
        private_key = key

    # Hosts
    def host(path: str, fix_name: str, fix_addr: str) -> Host | None:
        name = r.string(f"{path}.name", _DNS_LABEL, "a host name (lower-case letters, digits, '-')", fix_name)
        address = r.ipv4(f"{path}.address", fix_addr)
        host_key = r.string(f"{path}.hostKey", _HOST_KEY, "the host's public SSH key ('ssh-ed25519 AAAA...', from ssh-keyscan)", "ssh-ed25519 AAAA...")
        if name and address and host_key:
            return Host(name, address, host_key)
        return None

    control_plane = host("controlPlane", "master", "192.168.0.10")
    workers_raw = r.listing("workers", [{"name": "worker-1", "address": "192.168.0.11", "hostKey": "ssh-ed25519 AAAA..."}])
    workers: list[Host] = []
    if workers_raw is not None:
        if not workers_raw:
            r.problem("workers", "at least one worker host", workers_raw, [{"name": "worker-1", "address": "192.168.0.11", "hostKey": "ssh-ed25519 AAAA..."}])
        for i in range(len(workers_raw)):
            w = host(f"workers[{i}]", f"worker-{i + 1}", f"192.168.0.{11 + i}")
            if w:
                workers.append(w)
    all_hosts = ([control_plane] if control_plane else []) + workers
    seen_names: dict[str, str] = {}
    seen_addrs: dict[str, str] = {}
    for i, h in enumerate(all_hosts):
        path = "controlPlane" if (control_plane and i == 0) else f"workers[{workers.index(h)}]"
        if h.name in seen_names:
            r.problem(f"{path}.name", f"a node name not already used by {seen_names[h.name]}", h.name, f"{h.name}-{i}")
        seen_names.setdefault(h.name, path)
        if h.address in seen_addrs:
            r.problem(f"{path}.address", f"an address not already used by {seen_addrs[h.address]}", h.address, "192.168.0.20")
        seen_addrs.setdefault(h.address, path)

    # Network
    host_cidr = r.cidr("network.hostCidr", "192.168.0.0/24")
    pod_cidr = r.cidr("network.podCidr", "172.30.0.0/16")
    pod_len = r.integer("network.podSubnetLength", 16, 28, 24, default=24)
    backend = r.enum("network.backend", FLANNEL_BACKENDS, default="vxlan")
    service_cidr = r.cidr("network.serviceCidr", "10.254.0.0/16")
    cluster_dns = r.ipv4("network.clusterDns", "10.254.0.10")
    cluster_domain = r.string("network.clusterDomain", _DNS_SUBDOMAIN, "a DNS domain", "cluster.local", default="cluster.local")
    api_port = r.integer("network.apiServerPort", 1, 65535, 6443, default=6443)
    load_balancer = r.enum("network.loadBalancer", LB_IMPLEMENTATIONS, default="none")
    nets = {"network.hostCidr": host_cidr, "network.podCidr": pod_cidr, "network.serviceCidr": service_cidr}
    parsed_nets = {k: ipaddress.IPv4Network(v) for k, v in nets.items() if v}
    keys = list(parsed_nets)
    for a_i, a in enumerate(keys):
        for b in keys[a_i + 1 :]:
            if parsed_nets[a].overlaps(parsed_nets[b]):
                r.problem(b, f"a range that does not overlap {a} ({nets[a]})", nets[b], "10.254.0.0/16" if b.endswith("serviceCidr") else "172.30.0.0/16")
    if host_cidr:
        hn = ipaddress.IPv4Network(host_cidr)
        for i, h in enumerate(all_hosts):
            if ipaddress.IPv4Address(h.address) not in hn:
                path = "controlPlane" if (control_plane and i == 0) else f"workers[{workers.index(h)}]"
                r.problem(f"{path}.address", f"an address inside network.hostCidr ({host_cidr})", h.address, str(next(hn.hosts())))
    if pod_cidr and pod_len:
        pn = ipaddress.IPv4Network(pod_cidr)
        if pod_len <= pn.prefixlen:
            r.problem("network.podSubnetLength", f"a prefix length longer than the pod network's /{pn.prefixlen}", pod_len, min(pn.prefixlen + 8, 28))
        elif 2 ** (pod_len - pn.prefixlen) < len(all_hosts):
            r.problem("network.podSubnetLength", f"room for one subnet per node ({len(all_hosts)} nodes)", pod_len, pn.prefixlen + 8)
    if service_cidr and cluster_dns:
        sn = ipaddress.IPv4Network(service_cidr)
        dns = ipaddress.IPv4Address(cluster_dns)
        if dns not in sn or dns == next(sn.hosts()):
            r.problem(
                "network.clusterDns",
                f"an address inside network.serviceCidr ({service_cidr}) other than its first, which the kubernetes Service takes",
                cluster_dns,
                str(list(_take(sn.hosts(), 10))[-1]),
            )

    # Binaries
    source = r.enum("binaries.source", BINARY_SOURCES, default="release")
    base_url = r.string("binaries.releaseBaseUrl", re.compile(r"^https://[^\s]+$"), "an https:// URL", "https://example.invalid/release", default="")
    local_dir = r.string("binaries.localDir", re.compile(r"^/"), "an absolute path on this machine", "/var/cache/vm-platform/bin", default="")
    if source == "release" and not base_url:
        r.problem("binaries.releaseBaseUrl", "an https:// URL when binaries.source is release", _MISSING, "https://example.invalid/release")
    if source == "local":
        if not local_dir:
            r.problem("binaries.localDir", "a directory when binaries.source is local", _MISSING, "/root/.cache/vm-platform/bin")
        elif not os.path.isdir(os.path.expandvars(os.path.expanduser(local_dir))):
            r.problem("binaries.localDir", "an existing directory with the cluster binaries (python -m tools.binaries builds it)", local_dir, local_dir)
    etcd_version = r.string("binaries.etcdVersion", _SEMVER, "a version such as v3.6.5", "v3.6.5", default="v3.6.5")
    flannel_version = r.string("binaries.flannelVersion", _SEMVER, "a version such as v0.27.4", "v0.27.4", default="v0.27.4")
    sha = r.value("binaries.sha256", lambda v: isinstance(v, Mapping), "a map of binary name to sha256", {}, default={})
    for name, digest in (sha or {}).items():
        if not (isinstance(digest, str) and _SHA256.match(digest)):
            r.problem(f"binaries.sha256.{name}", "a 64-character lower-case sha256", digest, "0" * 64)

    # Registry
    reg_port = r.integer("registry.port", 1, 65535, 5000, default=5000)
    tls = r.boolean("registry.tls", True, default=True)
    allow_http = r.boolean("registry.allowPlainHttp", False, default=False)
    if tls is False and allow_http is False:
        r.problem("registry.tls", "true: this stack does not allow a plain-http registry (registry.allowPlainHttp is false)", False, True)
    auth = r.boolean("registry.auth", True, default=False)
    username = r.string("registry.username", re.compile(r"^[A-Za-z0-9._-]+$"), "a user name", "platform", default="")
    password = raw.get("registryPassword", _MISSING)
    if auth:
        if not username:
            r.problem("registry.username", "a user name when registry.auth is true", _MISSING, "platform")
        if not isinstance(password, Secret):
            found = password if not isinstance(password, str) else Described("a plaintext value (it must be stored as a secret)")
            r.problems.append(
                Problem("registryPassword", "a password stored as a secret when registry.auth is true", found, fix_command("registryPassword", secret=True))
            )
    storage_dir = r.string(
        "registry.storageDir", re.compile(r"^/[^\s]*$"), "an absolute path on the control-plane host", "/var/lib/registry", default="/var/lib/registry"
    )
    reg_binary = r.string(
        "registry.binary",
        re.compile(r"^/[^\s]*$"),
        "the absolute path of the registry (distribution) binary on the control-plane host",
        "/usr/bin/docker-registry",
        default="/usr/bin/docker-registry",
    )
    images: list[RegistryImage] = []
    for i in range(len(r.listing("registry.images", [], default=[]) or [])):
        name = r.value(f"registry.images[{i}].name", _pinned_image, "an image name with a tag other than latest (repo:tag)", "pause:3.10")
        archive = r.string(
            f"registry.images[{i}].archive",
            re.compile(r"^((/|~|\$).*)?$"),
            "an absolute path to an OCI archive on this machine (or empty when the image is pushed by other means)",
            "/path/to/image.tar",
            default="",
        )
        if archive and not os.path.isfile(os.path.expandvars(os.path.expanduser(archive))):
            r.problem(
                f"registry.images[{i}].archive", "an existing OCI archive on this machine (python -m tools.images builds the platform's)", archive, archive
            )
        if name:
            images.append(RegistryImage(name, archive))
    pause = r.value("pauseImage", _pinned_image, "the pod-sandbox image as repo:tag inside the private registry", "pause:3.10", default="pause:3.10")
    if pause and pause not in {i.name for i in images}:
        r.problem(
            "registry.images",
            f"a list that includes the pause image ({pause}) so nodes never reach the internet for it",
            [i.name for i in images],
            [{"name": pause, "archive": "/path/to/pause.tar"}] + [{"name": i.name, "archive": i.archive} for i in images],
        )

    cgroup_driver = r.enum("runtime.cgroupDriver", ("systemd", "cgroupfs"), default="systemd")
    restrict_oom = r.boolean("runtime.restrictOomScoreAdj", False, default=False)
    cni_bin_dir = r.string(
        "runtime.cniBinDir", re.compile(r"^/[^\s]*$"), "an absolute directory of CNI plugins on the workers", "/usr/lib/cni", default="/usr/lib/cni"
    )
    snapshotter = r.enum("runtime.snapshotter", ("overlayfs", "native"), default="overlayfs")
    max_open_files = r.integer("runtime.maxOpenFiles", 1024, 1 << 20, 1048576, default=1048576)
    pkg_default_cp = ["openssl", "curl", "ca-certificates", "docker-registry", "skopeo", "apache2-utils"]
    pkg_default_worker = ["openssl", "curl", "ca-certificates", "containerd", "runc", "containernetworking-plugins", "iptables", "conntrack"]
    pkgs_cp, pkgs_worker = (
        r.value(f"hostPackages.{role}", _package_list, "a list of OS package names", default, default=default)
        for role, default in (("controlPlane", pkg_default_cp), ("worker", pkg_default_worker))
    )

    kubelet = r.value(
        "kubelet",
        lambda v: isinstance(v, Mapping) and all(isinstance(k, str) and _KUBELET_SETTING.match(k) for k in v),
        "a map of KubeletConfiguration fields (camelCase) to values",
        {},
        default={},
    )

    # Eureka
    ns_names = r.listing("namespaces", ["platform"], default=[]) or []
    eureka_ns = r.string("eureka.namespace", _DNS_LABEL, "a namespace name", "platform", default="platform")
    eureka_image = r.value("eureka.image", _pinned_image, "an image in the private registry as repo:tag (not latest) or repo@sha256:...", "eureka-server:1.0.0")
    replicas = r.integer("eureka.replicas", 0, 100, 2, default=2)
    service_type = r.enum("eureka.serviceType", SERVICE_TYPES, default="ClusterIP")
    service_port = r.integer("eureka.servicePort", 1, 65535, 80, default=80)
    container_port = r.integer("eureka.containerPort", 1, 65535, 8761, default=8761)
    host_port = r.integer("eureka.hostPort", 0, 65535, 0, default=0)
    max_surge = r.value(
        "eureka.maxSurge", lambda v: _PERCENT_OR_INT.match(str(v)) is not None, "an integer or a percentage such as 25%", "25%", default="25%", convert=str
    )
    max_unavail = r.value(
        "eureka.maxUnavailable", lambda v: _PERCENT_OR_INT.match(str(v)) is not None, "an integer or a percentage such as 25%", "0", default="0", convert=str
    )
    if max_surge in ("0", "0%") and max_unavail in ("0", "0%"):
        r.problem("eureka.maxUnavailable", "a non-zero value when eureka.maxSurge is 0 (a rollout could never make progress)", max_unavail, "1")
    min_available = r.integer("eureka.minAvailable", 0, 100, 1, default=1)
    if replicas is not None and min_available is not None and replicas > 0 and min_available >= replicas:
        r.problem("eureka.minAvailable", f"fewer than eureka.replicas ({replicas}) so a node can be drained", min_available, max(replicas - 1, 0))
    cpu_req = r.value("eureka.resources.requests.cpu", _quantity(_CPU), "a CPU quantity such as 250m", "250m", default="250m")
    mem_req = r.value("eureka.resources.requests.memory", _quantity(_MEMORY), "a memory quantity such as 384Mi", "384Mi", default="384Mi")
    cpu_lim = r.value("eureka.resources.limits.cpu", _quantity(_CPU), "a CPU quantity such as 1", "1", default="1")
    mem_lim = r.value("eureka.resources.limits.memory", _quantity(_MEMORY), "a memory quantity such as 512Mi", "512Mi", default="512Mi")
    if cpu_req and cpu_lim and _cpu_millis(cpu_req) > _cpu_millis(cpu_lim):
        r.problem("eureka.resources.limits.cpu", f"at least the request ({cpu_req})", cpu_lim, cpu_req)
    if mem_req and mem_lim and _mem_bytes(mem_req) > _mem_bytes(mem_lim):
        r.problem("eureka.resources.limits.memory", f"at least the request ({mem_req})", mem_lim, mem_req)
    if service_type == "LoadBalancer" and load_balancer == "none":
        r.problem(
            "eureka.serviceType",
            "ClusterIP or NodePort: network.loadBalancer is none, so a LoadBalancer Service would never get an address",
            service_type,
            "NodePort",
        )

    # Maintenance
    m_nodes = r.listing("maintenance.nodes", [], default=[]) or []
    worker_names = [w.name for w in workers]
    for i, n in enumerate(m_nodes):
        if n not in worker_names:
            r.problem(
                f"maintenance.nodes[{i}]", "the name of a worker (one of " + ", ".join(worker_names) + ")", n, worker_names[0] if worker_names else "worker-1"
            )
    drain = r.boolean("maintenance.drain", True, default=True)
    schedulable = [w for w in worker_names if w not in m_nodes]
    if workers and not schedulable and replicas:
        r.problem("maintenance.nodes", "a list that leaves at least one worker schedulable", m_nodes, m_nodes[:-1])
    if host_port and replicas is not None and replicas > len(schedulable) and workers:
        r.problem(
            "eureka.hostPort",
            f"0 (off): with hostPort each node runs one replica, and {replicas} replicas > {len(schedulable)} schedulable worker(s) leaves pods Pending",
            host_port,
            0,
        )

    # Namespaces and secrets
    namespaces: list[str] = []
    for i, n in enumerate(ns_names):
        if not (isinstance(n, str) and _DNS_LABEL.match(n)):
            r.problem(f"namespaces[{i}]", "a namespace name (DNS label)", n, "platform")
        elif n in namespaces:
            r.problem(f"namespaces[{i}]", "a namespace listed once", n, [x for x in ns_names if x != n] + [n])
        elif n in ("default", "kube-system", "kube-public", "kube-node-lease"):
            r.problem(f"namespaces[{i}]", "a namespace the platform creates (not a built-in one)", n, "platform")
        else:
            namespaces.append(n)
    if eureka_ns and eureka_ns not in namespaces:
        namespaces.append(eureka_ns)
    secrets: list[AppSecret] = []
    raw_secrets = raw.get("secrets", {})
    if not isinstance(raw_secrets, Mapping):
        r.problem("secrets", "a map of secret name to {namespace, data}", raw_secrets, {})
        raw_secrets = {}
    for sname, spec in raw_secrets.items():
        path = f"secrets.{sname}"
        if not _DNS_SUBDOMAIN.match(sname):
            r.problem(path, "a Secret name (DNS subdomain)", sname, {})
            continue
        if not isinstance(spec, Mapping):
            r.problem(path, "an object {namespace, data}", spec, {"namespace": eureka_ns or "platform", "data": {}})
            continue
        sns = spec.get("namespace", eureka_ns)
        if sns not in namespaces:
            r.problem(f"{path}.namespace", "a namespace the platform manages (" + ", ".join(namespaces) + ")", sns, eureka_ns or "platform")
        data: dict[str, Secret] = {}
        for k, v in (spec.get("data") or {}).items():
            if not _SECRET_KEY.match(k):
                r.problem(f"{path}.data", "keys of letters, digits, '-', '_' and '.'", k, "password")
            elif not isinstance(v, Secret):
                r.problems.append(
                    Problem(f"{path}.data.{k}", "a value stored as a secret", Described("a plaintext value"), fix_command(f"{path}.data.{k}", secret=True))
                )
            else:
                data[k] = v
        secrets.append(AppSecret(sname, sns, data))

    if r.problems:
        raise ConfigError(stack, r.problems)

    assert control_plane and private_key is not None
    return Settings(
        stack=stack,
        environment=environment,
        kubernetes_version=k8s_version,
        ssh=SshSettings(ssh_user, ssh_port, private_key, dial_limit, dial_timeout),
        control_plane=control_plane,
        workers=tuple(workers),
        network=NetworkSettings(host_cidr, pod_cidr, pod_len, backend, service_cidr, cluster_dns, cluster_domain, api_port, load_balancer),
        binaries=BinarySettings(source, base_url, local_dir, etcd_version, flannel_version, dict(sha or {})),
        registry=RegistrySettings(
            reg_port, tls, allow_http, auth, username, password if isinstance(password, Secret) else None, storage_dir, reg_binary, tuple(images)
        ),
        pause_image=pause,
        runtime=RuntimeSettings(cgroup_driver, restrict_oom, cni_bin_dir, snapshotter, max_open_files),
        packages=PackageSettings(tuple(pkgs_cp or ()), tuple(pkgs_worker or ())),
        kubelet=dict(kubelet or {}),
        eureka=EurekaSettings(
            eureka_ns,
            eureka_image,
            replicas,
            service_type,
            service_port,
            container_port,
            host_port,
            max_surge,
            max_unavail,
            min_available,
            Resources(cpu_req, mem_req, cpu_lim, mem_lim),
        ),
        maintenance=MaintenanceSettings(tuple(m_nodes), drain),
        namespaces=tuple(namespaces),
        secrets=tuple(secrets),
    )


def _take(it: Iterable[Any], n: int) -> Iterable[Any]:
    for i, x in enumerate(it):
        if i >= n:
            return
        yield x


# Top-level keys that are read as structured objects, and the ones that hold secrets.
_OBJECT_KEYS = (
    "ssh",
    "controlPlane",
    "workers",
    "network",
    "binaries",
    "registry",
    "runtime",
    "hostPackages",
    "kubelet",
    "eureka",
    "maintenance",
    "namespaces",
)
_SCALAR_KEYS = ("environment", "kubernetesVersion", "pauseImage")
_SECRET_KEYS = ("sshPrivateKey", "registryPassword")


def load_settings() -> Settings:
    """Read the current stack's config (without registering anything) and validate it.

    Problems end the program with one clean error listing them all (no traceback)."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    stack = pulumi.get_stack()
    raw: dict[str, Any] = {}
    for key in _SCALAR_KEYS:
        v = runtime_config.get_config(f"{PROJECT}:{key}")
        if v is not None:
            raw[key] = v
    for key in _OBJECT_KEYS:
        v = runtime_config.get_config(f"{PROJECT}:{key}")
        if v is not None:
            try:
                raw[key] = json.loads(v)
            except json.JSONDecodeError:
                raw[key] = v
    for key in _SECRET_KEYS:
        v = runtime_config.get_config(f"{PROJECT}:{key}")
        if v is not None:
            raw[key] = Secret(v) if runtime_config.is_config_secret(f"{PROJECT}:{key}") else v
    sv = runtime_config.get_config(f"{PROJECT}:secrets")
    if sv is not None:
        secret = runtime_config.is_config_secret(f"{PROJECT}:secrets")
        parsed = json.loads(sv)
        for spec in parsed.values() if isinstance(parsed, dict) else []:
            if isinstance(spec, dict) and isinstance(spec.get("data"), dict):
                spec["data"] = {k: (Secret(str(val)) if secret else val) for k, val in spec["data"].items()}
        raw["secrets"] = parsed
    try:
        return parse_settings(raw, stack)
    except ConfigError as e:
        raise pulumi.RunError(str(e)) from None
