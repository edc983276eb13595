"""Stack configuration, read in one place and turned into frozen, typed settings.

Everything is validated before any resource is registered. All problems are collected and
reported at once; each names the key path, what was expected, what was found, and the
`pulumi config set --path ...` command that fixes it (checked against every other rule first).
A key the platform does not read is refused with a did-you-mean.

One module per concern (hosts, network, registry, runtime, workloads, maintenance), each with
its frozen dataclasses, whose field metadata declares every key once, and its parse function;
every rule between fields of different keys lives in checks.py. reference.py renders
Pulumi.yaml's `config:` block and the README's config reference from the same declarations.

`parse_settings(raw, stack)` works on plain dicts (unit tests call it directly);
`load_settings()` reads the current stack's config and calls it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from .core import PROJECT, ConfigError, Described, Problem, Reader, Secret, fix_command
from .fields import Section, Text, described, setting
from .hosts import CONTROL_PLANE_DOC, DNS_LABEL, WORKERS, Host, SshSettings, parse_hosts, parse_ssh
from .maintenance import EtcdSnapshotSettings, MaintenanceSettings, NodeLossSettings, parse_etcd_snapshots, parse_maintenance, parse_node_loss
from .network import FLANNEL_BACKENDS, LB_IMPLEMENTATIONS, NetworkSettings, parse_network
from .platform import DnsSettings, MetalLBSettings, parse_dns, parse_metallb
from .registry import PAUSE_IMAGE, RegistryImage, RegistrySettings, parse_image, parse_registry
from .runtime import (
    BINARY_SOURCES,
    KUBELET,
    KUBERNETES_VERSION,
    SUPPORTED_K8S_MINORS,
    VERSION_PLACEHOLDER,
    BinarySettings,
    PackageSettings,
    PkiSettings,
    RuntimeSettings,
    parse_binaries,
    parse_packages,
    parse_pki,
    parse_runtime,
    refuse_open_kubelet,
)
from .workloads import (
    NAMESPACES,
    SECRETS,
    SERVICE_TYPES,
    SERVICES,
    AppSecret,
    EurekaSettings,
    Resources,
    ServiceSettings,
    parse_eureka,
    parse_namespaces,
    parse_secrets,
    parse_services,
)

TYPE_CHECKING = False  # typing is not imported at run time (import cost of every preview)
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "BINARY_SOURCES",
    "FLANNEL_BACKENDS",
    "LB_IMPLEMENTATIONS",
    "PROJECT",
    "SERVICE_TYPES",
    "SUPPORTED_K8S_MINORS",
    "AppSecret",
    "BinarySettings",
    "ConfigError",
    "Described",
    "DnsSettings",
    "EurekaSettings",
    "Host",
    "MaintenanceSettings",
    "NodeLossSettings",
    "MetalLBSettings",
    "NetworkSettings",
    "PackageSettings",
    "PkiSettings",
    "Problem",
    "RegistryImage",
    "RegistrySettings",
    "Resources",
    "RuntimeSettings",
    "Secret",
    "ServiceSettings",
    "Settings",
    "SshSettings",
    "fix_command",
    "load_settings",
    "parse_image",
    "parse_settings",
]


@dataclass(frozen=True)
class Settings:
    """The validated settings of one stack; components read only these."""

    stack: str
    environment: str = setting(
        Text(DNS_LABEL, "a lower-case name such as dev or prod"),
        doc="environment name (dev, prod, local); labels resources and selects policy settings",
        example=lambda r, path: [r.stack],
    )
    kubernetes_version: str = described(KUBERNETES_VERSION)
    ssh: SshSettings = setting(Section(SshSettings), doc="how Pulumi reaches every host")
    control_plane: Host = setting(Section(Host), doc=CONTROL_PLANE_DOC, key="controlPlane")
    workers: tuple[Host, ...] = described(WORKERS)
    network: NetworkSettings = setting(Section(NetworkSettings), doc="the cluster's networks (no overlap of host, pod and Service ranges)")
    binaries: BinarySettings = setting(Section(BinarySettings), doc="where the hosts get their executables")
    registry: RegistrySettings = setting(Section(RegistrySettings), doc="the private registry on the control-plane host")
    pause_image: str = described(PAUSE_IMAGE)
    runtime: RuntimeSettings = setting(Section(RuntimeSettings), doc="the container runtime (containerd) as the kubelet uses it")
    packages: PackageSettings = setting(Section(PackageSettings), doc="OS packages the bootstrap installs when missing", key="hostPackages")
    kubelet: Mapping[str, Any] = described(KUBELET)
    dns: DnsSettings = setting(Section(DnsSettings), doc="cluster DNS (CoreDNS)")
    metallb: MetalLBSettings = setting(Section(MetalLBSettings), doc="the platform's LoadBalancer (MetalLB, L2), when network.loadBalancer is metallb")
    eureka: EurekaSettings = setting(Section(EurekaSettings), doc="the Eureka server")
    maintenance: MaintenanceSettings = setting(Section(MaintenanceSettings), doc="node maintenance (cordon, drain)")
    node_loss: NodeLossSettings = setting(Section(NodeLossSettings), doc="how fast a lost node's pods move to the other nodes", key="nodeLoss")
    etcd_snapshots: EtcdSnapshotSettings = setting(Section(EtcdSnapshotSettings), doc="etcd snapshots on the control-plane host", key="etcdSnapshots")
    namespaces: tuple[str, ...] = described(NAMESPACES)
    pki: PkiSettings = setting(Section(PkiSettings), doc="certificate lifetimes")
    secrets: tuple[AppSecret, ...] = field(default_factory=tuple, metadata={"spec": SECRETS})
    services: tuple[ServiceSettings, ...] = field(default_factory=tuple, metadata={"spec": SERVICES})

    @property
    def registry_host(self) -> str:
        """host:port of the private registry, as nodes and image references name it."""
        return f"{self.control_plane.address}:{self.registry.port}"

    def image_ref(self, repo_tag: str) -> str:
        return f"{self.registry_host}/{repo_tag}"

    @property
    def binaries_dir(self) -> str:
        """binaries.localDir expanded (~, $VARS, and {kubernetesVersion} as the stack's version)."""
        return os.path.expandvars(os.path.expanduser(self.binaries.local_dir.replace(VERSION_PLACEHOLDER, self.kubernetes_version)))

    @property
    def schedulable_workers(self) -> tuple[Host, ...]:
        return tuple(w for w in self.workers if w.name not in self.maintenance.nodes)

    @property
    def cluster_id(self) -> str:
        """Stable identifier of the cluster for the Kubernetes provider (survives new kubeconfigs)."""
        return f"{PROJECT}-{self.stack}-{self.control_plane.name}"


_KNOWN: list[dict[str, Any]] = []


def known_keys() -> dict[str, Any]:
    """Every key the platform reads (built once, from the field declarations)."""
    if not _KNOWN:
        from .keys import tree

        _KNOWN.append(tree(Settings))
    return _KNOWN[0]


def collect(raw: Mapping[str, Any], stack: str, check_files: bool = True) -> tuple[Settings | None, list[Problem]]:
    """Settings and problems of a raw config; problems keep their fix candidates unchecked."""
    # The rules load with the first parse, not with the types every component imports.
    from . import checks
    from .keys import check_keys

    r = Reader(raw, stack, check_files)
    check_keys(r, known_keys(), raw)
    top = r.section(Settings, "")
    ssh = parse_ssh(r)
    control_plane, workers, placed = parse_hosts(r)
    network = parse_network(r)
    binaries = parse_binaries(r)
    registry = parse_registry(r)
    runtime = parse_runtime(r)
    packages = parse_packages(r)
    kubelet = r.read("kubelet", KUBELET)
    if kubelet:
        refuse_open_kubelet(r, kubelet)
    pki = parse_pki(r)
    dns = parse_dns(r)
    metallb = parse_metallb(r)
    eureka = parse_eureka(r)
    maintenance = parse_maintenance(r)
    node_loss = parse_node_loss(r)
    etcd_snapshots = parse_etcd_snapshots(r)
    namespaces = parse_namespaces(r, eureka.namespace)
    secrets = parse_secrets(r, eureka.namespace)
    services = parse_services(r, eureka.namespace)
    s = Settings(
        stack=stack,
        **top,
        ssh=ssh,
        control_plane=control_plane,  # type: ignore[arg-type]
        workers=workers,
        network=network,
        binaries=binaries,
        registry=registry,
        runtime=runtime,
        packages=packages,
        kubelet=dict(kubelet or {}),
        dns=dns,
        metallb=metallb,
        eureka=eureka,
        maintenance=maintenance,
        node_loss=node_loss,
        etcd_snapshots=etcd_snapshots,
        namespaces=namespaces,
        pki=pki,
        secrets=secrets,
        services=services,
    )
    checks.run(r, s, placed)
    return (None if r.problems else s), r.problems


def parse_settings(raw: Mapping[str, Any], stack: str, *, check_files: bool = True) -> Settings:
    """Validate the raw config of `stack` and return typed settings, or raise ConfigError.

    check_files=False skips the checks that paths on this machine exist (archives, binaries),
    e.g. to check a stack file on a machine that has not built them."""
    settings, problems = collect(raw, stack, check_files)
    if problems:
        from .fixes import resolve

        raise ConfigError(stack, resolve(raw, stack, problems, lambda changed: collect(changed, stack, check_files)[1]))
    assert settings is not None
    return settings


# Top-level keys whose values are JSON (objects and lists) and the ones that hold secrets.
_SCALAR_KEYS = ("environment", "kubernetesVersion", "pauseImage")
_SECRET_KEYS = ("sshPrivateKey", "registryPassword")


def _raw_config() -> dict[str, Any]:
    """Every `vm-platform:` key of the stack (also unknown ones, so a misspelt key is refused)."""
    import json

    from pulumi.runtime import config as runtime_config

    prefix = f"{PROJECT}:"
    keys = {k[len(prefix) :] for k in {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()} if k.startswith(prefix)}
    keys |= set(known_keys())
    raw: dict[str, Any] = {}
    for key in sorted(keys):
        full = prefix + key
        v = runtime_config.get_config(full)
        if v is None:
            continue
        secret = runtime_config.is_config_secret(full)
        if key == "services":
            raw[key] = json.loads(v)
        elif key == "secrets":
            parsed = json.loads(v)
            for spec in parsed.values() if isinstance(parsed, dict) else []:
                if isinstance(spec, dict) and isinstance(spec.get("data"), dict):
                    spec["data"] = {k: (Secret(str(val)) if secret else val) for k, val in spec["data"].items()}
            raw[key] = parsed
        elif key in _SECRET_KEYS or (secret and key not in known_keys()):
            raw[key] = Secret(v) if secret else v  # an unknown secret key stays whole: its fix prompts
        elif key not in _SCALAR_KEYS and isinstance(v, str) and v[:1] in "{[":
            try:
                raw[key] = json.loads(v)
            except json.JSONDecodeError:
                raw[key] = v
        else:
            raw[key] = v
    return raw


def load_settings() -> Settings:
    """Read the current stack's config (without registering anything) and validate it.

    Problems end the program with one clean error listing them all (no traceback)."""
    import pulumi

    try:
        return parse_settings(_raw_config(), pulumi.get_stack())
    except ConfigError as e:
        raise pulumi.RunError(str(e)) from None
