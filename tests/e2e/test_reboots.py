"""Reboots on the lab: the control-plane host and a worker shut down cleanly (SIGTERM to their
nspawn machines: the host's systemd powers off) and boot again from the same disk. Every service
comes back by itself, the nodes are Ready, the registry still holds every image, the workloads
run again, Eureka and the example service answer through their LoadBalancer addresses, and
`pulumi preview` shows nothing to do. Prints the reboot-to-Ready times.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from pulumi import automation as auto

from lab import hosts as lab_hosts
from lab import instance as lab_instance
from tests.e2e.conftest import INSTANCE, Lab, lab_up, lb_urls
from tests.e2e.test_etcd_restore import _answers, wait
from tests.e2e.test_local_stack import kubeconfig_of, kubectl, node_ready
from tests.e2e.test_platform_maintenance import all_ready
from tools.automation import Project

pytestmark = pytest.mark.lab


def _time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def heartbeat(kc, node: str) -> datetime:
    """When the node's kubelet last reported its Ready condition."""
    conds = json.loads(kubectl(kc, "get", "node", node, "-o", "json").stdout)["status"]["conditions"]
    return _time(next(c["lastHeartbeatTime"] for c in conds if c["type"] == "Ready"))


def restarted_since(kc, ns: str, node: str, since: datetime) -> bool:
    """Every pod of the namespace on `node` runs containers started after `since`, and is Ready."""
    pods = [p for p in json.loads(kubectl(kc, "-n", ns, "get", "pods", "-o", "json").stdout)["items"] if p["spec"].get("nodeName") == node]
    for p in pods:
        statuses = p["status"].get("containerStatuses") or []
        if not statuses or not all(c.get("ready") and "running" in c.get("state", {}) and _time(c["state"]["running"]["startedAt"]) >= since for c in statuses):
            return False
    return True


def test_the_control_plane_and_a_worker_reboot_and_everything_comes_back(local: tuple[Project, auto.Stack], stack: auto.Stack, lab: Lab):
    project, _ = local
    s = lab.settings
    cp, worker = s.control_plane.name, s.workers[0].name
    ns = s.eureka.namespace
    urls = list(lb_urls(stack).values())
    images = sorted(i.name for i in s.registry.images)
    kc = kubeconfig_of(stack)
    inst = lab_instance.get(INSTANCE)
    by_name = {h.name: h for h in inst.hosts(len(s.workers))}

    t0 = time.monotonic()
    for name in (worker, cp):
        lab_hosts.stop(by_name[name])  # SIGTERM: the host's systemd shuts down cleanly
    down_s = time.monotonic() - t0
    booted = datetime.now(UTC).replace(microsecond=0)
    lab_up(len(s.workers))  # boots the stopped hosts from their disks
    t1 = time.monotonic()
    api_s = wait("the API server", lambda: kubectl(kc, "get", "--raw", "/readyz", check=False).returncode == 0, timeout=300)
    # Statuses written after the boot, not the ones the API server kept from before it.
    nodes_s = wait("the rebooted worker Ready again", lambda: node_ready(kc, worker) and heartbeat(kc, worker) >= booted, timeout=300)
    work_s = wait(
        "every workload Ready, the rebooted worker's pods started again",
        lambda: all(r.split("/")[0] == r.split("/")[1] for r in all_ready(stack, ns).values()) and restarted_since(kc, ns, worker, booted),
        timeout=420,
    )
    serve_s = wait("Eureka and the example service answering", lambda: all(_answers(u, lab) for u in urls), timeout=300)
    print(
        f"\n[e2e] reboot of {cp} and {worker}: shut down in {down_s:.1f} s; after boot: API ready {api_s:.1f} s, "
        f"the worker Ready again {nodes_s:.1f} s, its pods started and every workload Ready {work_s:.1f} s, answering {serve_s:.1f} s after that "
        f"(from the boot {time.monotonic() - t1:.1f} s)"
    )

    # Every service came back by itself (enabled units), and the registry kept its images.
    for host, units in ((cp, ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "vm-platform-registry", "etcd-snapshot.timer")),
                        (worker, ("containerd", "flanneld", "kubelet", "kube-proxy"))):  # fmt: skip
        states = lab.ssh(host, "systemctl is-active " + " ".join(units), check=False).stdout.split()
        assert states == ["active"] * len(units), (host, dict(zip(units, states, strict=False)))
    # (read from the registry's storage: whether the registry asks for a password depends on the stack)
    tags = [f"{s.registry.storage_dir}/docker/registry/v2/repositories/{i.split(':')[0]}/_manifests/tags/{i.split(':')[1]}" for i in images]
    missing = lab.ssh(cp, "for t in " + " ".join(tags) + '; do [ -d "$t" ] || echo "$t"; done').stdout.split()
    assert missing == [], missing

    again = project.preview(stack)
    assert not again.error and again.changed() == {}, again.error[-2000:] or again.changed()
