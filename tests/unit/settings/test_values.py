"""Typed settings: good stacks parse; each bad config is reported with key path, expectation,
what was found and the `pulumi config set --path` fix; all problems are reported at once."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components.settings import ConfigError, Secret, parse_settings
from tests.unit.harness import TEST_KEY
from tests.unit.settings.helpers import delp, errors_for, setp, stack_raw


def test_dev_stack_parses_to_the_original_setup():
    s = parse_settings(stack_raw("dev"), "dev")
    assert s.control_plane.name == "centos-master" and s.control_plane.address == "192.168.226.131"
    assert [w.name for w in s.workers] == ["centos-minion-1"]
    assert s.network.pod_cidr == "172.30.0.0/16" and s.network.backend == "vxlan"
    assert s.eureka.replicas == 2 and s.eureka.service_type == "LoadBalancer" and s.eureka.host_port == 0
    assert s.registry_host == "192.168.226.131:5000"
    assert s.image_ref(s.pause_image) == "192.168.226.131:5000/pause:3.10"
    assert repr(s.ssh.private_key) == "Secret(****)"  # never printed


def test_prod_stack_is_larger_and_stricter():
    s = parse_settings(stack_raw("prod"), "prod")
    assert len(s.workers) == 3 and s.eureka.replicas == 5
    assert s.registry.tls and s.registry.auth and not s.registry.allow_plain_http


BAD_CONFIGS = [
    # (id, mutation, substring expected in one problem)
    (
        "k8s-version-format",
        setp("kubernetesVersion", "1.34"),
        'kubernetesVersion: expected a Kubernetes version such as v1.34.4, found "1.34". Fix: pulumi config set --path kubernetesVersion v1.34.4',
    ),
    ("k8s-version-unsupported", setp("kubernetesVersion", "v1.20.0"), "kubernetesVersion: expected a supported minor version (v1.30 to v1.37)"),
    (
        "cp-address",
        setp("controlPlane.address", "192.168.226.300"),
        'controlPlane.address: expected an IPv4 address, found "192.168.226.300". Fix: pulumi config set --path controlPlane.address',
    ),
    (
        "cp-name",
        setp("controlPlane.name", "Centos_Master"),
        "controlPlane.name: expected a host name (lower-case letters, digits, '-'), found \"Centos_Master\"",
    ),
    (
        "host-key-missing",
        delp("controlPlane.hostKey"),
        "controlPlane.hostKey: expected the host's public SSH key ('ssh-ed25519 AAAA...', from ssh-keyscan), found nothing (the key is not set)",
    ),
    ("host-key-garbage", setp("workers.0.hostKey", "not a key"), "workers[0].hostKey: expected the host's public SSH key"),
    ("no-workers", setp("workers", []), "workers: expected at least one worker host, found []"),
    ("workers-not-list", setp("workers", "centos-minion-1"), 'workers: expected a list, found "centos-minion-1"'),
    (
        "duplicate-node-name",
        setp("workers.0.name", "centos-master"),
        'workers[0].name: expected a node name not already used by controlPlane, found "centos-master"',
    ),
    ("duplicate-address", setp("workers.0.address", "192.168.226.131"), "workers[0].address: expected an address not already used by controlPlane"),
    (
        "address-outside-host-cidr",
        setp("workers.0.address", "10.9.9.9"),
        'workers[0].address: expected an address inside network.hostCidr (192.168.226.0/24), found "10.9.9.9"',
    ),
    ("pod-cidr-invalid", setp("network.podCidr", "172.30.0.1/16"), "network.podCidr: expected an IPv4 network in CIDR form (e.g. 10.0.0.0/16, host bits zero)"),
    (
        "pod-overlaps-host",
        setp("network.podCidr", "192.168.0.0/16"),
        "network.podCidr: expected a range that does not overlap network.hostCidr (192.168.226.0/24)",
    ),
    (
        "service-overlaps-pod",
        setp("network.serviceCidr", "172.30.128.0/17"),
        "network.serviceCidr: expected a range that does not overlap network.podCidr (172.30.0.0/16)",
    ),
    (
        "pod-subnet-too-short",
        setp("network.podSubnetLength", 16),
        "network.podSubnetLength: expected a prefix length longer than the pod network's /16, found 16",
    ),
    ("pod-subnet-out-of-range", setp("network.podSubnetLength", 30), "network.podSubnetLength: expected an integer from 16 to 28, found 30"),
    (
        "cluster-dns-outside",
        setp("network.clusterDns", "10.0.0.10"),
        "network.clusterDns: expected an address inside network.serviceCidr (10.254.0.0/16) other than its first",
    ),
    ("cluster-dns-is-kubernetes-svc", setp("network.clusterDns", "10.254.0.1"), "network.clusterDns: expected an address inside network.serviceCidr"),
    (
        "backend-enum",
        setp("network.backend", "udp"),
        'network.backend: expected one of vxlan, host-gw, found "udp". Fix: pulumi config set --path network.backend vxlan',
    ),
    (
        "api-port",
        setp("network.apiServerPort", 70000),
        "network.apiServerPort: expected an integer from 1 to 65535, found 70000. Fix: pulumi config set --path network.apiServerPort 6443",
    ),
    ("binaries-source-enum", setp("binaries.source", "ftp"), 'binaries.source: expected one of release, local, found "ftp"'),
    (
        "binaries-local-missing-dir",
        lambda raw: raw["binaries"].update(source="local", localDir="/nonexistent/vmp-bin"),
        "binaries.localDir: expected an existing directory with the cluster binaries",
    ),
    ("release-url-http", setp("binaries.releaseBaseUrl", "http://insecure.invalid/release"), "binaries.releaseBaseUrl: expected an https:// URL"),
    ("sha256-bad", setp("binaries.sha256", {"kubelet": "abc"}), 'binaries.sha256.kubelet: expected a 64-character lower-case sha256, found "abc"'),
    (
        "registry-port",
        setp("registry.port", "five thousand"),
        'registry.port: expected an integer from 1 to 65535, found "five thousand". Fix: pulumi config set --path registry.port 5000',
    ),
    (
        "plain-http-not-allowed",
        setp("registry.allowPlainHttp", False),
        "registry.tls: expected true: this stack does not allow a plain-http registry (registry.allowPlainHttp is false), found false. Fix: pulumi config set --path registry.tls true",
    ),
    (
        "auth-without-password",
        lambda raw: raw["registry"].update(auth=True, username="platform"),
        "registryPassword: expected a password stored as a secret when registry.auth is true, found nothing (the key is not set). Fix: pulumi config set --secret registryPassword",
    ),
    (
        "auth-password-plaintext",
        lambda raw: (raw["registry"].update(auth=True, username="platform"), raw.update(registryPassword="hunter2")),
        "registryPassword: expected a password stored as a secret when registry.auth is true, found a plaintext value (it must be stored as a secret)",
    ),
    (
        "ssh-key-plaintext",
        setp("sshPrivateKey", TEST_KEY),
        "sshPrivateKey: expected an SSH private key stored as a secret, found a plaintext value (it must be stored as a secret). Fix: pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519",
    ),
    ("ssh-key-missing", delp("sshPrivateKey"), "sshPrivateKey: expected an SSH private key stored as a secret, found nothing"),
    ("ssh-port", setp("ssh.port", 0), "ssh.port: expected an integer from 1 to 65535, found 0"),
    (
        "pause-not-in-registry",
        setp("registry.images", [{"name": "eureka-server:1.1.0", "archive": "/x.tar"}]),
        "registry.images: expected a list that includes the pause image (pause:3.10) so nodes never reach the internet for it",
    ),
    (
        "archive-missing",
        setp("registry.images.0.archive", "/nonexistent/pause.tar"),
        'registry.images[0].archive: expected an existing OCI archive on this machine (python -m tools.images builds the platform\'s), found "/nonexistent/pause.tar"',
    ),
    (
        "pause-latest",
        setp("pauseImage", "pause:latest"),
        'pauseImage: expected the pod-sandbox image as repo:tag inside the private registry, found "pause:latest"',
    ),
    (
        "eureka-image-latest",
        setp("eureka.image", "eureka-server:latest"),
        'eureka.image: expected an image in the private registry as repo:tag (not latest) or repo@sha256:..., found "eureka-server:latest"',
    ),
    ("eureka-image-no-tag", setp("eureka.image", "eureka-server"), "eureka.image: expected an image in the private registry as repo:tag (not latest)"),
    (
        "replicas-not-int",
        setp("eureka.replicas", "two"),
        'eureka.replicas: expected an integer from 0 to 100, found "two". Fix: pulumi config set --path eureka.replicas 2',
    ),
    (
        "service-type-enum",
        setp("eureka.serviceType", "ExternalName"),
        'eureka.serviceType: expected one of ClusterIP, NodePort, LoadBalancer, found "ExternalName"',
    ),
    (
        "lb-without-implementation",
        setp("network.loadBalancer", "none"),
        'eureka.serviceType: expected ClusterIP or NodePort: network.loadBalancer is none, so a LoadBalancer Service would never get an address (or set network.loadBalancer to metallb), found "LoadBalancer". Fix: pulumi config set --path eureka.serviceType NodePort',
    ),
    (
        "hostport-more-replicas-than-workers",
        setp("eureka.hostPort", 8761),
        "eureka.hostPort: expected 0 (off): with hostPort each node runs one replica, and 2 replicas > 1 schedulable worker(s) leaves pods Pending, found 8761. Fix: pulumi config set --path eureka.hostPort 0",
    ),
    (
        "rollout-cannot-progress",
        lambda raw: raw["eureka"].update(maxSurge="0", maxUnavailable="0"),
        "eureka.maxUnavailable: expected a non-zero value when eureka.maxSurge is 0",
    ),
    ("max-surge-format", setp("eureka.maxSurge", "lots"), 'eureka.maxSurge: expected an integer or a percentage such as 25%, found "lots"'),
    (
        "pdb-blocks-drain",
        setp("eureka.minAvailable", 2),
        "eureka.minAvailable: expected fewer than eureka.replicas (2) so a node can be drained, found 2. Fix: pulumi config set --path eureka.minAvailable 1",
    ),
    ("cpu-quantity", setp("eureka.resources.requests.cpu", "a lot"), 'eureka.resources.requests.cpu: expected a CPU quantity such as 250m, found "a lot"'),
    (
        "limit-below-request",
        setp("eureka.resources.limits.memory", "128Mi"),
        'eureka.resources.limits.memory: expected at least the request (384Mi), found "128Mi". Fix: pulumi config set --path eureka.resources.limits.memory 384Mi',
    ),
    (
        "maintenance-unknown-node",
        setp("maintenance.nodes", ["centos-minion-9"]),
        'maintenance.nodes[0]: expected the name of a worker (one of centos-minion-1), found "centos-minion-9"',
    ),
    (
        "maintenance-all-workers",
        setp("maintenance.nodes", ["centos-minion-1"]),
        'maintenance.nodes: expected a list that leaves at least one worker schedulable, found ["centos-minion-1"]',
    ),
    (
        "namespace-builtin",
        setp("namespaces", ["kube-system"]),
        'namespaces[0]: expected a namespace the platform creates (not a built-in one), found "kube-system"',
    ),
    ("namespace-invalid", setp("namespaces", ["Platform_NS"]), 'namespaces[0]: expected a namespace name (DNS label), found "Platform_NS"'),
    (
        "secret-plaintext",
        setp("secrets", {"db": {"namespace": "platform", "data": {"password": "plain"}}}),
        "secrets.db.data.password: expected a value stored as a secret, found a plaintext value. Fix: pulumi config set --path --secret secrets.db.data.password",
    ),
    (
        "secret-unknown-namespace",
        setp("secrets", {"db": {"namespace": "nowhere", "data": {"password": Secret("x")}}}),
        'secrets.db.namespace: expected a namespace the platform manages (platform), found "nowhere"',
    ),
    ("kubelet-bad-key", setp("kubelet", {"max-pods": 10}), "kubelet: expected a map of KubeletConfiguration fields (camelCase) to values"),
    ("cgroup-driver-enum", setp("runtime.cgroupDriver", "cgroupv3"), 'runtime.cgroupDriver: expected one of systemd, cgroupfs, found "cgroupv3"'),
]


@pytest.mark.parametrize("mutate,expected", [pytest.param(m, e, id=i) for i, m, e in BAD_CONFIGS])
def test_bad_config_is_reported_with_path_expectation_and_fix(mutate, expected):
    problems = errors_for(mutate)
    assert any(expected in p for p in problems), "\n".join(problems)
    assert all(". Fix: pulumi config " in p for p in problems)


def test_all_problems_are_reported_at_once():
    def many(raw: dict[str, Any]) -> None:
        raw["kubernetesVersion"] = "latest"
        raw["controlPlane"]["address"] = "nope"
        raw["eureka"]["replicas"] = -1
        raw["network"]["backend"] = "udp"
        del raw["sshPrivateKey"]

    problems = errors_for(many)
    paths = {p.split(":")[0] for p in problems}
    assert {"kubernetesVersion", "controlPlane.address", "eureka.replicas", "network.backend", "sshPrivateKey"} <= paths
    raw = stack_raw("dev")
    many(raw)
    with pytest.raises(ConfigError) as e:
        parse_settings(raw, "dev")
    assert str(e.value).startswith("stack 'dev' has 5 configuration problem(s):")


def test_secrets_never_appear_in_messages():
    raw = stack_raw("dev")
    raw["registry"].update(auth=True, username="")
    raw["registryPassword"] = Secret("do-not-print-me")
    with pytest.raises(ConfigError) as e:
        parse_settings(raw, "dev")
    assert "do-not-print-me" not in str(e.value) and TEST_KEY not in str(e.value)


def test_hostport_fits_when_enough_workers():
    raw = stack_raw("prod")
    raw["eureka"].update(hostPort=8761, replicas=3, minAvailable=2)
    assert parse_settings(raw, "prod").eureka.host_port == 8761
    raw2 = copy.deepcopy(raw)
    raw2["maintenance"] = {"nodes": ["prod-worker-1"], "drain": True}
    with pytest.raises(ConfigError, match=r"3 replicas > 2 schedulable worker"):
        parse_settings(raw2, "prod")
