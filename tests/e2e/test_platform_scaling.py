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
from tests.e2e.load import Load
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


@pytest.mark.parametrize(
    "key,resource,kind,name,output,path",
    [
        ("services.example-service.replicas", "service-example-service-deployment", "deployment", "example-service", "example-service", "/"),
        ("eureka.replicas", "eureka-app-statefulset", "statefulset", "eurekaserver", None, "/actuator/health"),
    ],
    ids=["example-service", "eureka"],
)
def test_scaling_2_5_2_previews_replicas_alone_and_drops_no_request(
    local: tuple[Project, auto.Stack], stack: auto.Stack, lab: Lab, key: str, resource: str, kind: str, name: str, output: str | None, path: str
):
    project, _ = local
    outputs = stack.outputs()
    base = outputs["serviceEndpoints"].value[output] if output else outputs["eurekaEndpoint"].value
    ns = lab.settings.eureka.namespace
    try:
        with Load(f"{base}{path}", lab.instance.network, threads=4, max_seconds=900, max_requests=200_000) as load:
            for replicas in (5, 2):
                project.set_path(stack, key, replicas)
                preview = project.preview(stack)
                assert list(preview.changed()) == [resource] and preview.changed()[resource][0] == "update", preview.changed()
                assert preview.detailed(resource) == ["spec.replicas"], preview.detailed(resource)
                t0 = time.monotonic()
                stack.up(color="never", on_output=lambda line: None)
                up_s = time.monotonic() - t0
                settled = _ready(lab, stack, kind, name, ns, replicas)
                print(f"\n[e2e] {name} -> {replicas}: up {up_s:.1f} s, all ready {settled:.1f} s after; {load.report()}")
    finally:  # leave the stack as the suite found it (2 replicas), whatever failed
        project.set_path(stack, key, 2)
        stack.up(color="never", on_output=lambda line: None)
    print(f"[e2e] {name} scaling 2 -> 5 -> 2 under load: {load.report()}")
    assert load.sent >= 100, load.report()
    assert load.failures == [], load.report()
