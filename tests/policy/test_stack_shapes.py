"""The real program's dev, prod and local resources (recorded under mocks by
tests/unit/harness.py) against each stack's policy config: no violation at all. And the original
setup's hostPort 8761 with 2 replicas on 1 worker, which the default config avoids, is caught."""

from __future__ import annotations

import atexit
import copy
import dataclasses
import functools
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from components.dns import NAMESPACE as DNS_NAMESPACE
from components.metallb import NAMESPACE as METALLB_NAMESPACE
from tests.policy.fakes import RULES, UNKNOWN, Report, proxied, resource_args, stack_args
from tests.policy.stacks import values
from tests.unit.harness import ROOT, RecordingMocks, base_config, run_program

Row = tuple[str, str, dict[str, Any], tuple[str, ...]]


def mock_config(stack: str) -> dict[str, Any]:
    """A stack's config as the program under mocks needs it: the harness's archives and key, a
    throwaway registry password, and binaries from release URLs (mocks copy no local files; no
    rule depends on where a binary comes from)."""
    if stack == "dev":
        return base_config()
    cfg = values(stack)
    dev = base_config()  # the harness knows what an archive must be under mocks: reuse its choice
    archives = [img["archive"] for img in dev["registry"]["images"]]
    for i, img in enumerate(cfg["registry"]["images"]):
        img["archive"] = archives[min(i, len(archives) - 1)]
    cfg["sshPrivateKey"] = dev["sshPrivateKey"]
    if cfg["registry"].get("auth"):
        cfg["registryPassword"] = "a-throwaway-registry-password"
    if cfg["binaries"].get("source") == "local":
        cfg["binaries"] = {
            **{k: v for k, v in cfg["binaries"].items() if k in ("etcdVersion", "flannelVersion")},
            "source": "local",
            "localDir": str(fake_binaries()),
        }
    return cfg


@functools.cache
def fake_binaries() -> Path:
    """A directory with a small file per executable the program copies (its checksum is what
    the steps record; under mocks nothing is copied)."""
    from components.binaries import ETCD_BINARIES, FLANNEL_BINARIES, KUBERNETES_CONTROL_PLANE_BINARIES, KUBERNETES_WORKER_BINARIES, NETPOL_BINARIES

    d = Path(tempfile.mkdtemp(prefix="vmp-fake-binaries-"))
    atexit.register(shutil.rmtree, d, True)
    for name in (*KUBERNETES_CONTROL_PLANE_BINARIES, *KUBERNETES_WORKER_BINARIES, *ETCD_BINARIES, *FLANNEL_BINARIES, *NETPOL_BINARIES):
        (d / name).write_text(f"#!/bin/sh\n# {name}\n")
    return d


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
    wrapped = [(t, n, proxied(p), s) for t, n, p, s in resources]
    config = policy_config(stack)
    for name, rule in RULES.items():
        cfg = {k: v for k, v in config.get(name, {}).items() if k != "enforcementLevel"}
        report = Report()
        if rule.stack:
            rule.check(stack_args([(t, n, p) for t, n, p, _ in wrapped], cfg, wrapped=True), report)
        else:
            for t, n, p, secret_outputs in wrapped:
                rule.check(resource_args(t, p, n, cfg, secret_outputs, wrapped=True), report)
        out[name] = report.messages
    return out


@functools.cache
def evaluated(stack: str) -> dict[str, list[str]]:
    """The shipped stack's violations under its own config (one evaluation per stack)."""
    return evaluate(shapes(stack), stack)


def mandatory(stack: str) -> set[str]:
    return {name for name, c in policy_config(stack).items() if c["enforcementLevel"] == "mandatory"}


@functools.cache
def shapes(stack: str) -> list[Row]:
    """The stack's resources as the engine would show them to the pack (one program run each)."""
    return rows(run_program(mock_config(stack), stack=stack))


STACKS = ["dev", "prod", "local"]


@pytest.mark.parametrize("stack", STACKS)
def test_the_shapes_cover_every_layer(stack: str) -> None:
    types = {t for t, *_ in shapes(stack)}
    assert {"command:remote:Command", "kubernetes:apps/v1:Deployment", "kubernetes:core/v1:Service", "kubernetes:policy/v1:PodDisruptionBudget"} <= types


