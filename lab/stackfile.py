"""The `local` stack's config for a lab instance, and the stack file (Pulumi.local.yaml) holding it.

The file is written with pyyaml. What pulumi itself wrote into an existing file (the secure
values set with `pulumi config set --secret` and the encryption salt) is read back with
safe_load and kept: without them the stack's secrets, in config and in state, could no longer
be decrypted. Comments in the file are the lab's own and are rewritten each time.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from components.settings.platform import coredns_image, eureka_image, example_image, metallb_image
from components.settings.registry import default_archive
from images.build import PAUSE_TAG
from tools.common import ToolError, pins, write_if_changed

from . import binaries, hosts
from .instance import Instance, LabHost

NAMESPACE = "vm-platform"
PAUSE_IMAGE = f"pause:{PAUSE_TAG}"

# Kubelet settings for a node that is an nspawn container on a cgroup-v1 machine without
# CAP_SYS_RESOURCE: each value with the reason, written as a comment into the stack file.
KUBELET_OVERRIDES: list[tuple[str, Any, str]] = [
    ("failCgroupV1", False, "cgroup-v1 machine; true (the default from 1.35) exits: 'kubelet is configured to not run on a host using cgroup v1'"),
    ("maxOpenFiles", 20000, "hard limit here, no CAP_SYS_RESOURCE; more only logs 'Failed to set rlimit on max file handles'"),
    (
        "protectKernelDefaults",
        True,
        "/proc/sys is read-only inside; false exits: 'open /proc/sys/kernel/panic: read-only file system' (the lab sets them on the machine)",
    ),
]
KUBELET_UNCHANGED = "defaults kept (checked in the lab): cgroupsPerQOS, localStorageCapacityIsolation, eviction thresholds, kernelMemcgNotification"
# Why the lab's values differ from a VM's, keyed by config path (the header of the stack file).
REASONS = {
    "network.loadBalancer": "MetalLB (L2) answers ARP for the pool on the lab's bridge; the machine reaches it like any host on the segment",
    "network.policyEnforcer": "vmp-netpol, built here with the cluster binaries: the platform's namespaces are default-deny, each workload allowed what it needs",
    "dns.upstream": "the lab hosts have no route to any resolver: names outside the cluster are not forwarded",
    "runtime.restrictOomScoreAdj": "no CAP_SYS_RESOURCE: pod sandboxes cannot lower oom_score_adj",
    "runtime.cgroupDriver": "the kubelet manages /kubepods directly on the host's own cgroup-v1 subtree",
    "eureka.serviceType": "LoadBalancer, as in dev: http://<pool address>/ from this machine",
    "nodeLoss": "one bridge, no flaky links: a lost worker is declared after 16 s and its pods move 4 s later (the e2e bound: 60 s to all Ready)",
    **{f"kubelet.{k}": why for k, _, why in KUBELET_OVERRIDES},
    "kubelet": KUBELET_UNCHANGED,
}


def stack_config(
    inst: Instance, workers: int | None = None, *, host_keys: dict[str, str] | None = None, backend: str | None = None
) -> tuple[dict[str, Any], str]:
    """(config, key path): the `local` stack's non-secret config as the instance's stack file
    holds it (`vm-platform:`-prefixed keys), and the instance's lab key, which the operator
    stores as the secret sshPrivateKey. tests/e2e/conftest.py uses both.

    workers defaults to the instance's current worker count; host_keys (node name ->
    'ssh-ed25519 AAAA...') and backend default to the running lab's (pass them to build a config
    without one)."""
    values = stack_values(inst, workers if workers is not None else inst.current_workers(), host_keys, backend)
    return {f"{NAMESPACE}:{k}": v for k, v in values.items()}, str(inst.key_path)


def _running_host_keys(lab_hosts: list[LabHost]) -> dict[str, str]:
    keys = {}
    for h in lab_hosts:
        k = hosts.host_key(h)
        if not k:
            raise ToolError(f"{h.id} has no SSH host key yet: run `python3 -m tools.lab up{h.instance.cli_flag}` first")
        keys[h.name] = k
    return keys


def stack_values(inst: Instance, workers: int, host_keys: dict[str, str] | None, backend: str | None) -> dict[str, Any]:
    """The config values (without the namespace prefix) of the instance's `local` stack: what the
    lab needs, minus every value that only restates the settings' own default (the default lives
    in components/settings, once)."""
    return _without_defaults(_lab_values(inst, workers, host_keys, backend))


def _without_defaults(values: dict[str, Any]) -> dict[str, Any]:
    from components.settings.reference import restated_defaults

    out = copy.deepcopy(values)
    for path in restated_defaults(values):
        *parents, leaf = path.split(".")
        node = out
        for part in parents:
            node = node[part]
        del node[leaf]
    for key in [k for k, v in out.items() if v == {}]:  # a section left with nothing to say
        del out[key]
    return out


def _lab_values(inst: Instance, workers: int, host_keys: dict[str, str] | None, backend: str | None) -> dict[str, Any]:
    lab_hosts = inst.hosts(workers)
    keys = _running_host_keys(lab_hosts) if host_keys is None else host_keys
    if backend is None:
        f = inst.dir / "flannel-backend"
        backend = f.read_text().strip() if f.is_file() else "vxlan"

    def host(h: LabHost) -> dict[str, str]:
        return {"name": h.name, "address": h.address, "hostKey": keys[h.name]}

    lab = pins()["lab"]
    return {
        "environment": "local",
        "kubernetesVersion": lab["kubernetes"],
        "pauseImage": PAUSE_IMAGE,
        "ssh": {"user": "root", "port": 22},
        "controlPlane": host(lab_hosts[0]),
        "workers": [host(h) for h in lab_hosts[1:]],
        "network": _network(inst, backend),
        "binaries": {"source": "local", "localDir": binaries.local_dir(), "etcdVersion": lab["etcd"], "flannelVersion": lab["flannel"]},
        "registry": _registry(),
        "runtime": {"cgroupDriver": "cgroupfs", "restrictOomScoreAdj": True, "cniBinDir": "/usr/lib/cni", "snapshotter": "overlayfs", "maxOpenFiles": 20000},
        "kubelet": {k: v for k, v, _ in KUBELET_OVERRIDES},
        "dns": {"upstream": []},
        "eureka": _eureka(),
        "maintenance": {"nodes": [], "drain": True},
        "nodeLoss": {"detectSeconds": 16, "evictSeconds": 4},
        "namespaces": ["platform"],
        "services": {EXAMPLE_SERVICE: _example_service()},
    }


EXAMPLE_SERVICE = "example-service"
EXAMPLE_SECRET = ("example-greeting", "greeting")  # set as a secret by tools/deploy-local (random per lab)


def _example_service() -> dict[str, Any]:
    """The shipped example: a Spring Boot Eureka client reading one value from a Secret."""
    return {
        "image": example_image(),
        "replicas": 2,
        "port": 8080,
        "serviceType": "LoadBalancer",
        "eurekaClient": True,
        "secretEnv": {"APP_GREETING": "/".join(EXAMPLE_SECRET)},
        "maxSurge": "1",
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "384Mi"}},
    }


def _network(inst: Instance, backend: str) -> dict[str, Any]:
    return {
        "hostCidr": str(inst.network),
        "podCidr": "10.244.0.0/16",
        "podSubnetLength": 24,
        "backend": backend,
        "serviceCidr": "10.96.0.0/16",
        "clusterDns": "10.96.0.10",
        "clusterDomain": "cluster.local",
        "loadBalancer": "metallb",
        "loadBalancerPool": lb_pool(inst),
        "policyEnforcer": "vmp-netpol",
    }


def lb_pool(inst: Instance) -> str:
    """MetalLB's pool in the instance's network: .200-.220, far above the hosts (.10 onwards)."""
    base = inst.network.network_address
    return f"{base + 200}-{base + 220}"


def _registry() -> dict[str, Any]:
    return {
        "port": 5000,
        "tls": True,
        "auth": False,
        "storageDir": "/var/lib/registry",
        "binary": "/usr/bin/docker-registry",
        "images": [
            *(
                {"name": image, "archive": default_archive(image)}
                for image in (PAUSE_IMAGE, eureka_image(), example_image(), coredns_image(), metallb_image("controller"), metallb_image("speaker"))
            ),
        ],
    }


def _eureka() -> dict[str, Any]:
    return {
        "namespace": "platform",
        "image": eureka_image(),
        "replicas": 2,
        "serviceType": "LoadBalancer",
        "servicePort": 80,
        "containerPort": 8761,
        "hostPort": 0,
        "maxSurge": "1",
        "maxUnavailable": "0",
        "minAvailable": 1,
        "resources": {"requests": {"cpu": "250m", "memory": "384Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
    }


def _has_secure(value: Any) -> bool:
    if isinstance(value, dict):
        return "secure" in value or any(_has_secure(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_secure(v) for v in value)
    return False


def kept_from(path: Path, written: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """(encryption salt, config entries) of an existing stack file that pulumi wrote and the lab
    does not: the secret values (any key holding a `secure:` value) and the salt."""
    if not path.exists():
        return None, {}
    try:
        old = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ToolError(f"{path} is not valid YAML ({e}); fix or remove it (its secrets would be lost otherwise)") from e
    config = old.get("config") or {}
    kept = {k: v for k, v in config.items() if k not in written and _has_secure(v)}
    return old.get("encryptionsalt"), kept


def render(inst: Instance, config: dict[str, Any], key: str, kept: tuple[str | None, dict[str, Any]] = (None, {})) -> str:
    """The stack file's text: a comment header (what writes it, why the lab's values are what they
    are), then the YAML document."""
    salt, secrets = kept
    backend = config[f"{NAMESPACE}:network"].get("backend", "vxlan")  # absent: the default, vxlan
    reasons = {
        "network.backend": "per the lab's check: vxlan devices work inside a network namespace"
        if backend == "vxlan"
        else "vxlan devices cannot be made inside a network namespace here",
        **REASONS,
    }
    header = [
        f"# local: the {inst.label} on this machine (lab/): nspawn hosts on the bridge {inst.bridge} ({inst.network}).",
        f"# Written by `python3 -m tools.lab up{inst.cli_flag}` (re-run it after `lab down`: host keys change); not committed.",
        f"# Secret, set once per lab key: pulumi config set --secret sshPrivateKey < {key}",
        "# Why the lab's values are what they are:",
        *(f"#   {path}: {why}" for path, why in reasons.items()),
    ]
    doc: dict[str, Any] = {"encryptionsalt": salt} if salt else {}
    doc["config"] = {**config, **secrets}
    body = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=1000, allow_unicode=True)
    return "\n".join(header) + "\n" + body


def write_stack_file(inst: Instance, workers: int, backend: str) -> tuple[Path, bool]:
    """Write the instance's stack file; (its path, whether its content changed)."""
    path = inst.stack_file
    config, key = stack_config(inst, workers, backend=backend)
    text = render(inst, config, key, kept_from(path, config))
    changed = not path.exists() or path.read_text() != text
    write_if_changed(path, text)
    return path, changed
