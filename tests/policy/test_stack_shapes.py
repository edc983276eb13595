"""The real program's dev and prod resources (recorded under mocks by tests/unit/harness.py)
against the dev and prod policy config: no mandatory violation. And the original setup's
hostPort 8761 with 2 replicas on 1 worker, which the default config avoids, is caught."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from tests.policy.fakes import RULES, UNKNOWN, Report, resource_args, stack_args
from tests.unit.harness import ROOT, RecordingMocks, base_config, run_program

Row = tuple[str, str, dict[str, Any], tuple[str, ...]]


def prod_config() -> dict[str, Any]:
    with open(ROOT / "Pulumi.prod.yaml") as f:
        cfg = {k.split(":", 1)[1]: v for k, v in yaml.safe_load(f)["config"].items()}
    dev = base_config()  # the harness knows what an archive must be under mocks: reuse its choice
    archives = [img["archive"] for img in dev["registry"]["images"]]
    for i, img in enumerate(cfg["registry"]["images"]):
        img["archive"] = archives[min(i, len(archives) - 1)]
    cfg["sshPrivateKey"] = dev["sshPrivateKey"]
    cfg["registryPassword"] = "a-throwaway-registry-password"
    return cfg


def policy_config(stack: str) -> dict[str, dict[str, Any]]:
    return json.loads((ROOT / "policy" / "config" / f"{stack}.json").read_text())


def rows(mocks: RecordingMocks) -> list[Row]:
    """type, name, inputs and additional secret outputs of each resource, as the engine shows them."""
    return [
        (r.type, name, r.inputs, tuple(mocks.graph.get(name, (None, [], {}))[2].get("additional_secret_outputs") or ())) for name, r in mocks.resources.items()
    ]


def evaluate(resources: list[Row], stack: str) -> dict[str, list[str]]:
    """rule name -> violations, with the stack's policy config."""
    out: dict[str, list[str]] = {}
    for name, rule in RULES.items():
        cfg = {k: v for k, v in policy_config(stack).get(name, {}).items() if k != "enforcementLevel"}
        report = Report()
        if rule.stack:
            rule.check(stack_args([(t, n, p) for t, n, p, _ in resources], cfg), report)
        else:
            for t, n, p, secret_outputs in resources:
                rule.check(resource_args(t, p, n, cfg, secret_outputs), report)
        out[name] = report.messages
    return out


def mandatory(stack: str) -> set[str]:
    return {name for name, c in policy_config(stack).items() if c["enforcementLevel"] == "mandatory"}


@pytest.fixture(scope="module")
def dev() -> list[Row]:
    return rows(run_program(base_config()))


@pytest.fixture(scope="module")
def prod() -> list[Row]:
    return rows(run_program(prod_config(), stack="prod"))


def test_the_shapes_cover_every_layer(dev: list[Row], prod: list[Row]) -> None:
    for resources in (dev, prod):
        types = {t for t, *_ in resources}
        assert {"command:remote:Command", "kubernetes:apps/v1:Deployment", "kubernetes:core/v1:Service", "kubernetes:policy/v1:PodDisruptionBudget"} <= types


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_violation_at_all(stack: str, dev: list[Row], prod: list[Row]) -> None:
    found = evaluate(dev if stack == "dev" else prod, stack)
    assert {k: v for k, v in found.items() if v and k in mandatory(stack)} == {}
    assert {k: v for k, v in found.items() if v} == {}, "advisory findings too"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_false_violation_when_namespaces_are_unknown_in_preview(stack: str, dev: list[Row], prod: list[Row]) -> None:
    """In a real preview the namespace of each object comes from the Namespace's output."""
    resources = []
    for t, n, p, s in dev if stack == "dev" else prod:
        p = copy.deepcopy(p)
        if t.startswith("kubernetes:") and isinstance(p.get("metadata"), dict) and "namespace" in p["metadata"]:
            p["metadata"]["namespace"] = UNKNOWN
        resources.append((t, n, p, s))
    assert {k: v for k, v in evaluate(resources, stack).items() if v} == {}


def test_dev_plain_http_registry_is_allowed_only_by_dev_config(dev: list[Row]) -> None:
    found = evaluate(dev, "prod")["registry-plain-http"]
    assert len(found) == 2 and "has no tls block" in found[0] and "pulls over plain http" in found[1]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_original_host_port_setup_is_caught(stack: str, dev: list[Row], prod: list[Row]) -> None:
    """The original Eureka setup: hostPort 8761 (settings.py also refuses it for 2 replicas on 1 worker)."""
    resources = []
    for t, n, p, s in dev if stack == "dev" else prod:
        if t == "kubernetes:apps/v1:Deployment":
            p = copy.deepcopy(p)
            p["spec"]["template"]["spec"]["containers"][0]["ports"][0]["hostPort"] = 8761.0
        resources.append((t, n, p, s))
    found = evaluate(resources, stack)["host-port-capacity"]
    replicas, workers = (2, 1) if stack == "dev" else (5, 3)
    assert len(found) == 1
    assert f"asks for {replicas} replicas with hostPort 8761" in found[0] and f"{workers} schedulable worker(s)" in found[0]
    assert "host-port-capacity" in mandatory(stack)
