"""Day-2 on the lab, under load: node maintenance as config. A worker in `maintenance.nodes` is
cordoned and drained respecting the PodDisruptionBudgets: its pods move to the other worker
while the example service and Eureka keep answering through their LoadBalancer addresses
(every failure counted); removing it from the list makes it schedulable again.
"""

from __future__ import annotations

import json
import time

import pytest
from pulumi import automation as auto

from tests.e2e.conftest import Lab, lb_urls
from tests.e2e.load import loads
from tests.e2e.test_local_stack import kubeconfig_of, kubectl
from tools.automation import Project

pytestmark = pytest.mark.lab


def pods_by_node(stack: auto.Stack, ns: str) -> dict[str, list[str]]:
    """node -> names of the namespace's pods that are not terminating."""
    pods = json.loads(kubectl(kubeconfig_of(stack), "-n", ns, "get", "pods", "-o", "json").stdout)["items"]
    out: dict[str, list[str]] = {}
    for p in pods:
        if not p["metadata"].get("deletionTimestamp"):
            out.setdefault(p["spec"].get("nodeName", "(none)"), []).append(p["metadata"]["name"])
    return out


def all_ready(stack: auto.Stack, ns: str) -> dict[str, str]:
    """workload -> 'ready/wanted' for every Deployment and StatefulSet in the namespace."""
    out = {}
    for kind in ("deployment", "statefulset"):
        for o in json.loads(kubectl(kubeconfig_of(stack), "-n", ns, "get", kind, "-o", "json").stdout)["items"]:
            out[f"{kind}/{o['metadata']['name']}"] = f"{o['status'].get('readyReplicas', 0)}/{o['spec']['replicas']}"
    return out


def test_maintenance_drains_a_worker_under_load_and_uncordons_it(local: tuple[Project, auto.Stack], stack: auto.Stack, lab: Lab):
    project, _ = local
    ns = lab.settings.eureka.namespace
    worker, other = (w.name for w in lab.settings.workers[:2])
    urls = lb_urls(stack)
    kc = kubeconfig_of(stack)
    before = pods_by_node(stack, ns)
    assert before.get(worker), f"nothing runs on {worker} to drain: {before}"
    try:
        project.set_path(stack, "maintenance.nodes[0]", worker)
        preview = project.preview(stack)
        ops = {name: op for name, (op, _) in preview.changed().items()}
        assert ops and set(ops.values()) == {"create"} and all(worker in n for n in ops), ops
        with loads(urls, lab.instance.network, threads=2, max_seconds=600, max_requests=60_000) as running:
            time.sleep(2)
            t0 = time.monotonic()
            stack.up(color="never", on_output=lambda line: None)
            up_s = time.monotonic() - t0
            ready = {}
            while time.monotonic() - t0 < 300:
                ready = all_ready(stack, ns)
                if all(v.split("/")[0] == v.split("/")[1] for v in ready.values()):
                    break
                time.sleep(2)
            settled_s = time.monotonic() - t0
        after = pods_by_node(stack, ns)
        node = json.loads(kubectl(kc, "get", "node", worker, "-o", "json").stdout)
        print(f"\n[e2e] maintenance {worker}: up (cordon + drain) {up_s:.1f} s, all ready {settled_s:.1f} s; pods {after}")
        for k, load in running.items():
            print(f"[e2e]   {k}: {load.report()}")
        assert node["spec"].get("unschedulable") is True, node["spec"]
        assert not after.get(worker), f"pods left on the drained {worker}: {after}"
        assert all(v.split("/")[0] == v.split("/")[1] for v in ready.values()), ready
        for k, load in running.items():
            assert load.sent >= 100 and load.failures == [], f"{k}: {load.report()}"

        # Leaving maintenance: the preview deletes exactly the cordon and the drain; up uncordons.
        project.pulumi("config", "rm", "--path", "maintenance.nodes[0]", "-s", stack.name)
        preview = project.preview(stack)
        ops = {name: op for name, (op, _) in preview.changed().items()}
        assert ops and set(ops.values()) == {"delete"} and all(worker in n for n in ops), ops
        stack.up(color="never", on_output=lambda line: None)
        node = json.loads(kubectl(kc, "get", "node", worker, "-o", "json").stdout)
        assert not node["spec"].get("unschedulable"), node["spec"]
        assert other in pods_by_node(stack, ns)
    finally:
        project.pulumi("config", "rm", "--path", "maintenance.nodes[0]", "-s", stack.name, check=False)
        stack.up(color="never", on_output=lambda line: None)