# Advisory until components/ create what they ask for (then they become mandatory, and this
# list empties): a ServiceAccount per Microservice (Eureka, the services), and a default-deny
# NetworkPolicy with the allow rules for Eureka, CoreDNS and the services in every namespace.
PENDING_IN_COMPONENTS = {"namespace-default-deny"}


@pytest.mark.parametrize("stack", STACKS)
def test_no_violation_at_all(stack: str) -> None:
    found = evaluated(stack)
    assert {k: v for k, v in found.items() if v and k in mandatory(stack)} == {}
    assert {k: v for k, v in found.items() if v and k not in PENDING_IN_COMPONENTS} == {}, "advisory findings too"


@pytest.mark.parametrize("stack", STACKS)
def test_what_components_still_lack(stack: str) -> None:
    """The pending rule is advisory. Without an enforcer (network.policyEnforcer none: flannel
    enforces no NetworkPolicy, so the platform writes none) it flags every namespace the stack
    runs pods in; with vmp-netpol (the local stack) every one has its default-deny."""
    found = evaluated(stack)
    assert all(policy_config(stack)[rule]["enforcementLevel"] == "advisory" for rule in PENDING_IN_COMPONENTS)
    assert not found["no-default-service-account"], "every workload has its own ServiceAccount"
    namespaces = {re.search(r"Namespace (\S+) has no default-deny", m)[1] for m in found["namespace-default-deny"]}  # type: ignore[index]
    if mock_config(stack)["network"].get("policyEnforcer", "none") == "vmp-netpol":
        assert namespaces == set(), namespaces
    else:
        assert {DNS_NAMESPACE, METALLB_NAMESPACE, *mock_config(stack)["namespaces"]} <= namespaces, namespaces


# Namespaces the program writes as literals (known in preview too): CoreDNS's and MetalLB's.
LITERAL_NAMESPACES = {DNS_NAMESPACE, METALLB_NAMESPACE}


def with_unknown_namespaces(stack: str, namespaces: set[str]) -> list[Row]:
    """The stack's resources with metadata.namespace unknown where it is one of `namespaces`."""
    resources = []
    for t, n, p, s in shapes(stack):
        p = copy.deepcopy(p)
        if t.startswith("kubernetes:") and isinstance(p.get("metadata"), dict) and p["metadata"].get("namespace") in namespaces:
            p["metadata"]["namespace"] = UNKNOWN
        resources.append((t, n, p, s))
    return resources


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_false_violation_when_namespaces_are_unknown_in_preview(stack: str) -> None:
    """In a real preview the namespace of each object in a stack namespace comes from the
    Namespace's output (components/namespaces.py): unknown. CoreDNS's and MetalLB's are literals."""
    stack_namespaces = set(mock_config(stack)["namespaces"])
    seen = {
        p["metadata"]["namespace"]
        for t, _, p, _ in shapes(stack)
        if t.startswith("kubernetes:") and isinstance(p.get("metadata"), dict) and "namespace" in p["metadata"]
    }
    assert seen <= stack_namespaces | LITERAL_NAMESPACES, "a namespace this test does not know where it comes from"
    resources = with_unknown_namespaces(stack, stack_namespaces)
    assert sum(p["metadata"].get("namespace") is UNKNOWN for t, _, p, _ in resources if isinstance(p.get("metadata"), dict)) > 0
    assert {k: v for k, v in evaluate(resources, stack).items() if v and k not in PENDING_IN_COMPONENTS} == {}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_an_unknown_namespace_is_not_exempt(stack: str) -> None:
    """Were MetalLB's namespace unknown, its exemption could not apply: its speaker and its one
    controller are flagged by exactly the rules its namespace is exempt from, and nothing else is."""
    resources = with_unknown_namespaces(stack, set(mock_config(stack)["namespaces"]) | LITERAL_NAMESPACES)
    found = {k: v for k, v in evaluate(resources, stack).items() if v and k not in PENDING_IN_COMPONENTS}
    exempt = {rule for rule, c in policy_config(stack).items() if METALLB_NAMESPACE in c.get("exemptNamespaces", ())}
    assert set(found) == exempt == {"no-host-namespaces", "container-capabilities", "run-as-non-root", "run-as-non-root-group", "min-replicas"}
    assert all('"metallb-speaker"' in m or '"metallb-controller"' in m for v in found.values() for m in v), found
    assert [m for m in found["min-replicas"] if '"metallb-controller"' in m] and [m for m in found["no-host-namespaces"] if '"metallb-speaker"' in m]


