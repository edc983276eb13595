"""Day-2 on the lab, under load: a rolling update of the example service to a really new image
(2.0.0: the same source built at the next version, its answers name it), then a bad release (an
image that runs but never answers its readiness probe) that must stop with a clear error while
the old pods keep serving, and the revert that recovers.

The new image is first pushed into the private registry (a `registry.images` entry: the preview
shows only its copy and push steps), then the tag changes (the preview shows only the image).
A load generator sends requests through the LoadBalancer address the whole time; every failure
is counted.
"""

from __future__ import annotations

import json
import time

import pytest
from pulumi import automation as auto

from components.settings.platform import example_image
from components.settings.registry import default_archive
from lab.stackfile import EXAMPLE_SERVICE, PAUSE_IMAGE
from tests.e2e.conftest import Lab
from tests.e2e.load import Load
from tests.e2e.test_local_stack import kubeconfig_of, kubectl
from tools.automation import Project

pytestmark = pytest.mark.lab

DEPLOYMENT = f"service-{EXAMPLE_SERVICE}-deployment"
IMAGE_PATH = f"services.{EXAMPLE_SERVICE}.image"
# The bad release: the pause image under the service's name. It starts and runs but never
# listens on the service's port, like a release that hangs at start-up (simulated this way so
# the suite needs no third Spring Boot build).
BROKEN = f"{EXAMPLE_SERVICE}:broken"


def _version(body: str) -> str:
    try:
        return str(json.loads(body).get("version"))
    except ValueError:
        return f"(not JSON: {body[:60]!r})"


def _versions(load: Load) -> dict[str, int]:
    out: dict[str, int] = {}
    for body, n in load.bodies.items():
        out[_version(body)] = out.get(_version(body), 0) + n
    return out


def _images(project: Project, stack: auto.Stack) -> list[dict]:
    got = json.loads(project.pulumi("config", "get", "--path", "registry.images", "-s", stack.name, "--json").stdout)
    return json.loads(got["value"])


def _push(project: Project, stack: auto.Stack, image: str, archive: str) -> None:
    """Append an image to registry.images (what an operator does to publish a release)."""
    index = len(_images(project, stack))
    project.set_path(stack, f"registry.images[{index}].name", image)
    project.set_path(stack, f"registry.images[{index}].archive", archive)


def _rollout_state(stack: auto.Stack, ns: str) -> dict:
    obj = json.loads(kubectl(kubeconfig_of(stack), "-n", ns, "get", "deployment", EXAMPLE_SERVICE, "-o", "json").stdout)
    st = obj["status"]
    return {
        "image": obj["spec"]["template"]["spec"]["containers"][0]["image"],
        "ready": st.get("readyReplicas", 0),
        "updated": st.get("updatedReplicas", 0),
        "replicas": st.get("replicas", 0),
        "conditions": {c["type"]: (c["status"], c.get("reason")) for c in st.get("conditions", [])},
    }


