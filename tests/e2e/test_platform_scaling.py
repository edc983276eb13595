"""Day-2 on the lab, under load: scaling the example service and the Eureka peers 2 -> 5 -> 2
through config. Each preview must show `spec.replicas` alone; during each change a load
generator sends requests through the Service's LoadBalancer address the whole time and every
failure is counted (goal: none).
"""

from __future__ import annotations

import json
import time

import pytest
from pulumi import automation as auto

from tests.e2e.conftest import Lab
from tests.e2e.load import loads
from tests.e2e.test_local_stack import kubeconfig_of, kubectl
from tools.automation import Project

pytestmark = pytest.mark.lab


def _ready(lab: Lab, stack: auto.Stack, kind: str, name: str, ns: str, want: int, timeout: float = 240) -> float:
    kc = kubeconfig_of(stack)
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        obj = json.loads(kubectl(kc, "-n", ns, "get", kind, name, "-o", "json").stdout)
        if obj["status"].get("readyReplicas", 0) == want == obj["spec"]["replicas"] and obj["status"].get("replicas") == want:
            return time.monotonic() - t0
        time.sleep(2)
    raise AssertionError(f"{kind}/{name}: not {want} ready replicas within {timeout} s")


# (config key, resource, kind, object name, serviceEndpoints key or None for Eureka, path)
SCALED = [
    ("services.example-service.replicas", "service-example-service-deployment", "deployment", "example-service", "example-service", "/"),
    ("eureka.replicas", "eureka-app-statefulset", "statefulset", "eurekaserver", None, "/actuator/health"),
]


def test_scaling_2_5_2_previews_replicas_alone_and_drops_no_request(local: tuple[Project, auto.Stack], stack: auto.Stack, lab: Lab):
    """Both at once (one `up` per step: the same preview and load checks for each, half the time)."""
    project, _ = local
    outputs = stack.outputs()
    ns = lab.settings.eureka.namespace
    urls = {name: f"{outputs['serviceEndpoints'].value[output] if output else outputs['eurekaEndpoint'].value}{path}" for _, _, _, name, output, path in SCALED}
    try:
        with loads(urls, lab.instance.network, threads=2, max_seconds=900, max_requests=200_000) as running:
            for replicas in (5, 2):
                for key, *_ in SCALED:
                    project.set_path(stack, key, replicas)
                preview = project.preview(stack)
                resources = sorted(r for _, r, *_ in SCALED)
                assert sorted(preview.changed()) == resources and {op for op, _ in preview.changed().values()} == {"update"}, preview.changed()
                for r in resources:
                    assert preview.detailed(r) == ["spec.replicas"], (r, preview.detailed(r))
                t0 = time.monotonic()
                stack.up(color="never", on_output=lambda line: None)
                up_s = time.monotonic() - t0
                settled = {name: _ready(lab, stack, kind, name, ns, replicas) for _, _, kind, name, _, _ in SCALED}
                reports = {n: load.report() for n, load in running.items()}
                print(f"\n[e2e] scaled to {replicas}: up {up_s:.1f} s, all ready after {settled}; {reports}")
    finally:  # leave the stack as the suite found it (2 replicas), whatever failed
        for key, *_ in SCALED:
            project.set_path(stack, key, 2)
        stack.up(color="never", on_output=lambda line: None)
    for name, load in running.items():
        print(f"[e2e] {name} scaling 2 -> 5 -> 2 under load: {load.report()}")
        assert load.sent >= 100, load.report()
        assert load.failures == [], (name, load.report())
