"""The real Pulumi engine previews the dev and prod stacks (Automation API).

dev and prod describe other people's machines: they are only ever previewed here, and preview
never connects (remote commands run only on up; Kubernetes objects preview from an unknown
kubeconfig). Nothing here may reach their addresses.
"""

from __future__ import annotations

import copy
from collections import Counter

import pytest
import yaml

from tools.automation import ROOT, PreviewResult, Project, repo_stack_config

pytestmark = pytest.mark.engine

KEY = (ROOT / "tests" / "unit" / "fixtures" / "test_key").read_text()
SECRETS = {"dev": {"sshPrivateKey": KEY}, "prod": {"sshPrivateKey": KEY, "registryPassword": "throwaway-registry-password"}}

# Per host: scripts bundle, hosts file, prereqs, binaries, and each service's file(s), unit and restart;
# on the control plane: its certificate signing, readiness check, flannel lease, and the drain and
# uncordon of a Kubernetes upgrade.
COMMANDS_PER_WORKER = 26
# 24 control-plane steps (the upgrade gate, the etcd snapshot timer, etcdutl and the CA bundle among them) + the registry: config, unit, restart, trust, 5 image pushes (pause,
# eureka-server, coredns, metallb controller and speaker).
COMMANDS_CONTROL_PLANE = 33


@pytest.fixture(scope="module")
def dev(project: Project) -> PreviewResult:
    res = project.preview(project.stack("dev", SECRETS["dev"]))
    assert not res.error, res.error
    return res


@pytest.fixture(scope="module")
def prod(project: Project) -> PreviewResult:
    res = project.preview(project.stack("prod", SECRETS["prod"]))
    assert not res.error, res.error
    return res


def expected_counts(workers: int, namespaces: int, auth: bool) -> Counter:
    return Counter(
        {
            "command:remote:Command": COMMANDS_CONTROL_PLANE + (1 if auth else 0) + workers * COMMANDS_PER_WORKER,
            "command:remote:CopyToRemote": 5,  # the five image archives
            "kubernetes:apps/v1:Deployment": 2,  # CoreDNS, MetalLB's controller
            "kubernetes:apps/v1:StatefulSet": 1,  # the Eureka peers
            "kubernetes:apps/v1:DaemonSet": 1,  # MetalLB's speakers
            "kubernetes:core/v1:Service": 3,  # Eureka, its headless peers, kube-dns
            "kubernetes:policy/v1:PodDisruptionBudget": 2,  # Eureka, CoreDNS
            "kubernetes:core/v1:Namespace": namespaces + 1,  # and metallb-system
            "kubernetes:core/v1:Secret": namespaces + 2 if auth else 0,  # registry pull secrets (and kube-system, metallb-system)
            "kubernetes:core/v1:ConfigMap": 1,  # the Corefile
            "kubernetes:core/v1:ServiceAccount": 4,  # coredns, MetalLB's controller and speaker, Eureka
            "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition": 8,  # MetalLB's, from its module
            "kubernetes:metallb.io/v1beta1:IPAddressPool": 1,
            "kubernetes:metallb.io/v1beta1:L2Advertisement": 1,
            "pulumi:providers:kubernetes": 1,
            "vm-platform:cluster:WorkerNode": workers,
            "vm-platform:host:HostScripts": workers + 1,
        }
    )


def test_dev_preview_creates_the_original_two_vm_platform(dev: PreviewResult):
    assert set(dev.ops()) == {"create", "read"} and dev.types("read") == {"pulumi:pulumi:StackReference": 1}  # the stack's last version
    types = dev.types()
    for typ, n in expected_counts(workers=1, namespaces=1, auth=False).items():
        assert types[typ] == n, f"{typ}: {types[typ]} != {n}"
    names = {s["name"] for s in dev.steps}
    assert {"centos-master-kube-apiserver-restart", "centos-minion-1-kubelet-restart", "eureka-app-statefulset", "dns-deployment", "metallb-speaker"} <= names


def test_prod_preview_is_larger_with_tls_registry_and_auth(prod: PreviewResult):
    assert set(prod.ops()) == {"create", "read"} and prod.types("read") == {"pulumi:pulumi:StackReference": 1}
    types = prod.types()
    for typ, n in expected_counts(workers=3, namespaces=2, auth=True).items():
        assert types[typ] == n, f"{typ}: {types[typ]} != {n}"
    assert "centos" not in prod.stdout  # nothing of dev leaks into prod


def test_preview_shows_no_secret_in_plaintext(prod: PreviewResult):
    assert "PRIVATE KEY" not in prod.stdout and "throwaway-registry-password" not in prod.stdout
    assert "[secret]" in prod.stdout


def test_preview_reports_all_config_problems_without_traceback(project: Project):
    bad = copy.deepcopy(repo_stack_config("dev"))
    bad["config"]["vm-platform:eureka"]["hostPort"] = 8761
    bad["config"]["vm-platform:network"]["podCidr"] = "192.168.0.0/16"
    (project.dir / "Pulumi.bad.yaml").write_text(yaml.safe_dump(bad))
    res = project.preview(project.stack("bad", SECRETS["dev"]))
    assert "stack 'bad' has 2 configuration problem(s)" in res.error
    assert "eureka.hostPort: expected 0 (off)" in res.error and "network.podCidr: expected a range that does not overlap" in res.error
    assert "Traceback" not in res.error