def test_dev_plain_http_registry_is_allowed_only_by_dev_config() -> None:
    found = evaluate(shapes("dev"), "prod")["registry-plain-http"]
    assert len(found) == 2 and "has no tls block" in found[0] and "pulls over plain http" in found[1]


EUREKA = ("kubernetes:apps/v1:StatefulSet", "eureka-app-statefulset")  # components/eureka.py (stateful microservice)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_original_host_port_setup_is_caught(stack: str) -> None:
    """The original Eureka setup: hostPort 8761 (components/settings also refuses it for 2 replicas on 1 worker)."""
    resources = []
    for t, n, p, s in shapes(stack):
        if (t, n) == EUREKA:
            p = copy.deepcopy(p)
            p["spec"]["template"]["spec"]["containers"][0]["ports"][0]["hostPort"] = 8761.0
        resources.append((t, n, p, s))
    assert resources != shapes(stack), "the Eureka StatefulSet is among the resources"
    found = evaluate(resources, stack)["host-port-capacity"]
    replicas = mock_config(stack)["eureka"]["replicas"]
    workers = policy_config(stack)["host-port-capacity"]["schedulableWorkers"]
    assert replicas > workers, "the case under test: more replicas than workers"
    assert len(found) == 1, found
    assert found[0].startswith(f'StatefulSet {mock_config(stack)["eureka"]["namespace"]}/eurekaserver (kubernetes:apps/v1:StatefulSet "{EUREKA[1]}")'), found[0]
    assert f"asks for {replicas} replicas with hostPort 8761" in found[0] and f"{workers} schedulable worker(s)" in found[0]
    assert "host-port-capacity" in mandatory(stack)


KUBELET_OVERRIDES = {
    # the case: a shallow merge dropped anonymous: false (the kubelet's default is false)
    "webhook-only": ({"authentication": {"webhook": {"cacheTTL": "1m"}}}, []),
    # each insecure mode at once (one program run; tests/policy/test_hosts.py has them one by one)
    "all-insecure": (
        {"authentication": {"anonymous": {"enabled": True}}, "authorization": {"mode": "AlwaysAllow"}, "readOnlyPort": 10255},
        ["readOnlyPort is 10255", "authentication.anonymous.enabled is true", "authorization.mode is AlwaysAllow"],
    ),
}


@pytest.mark.parametrize("override, expect", KUBELET_OVERRIDES.values(), ids=KUBELET_OVERRIDES.keys())
def test_kubelet_overrides_are_judged_after_the_program_merged_them(override: dict[str, Any], expect: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect 2 of issue 8: whatever the stack's kubelet overrides make of the kubelet's config
    file, the pack refuses an anonymous kubelet. The overrides go in after validation (settings
    may refuse them first: the pack is the second line), so the program's own merge is what the
    rule judges."""
    import components.settings as settings_module

    load = settings_module.load_settings

    def with_override() -> Any:
        s = load()
        return dataclasses.replace(s, kubelet={**s.kubelet, **override})

    monkeypatch.setattr(settings_module, "load_settings", with_override)
    cfg = base_config()
    rule, report = RULES["kubelet-insecure-config"], Report()
    for t, n, p, secret_outputs in rows(run_program(cfg)):
        rule.check(resource_args(t, p, n, {}, secret_outputs), report)
    found = report.messages
    workers = [w["address"] for w in cfg["workers"]]  # one kubelet config file per worker
    assert len(found) == len(expect) * len(workers), found
    for (address, want), message in zip([(a, w) for a in workers for w in expect], found, strict=True):
        assert want in message and f"on {address}" in message
