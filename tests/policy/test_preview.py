"""Unknown values during preview, everywhere: every rule, given a compliant resource (or stack)
in which any single value - leaf, object or list - is unknown, neither crashes nor reports; and
given any failing case with any value unknown, it does not crash."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.policy import test_hosts as hosts
from tests.policy import test_rbac as rbac
from tests.policy import test_services as services
from tests.policy import test_stack as stack_rules
from tests.policy import test_workloads as workloads
from tests.policy.cases import Case, violations
from tests.policy.fakes import (
    COMMAND,
    DEPLOYMENT,
    NAMESPACE,
    PDB,
    REGISTRY,
    RULES,
    SERVICE,
    Report,
    command,
    deployment,
    paths,
    pdb,
    proxied,
    resource_args,
    service,
    stack,
    stack_args,
    with_unknown,
)

CONFIG: dict[str, dict[str, Any]] = {
    "image-registry-allowed": {"registry": REGISTRY},
    "load-balancer-allowed": services.LB_ON,
}
BASELINES: dict[str, tuple[str, dict[str, Any]]] = {
    "deployment": (DEPLOYMENT, deployment()),
    "service": (SERVICE, service()),
    "load-balancer": (SERVICE, services.LB),
    "pdb": (PDB, pdb()),
    "namespace": (NAMESPACE, {"metadata": {"name": "platform", "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}),
    "command": (COMMAND, command()),
    "secret-command": (COMMAND, command(hosts.HTPASSWD, stdin="pw", logging="none")),
    "apiserver-unit": (COMMAND, hosts.unit(hosts.APISERVER_UNIT)),
    "etcd-unit": (COMMAND, hosts.unit(hosts.ETCD_UNIT)),
    "kubelet-config": (COMMAND, hosts.unit(hosts.KUBELET_CONFIG)),
    "kubelet-unit": (COMMAND, hosts.unit(hosts.KUBELET_UNIT)),
    "hosts-toml": (COMMAND, hosts.unit(hosts.HOSTS_TOML)),
    "registry-config": (COMMAND, hosts.unit(hosts.REGISTRY_TLS)),
    "role": (rbac.ROLE, rbac.role(["get"], ["pods"])),
    "binding": (rbac.BINDING, rbac.binding("view")),
}
RESOURCE_RULES = [r for r in RULES.values() if not r.stack]
STACK_RULES = [r for r in RULES.values() if r.stack]


def _run_all(resource_type: str, props: dict[str, Any]) -> list[str]:
    out = []
    wrapped = proxied(props)
    for rule in RESOURCE_RULES:
        report = Report()
        rule.check(resource_args(resource_type, wrapped, config=CONFIG.get(rule.name), wrapped=True), report)
        out += [f"{rule.name}: {m}" for m in report.messages]
    return out


@pytest.mark.parametrize("baseline", BASELINES)
def test_baseline_is_compliant(baseline: str) -> None:
    assert _run_all(*BASELINES[baseline]) == []


@pytest.mark.parametrize("baseline", BASELINES)
def test_any_unknown_value_in_a_compliant_resource_is_skipped(baseline: str) -> None:
    resource_type, props = BASELINES[baseline]
    for path in paths(props):
        assert _run_all(resource_type, with_unknown(props, path)) == [], f"unknown at {'.'.join(map(str, path))}"


def test_any_unknown_value_in_a_compliant_stack_is_skipped() -> None:
    rows = stack()
    for i, (t, n, props) in enumerate(rows):
        for path in paths(props):
            mutated = [(t2, n2, proxied(p2)) for t2, n2, p2 in [*rows[:i], (t, n, with_unknown(props, path)), *rows[i + 1 :]]]
            for rule in STACK_RULES:
                report = Report()
                rule.check(stack_args(mutated, wrapped=True), report)
                assert report.messages == [], f"{rule.name}: unknown at {n}.{'.'.join(map(str, path))}"


@pytest.mark.parametrize("replicas", [2, 3])
def test_objects_whose_outputs_are_not_known_yet_are_skipped(replicas: int) -> None:
    """A stack policy sees outputs: {} for every Kubernetes object while the provider's kubeconfig
    is unknown (a real preview of dev or prod). Any one object without outputs, or all of them,
    must not look like an empty object (a Deployment of 1 replica, a budget without limits)."""
    rows = stack(replicas=replicas)
    variants = [[*rows[:i], (t, n, {}), *rows[i + 1 :]] for i, (t, n, _) in enumerate(rows)] + [[(t, n, {}) for t, n, _ in rows]]
    for mutated in variants:
        for rule in STACK_RULES:
            report = Report()
            rule.check(stack_args(mutated), report)
            assert report.messages == [], f"{rule.name}: {[n for t, n, p in mutated if not p]} without outputs"


ALL_CASES: list[Case] = [*workloads.CASES, *hosts.CASES, *services.CASES, *stack_rules.CASES, *rbac.CASES]


@pytest.mark.parametrize("c", [c for c in ALL_CASES if c.expect], ids=[c.id for c in ALL_CASES if c.expect])
def test_failing_cases_never_crash_on_unknowns(c: Case) -> None:
    if c.resource_type == "stack":
        for i, (t, n, props) in enumerate(c.props):
            for path in paths(props):
                violations(c, [*c.props[:i], (t, n, with_unknown(props, path)), *c.props[i + 1 :]])
    else:
        for path in paths(c.props):
            violations(c, with_unknown(c.props, path))


def test_with_unknown_leaves_the_original_alone() -> None:
    original = deployment()
    before = copy.deepcopy(original)
    for path in paths(original):
        mutated = with_unknown(original, path)
        assert mutated != original
    assert original == before