def test_rolling_update_to_a_new_image_then_a_bad_one_and_back(local: tuple[Project, auto.Stack], stack: auto.Stack, lab: Lab):
    project, _ = local
    ns = lab.settings.eureka.namespace
    url = stack.outputs()["serviceEndpoints"].value[EXAMPLE_SERVICE] + "/"
    old, new = example_image(), example_image(next_version=True)
    old_v, new_v = old.split(":")[1], new.split(":")[1]
    try:
        # 1. Publish 2.0.0 into the registry: only its copy and push steps, all creates.
        _push(project, stack, new, default_archive(new))
        preview = project.preview(stack)
        ops = {name: op for name, (op, _) in preview.changed().items()}
        assert ops and set(ops.values()) == {"create"} and all("2.0.0" in n for n in ops), ops
        stack.up(color="never", on_output=lambda line: None)

        # 2. The rolling update: the preview shows the image alone.
        project.set_path(stack, IMAGE_PATH, new)
        preview = project.preview(stack)
        assert list(preview.changed()) == [DEPLOYMENT] and preview.changed()[DEPLOYMENT][0] == "update", preview.changed()
        assert preview.detailed(DEPLOYMENT) == ["spec.template.spec.containers[0].image"], preview.detailed(DEPLOYMENT)
        with Load(url, lab.instance.network, threads=4, max_seconds=600, max_requests=100_000) as load:
            time.sleep(3)  # answers from the old version first
            t0 = time.monotonic()
            stack.up(color="never", on_output=lambda line: None)
            up_s = time.monotonic() - t0
            time.sleep(3)
        print(f"\n[e2e] rolling update {old_v} -> {new_v}: up (rollout complete) {up_s:.1f} s; {load.report()}; versions {_versions(load)}")
        assert load.failures == [], load.report()
        assert load.sent >= 1000, load.report()
        assert set(_versions(load)) == {old_v, new_v}, _versions(load)
        state = _rollout_state(stack, ns)
        assert state["image"].endswith(new) and state["ready"] == state["updated"] == state["replicas"] == 2, state
        time.sleep(6)  # the old pods' preStop pause: they leave the endpoints first, then stop
        with Load(url, lab.instance.network, threads=2, max_seconds=60, max_requests=300) as after:
            while after.sent < 300 and time.monotonic() - after._t0 < 60:
                time.sleep(0.5)
        assert after.failures == [] and _versions(after) == {new_v: after.sent}, (after.report(), _versions(after))

        # 3. A bad release: the rollout stops with a clear error; the 2.0.0 pods keep serving.
        _push(project, stack, BROKEN, default_archive(PAUSE_IMAGE))
        project.set_path(stack, IMAGE_PATH, BROKEN)
        project.set_path(stack, f"services.{EXAMPLE_SERVICE}.progressDeadline", 20)
        with Load(url, lab.instance.network, threads=4, max_seconds=600, max_requests=100_000) as load:
            t0 = time.monotonic()
            with pytest.raises(auto.CommandError) as failed:
                stack.up(color="never", on_output=lambda line: None)
            fail_s = time.monotonic() - t0
            state = _rollout_state(stack, ns)
        message = str(failed.value)
        print("[e2e] the error `up` gave:", *[line.strip() for line in message.splitlines() if "rror" in line or "Deadline" in line][-6:], sep="\n    ")
        print(f"[e2e] bad release {BROKEN}: up failed after {fail_s:.1f} s; {load.report()}; versions {_versions(load)}; state {state}")
        assert "ProgressDeadlineExceeded" in message or "progress deadline" in message.lower(), message[-3000:]
        assert EXAMPLE_SERVICE in message, message[-3000:]
        assert load.failures == [], load.report()
        assert _versions(load) == {new_v: load.sent}, _versions(load)
        assert state["conditions"].get("Progressing") == ("False", "ProgressDeadlineExceeded"), state
        assert state["ready"] == 2, state  # the old replicas, all still there

        # 4. Revert the tag: the rollout goes back to 2.0.0 and completes.
        project.set_path(stack, IMAGE_PATH, new)
        preview = project.preview(stack)
        assert preview.detailed(DEPLOYMENT) == ["spec.template.spec.containers[0].image"], preview.detailed(DEPLOYMENT)
        with Load(url, lab.instance.network, threads=4, max_seconds=600, max_requests=100_000) as load:
            t0 = time.monotonic()
            stack.up(color="never", on_output=lambda line: None)
            revert_s = time.monotonic() - t0
        state = _rollout_state(stack, ns)
        print(f"[e2e] revert to {new_v}: up {revert_s:.1f} s; {load.report()}; state {state}")
        assert load.failures == [], load.report()
        assert state["image"].endswith(new) and state["ready"] == state["updated"] == state["replicas"] == 2, state
        assert state["conditions"].get("Progressing", ("", ""))[0] == "True", state
    finally:  # 2.0.0 stays (the tests after this one need a serving release, not 1.0.0); the bad release goes
        if _rollout_state(stack, ns)["image"].endswith(BROKEN):
            project.set_path(stack, IMAGE_PATH, new if any(i["name"] == new for i in _images(project, stack)) else old)
        project.pulumi("config", "rm", "--path", f"services.{EXAMPLE_SERVICE}.progressDeadline", "-s", stack.name, check=False)
        images = _images(project, stack)
        for i in reversed(range(len(images))):
            if images[i]["name"] == BROKEN:
                project.pulumi("config", "rm", "--path", f"registry.images[{i}]", "-s", stack.name)
        stack.up(color="never", on_output=lambda line: None)
