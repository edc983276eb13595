"""Stack-wide graph rules: PodDisruptionBudgets for replicated workloads."""

from __future__ import annotations

from typing import Any

import pytest

from tests.policy.cases import Case, assert_case, case
from tests.policy.fakes import DELETE, DEPLOYMENT, NETWORK_POLICY, PDB, SERVICE_ACCOUNT, UNKNOWN, default_deny, deployment, edit, pdb, service_account, stack

RULE = "pdb-for-replicated-workloads"


def with_pdb(p: dict | None, replicas: int = 2) -> list:
    rows = [r for r in stack(replicas=replicas) if r[0] != PDB]
    return rows + ([(PDB, "eureka-app-pdb", p)] if p is not None else [])


CASES: list[Case] = [
    case("pdb-ok", RULE, "stack", stack()),
    case("pdb-missing", RULE, "stack", with_pdb(None), "no PodDisruptionBudget in its namespace selects its pods"),
    case("pdb-min-equals-replicas", RULE, "stack", with_pdb(pdb(minAvailable=2.0)), "requires minAvailable 2 of 2 replicas"),
    case("pdb-min-100-percent", RULE, "stack", with_pdb(pdb(minAvailable="100%")), "requires minAvailable '100%' of 2"),
    case("pdb-min-50-percent", RULE, "stack", with_pdb(pdb(minAvailable="50%"))),
    case("pdb-max-unavailable-zero", RULE, "stack", with_pdb(pdb(maxUnavailable=0.0)), "allows maxUnavailable 0"),
    case("pdb-max-unavailable-one", RULE, "stack", with_pdb(pdb(maxUnavailable=1.0))),
    case(
        "pdb-neither",
        RULE,
        "stack",
        with_pdb(edit(pdb(), **{"spec.minAvailable": None}) | {"spec": {"selector": {"matchLabels": {"app": "eurekaserver"}}}}),
        "sets neither",
    ),
    case("pdb-other-selector", RULE, "stack", with_pdb(edit(pdb(), **{"spec.selector.matchLabels.app": "other"})), "no PodDisruptionBudget"),
    case("pdb-other-namespace", RULE, "stack", with_pdb(pdb(namespace="services")), "no PodDisruptionBudget"),
    case("pdb-prod-shape", RULE, "stack", with_pdb(pdb(minAvailable=3.0), replicas=5)),
    case("pdb-single-replica", RULE, "stack", with_pdb(None, replicas=1)),
    # a budget over a workload below the threshold needs no budget, but one that selects it must still allow an eviction
    case("pdb-single-replica-min-one", RULE, "stack", with_pdb(pdb(minAvailable=1.0), replicas=1), "runs only 1 replica(s) and its disruption budget"),
    case("pdb-single-replica-min-percent", RULE, "stack", with_pdb(pdb(minAvailable="50%"), replicas=1), "requires minAvailable '50%' of 1"),
    case("pdb-single-replica-max-zero", RULE, "stack", with_pdb(pdb(maxUnavailable=0.0), replicas=1), "allows maxUnavailable 0"),
    case("pdb-single-replica-max-one", RULE, "stack", with_pdb(pdb(maxUnavailable=1.0), replicas=1)),
    case("pdb-single-replica-min-zero", RULE, "stack", with_pdb(pdb(minAvailable=0.0), replicas=1)),
    case("pdb-below-threshold-blocked", RULE, "stack", with_pdb(pdb(minAvailable=2.0)), "runs only 2 replica(s)", config={"minReplicas": 3.0}),
    case("pdb-min-above-replicas", RULE, "stack", with_pdb(pdb(minAvailable=3.0), replicas=2), "requires minAvailable 3 of 2"),
    case("pdb-max-unavailable-zero-percent", RULE, "stack", with_pdb(pdb(maxUnavailable="0%")), "allows maxUnavailable '0%'"),
    case("pdb-max-unavailable-small-percent", RULE, "stack", with_pdb(pdb(maxUnavailable="10%"))),
    case("pdb-zero-replicas", RULE, "stack", with_pdb(pdb(minAvailable=1.0), replicas=0)),
    case("pdb-single-replica-ignore-daemonset", RULE, "stack", [("kubernetes:apps/v1:DaemonSet", "ds", deployment(replicas=1)), (PDB, "ds-pdb", pdb())]),
    case("pdb-single-replica-unknown-min", RULE, "stack", with_pdb(pdb(minAvailable=UNKNOWN), replicas=1)),
    case("pdb-single-replica-unknown-selector", RULE, "stack", with_pdb(edit(pdb(), **{"spec.selector.matchLabels.app": UNKNOWN}), replicas=1)),
    case(
        "pdb-single-replica-unknown-replicas", RULE, "stack", [(DEPLOYMENT, "d", edit(deployment(replicas=1), **{"spec.replicas": UNKNOWN})), (PDB, "p", pdb())]
    ),
    # a stack policy sees outputs, {} for every object while the provider's kubeconfig is unknown (a real preview)
    case("pdb-preview-empty-workload", RULE, "stack", [(DEPLOYMENT, "d", {}), (PDB, "p", pdb(minAvailable=1.0))]),
    case("pdb-preview-empty-budget", RULE, "stack", [(DEPLOYMENT, "d", deployment(replicas=2)), (PDB, "p", {})]),
    case("pdb-preview-empty-budget-small", RULE, "stack", [(DEPLOYMENT, "d", deployment(replicas=1)), (PDB, "p", {})]),
    # a budget that blocks whatever it selects, with no workload of the stack under it: judged alone
    case(
        "pdb-alone-max-zero",
        RULE,
        "stack",
        [(PDB, "p", pdb("other", maxUnavailable=0.0))],
        'PodDisruptionBudget platform/other (kubernetes:policy/v1:PodDisruptionBudget "p"): It allows maxUnavailable 0',
    ),
    case("pdb-alone-max-negative", RULE, "stack", [(PDB, "p", pdb("other", maxUnavailable=-1.0))], "allows maxUnavailable -1"),
    case("pdb-alone-min-100-percent", RULE, "stack", [(PDB, "p", pdb("other", minAvailable="100%"))], "requires minAvailable '100%'"),
    case("pdb-alone-min-count", RULE, "stack", [(PDB, "p", pdb("other", minAvailable=2.0))]),
    case("pdb-alone-max-one", RULE, "stack", [(PDB, "p", pdb("other", maxUnavailable=1.0))]),
    case(
        "pdb-alone-selects-daemonset",
        RULE,
        "stack",
        [("kubernetes:apps/v1:DaemonSet", "ds", deployment("other")), (PDB, "p", pdb("other", maxUnavailable=0.0))],
    ),
    case("pdb-alone-ignores-patch", RULE, "stack", [("kubernetes:policy/v1:PodDisruptionBudgetPatch", "p", pdb("other", maxUnavailable=0.0))]),
    case(
        "pdb-alone-unknown-labels",
        RULE,
        "stack",
        [(DEPLOYMENT, "d", edit(deployment("other"), **{"spec.template.metadata.labels.app": UNKNOWN})), (PDB, "p", pdb("other", maxUnavailable=0.0))],
    ),
    case("pdb-alone-unknown-max", RULE, "stack", [(PDB, "p", pdb("other", maxUnavailable=UNKNOWN))]),
    case("pdb-neither-single-replica", RULE, "stack", with_pdb(edit(pdb(), **{"spec": {"selector": {"matchLabels": {"app": "eurekaserver"}}}}), replicas=1)),
    case("pdb-threshold", RULE, "stack", with_pdb(None), config={"minReplicas": 3.0}),
    case("pdb-kinds", RULE, "stack", with_pdb(None), config={"kinds": ["StatefulSet"]}),
    case("pdb-ignore-daemonset", RULE, "stack", [("kubernetes:apps/v1:DaemonSet", "ds", deployment())]),
    case("pdb-unknown-replicas", RULE, "stack", [(DEPLOYMENT, "d", edit(deployment(), **{"spec.replicas": UNKNOWN}))]),
    case("pdb-unknown-min", RULE, "stack", with_pdb(pdb(minAvailable=UNKNOWN))),
    case("pdb-unknown-namespace", RULE, "stack", with_pdb(pdb(namespace=UNKNOWN, minAvailable=1.0))),
]

SA = "service-account-exists"
DENY = "namespace-default-deny"


def without(kind: str, rows: list | None = None) -> list:
    return [r for r in (stack() if rows is None else rows) if r[0] != kind]


def with_account(name: Any, namespace: Any = "platform") -> list:
    return [*without(SERVICE_ACCOUNT), (SERVICE_ACCOUNT, "account", service_account(name, namespace))]


def with_deployment(namespace: Any = "platform", **pod: Any) -> list:
    """The stack without ServiceAccounts, its Deployment in `namespace` with pod spec fields `pod`."""
    d = edit(deployment(), **{"metadata.namespace": namespace, **{f"spec.template.spec.{k}": v for k, v in pod.items()}})
    return [*without(DEPLOYMENT, without(SERVICE_ACCOUNT)), (DEPLOYMENT, "eureka-app-deployment", d)]


def with_policy(p: dict) -> list:
    return [*without(NETWORK_POLICY), (NETWORK_POLICY, "policy", p)]


CASES += [
    # service-account-exists
    case("sa-exists-ok", SA, "stack", stack()),
    case(
        "sa-missing", SA, "stack", without(SERVICE_ACCOUNT), "run as ServiceAccount eurekaserver, which no resource of the stack creates in namespace platform"
    ),
    case("sa-other-namespace", SA, "stack", with_account("eurekaserver", "services"), "creates in namespace platform"),
    case("sa-other-name", SA, "stack", with_account("other"), "ServiceAccount eurekaserver"),
    case("sa-external", SA, "stack", without(SERVICE_ACCOUNT), config={"externalServiceAccounts": ["platform/eurekaserver"]}),
    case("sa-default-not-judged", SA, "stack", with_deployment(serviceAccountName="default")),
    case("sa-ignores-account-patch", SA, "stack", [*stack(), ("kubernetes:core/v1:ServiceAccountPatch", "patch", service_account("x"))]),
    case("sa-unknown-account-name", SA, "stack", with_account(UNKNOWN)),
    case("sa-unknown-workload-namespace", SA, "stack", with_deployment(namespace=UNKNOWN)),
    case("sa-unknown-workload-account", SA, "stack", with_deployment(serviceAccountName=UNKNOWN)),
    case("sa-preview-outputs-empty", SA, "stack", [*without(SERVICE_ACCOUNT), (SERVICE_ACCOUNT, "account", {})]),
    # namespace-default-deny
    case("deny-ok", DENY, "stack", stack()),
    case("deny-missing", DENY, "stack", without(NETWORK_POLICY), "Namespace platform has no default-deny NetworkPolicy for Ingress and Egress"),
    case("deny-ingress-only", DENY, "stack", with_policy(default_deny(types=("Ingress",))), "for Egress"),
    case("deny-ingress-only-enough", DENY, "stack", with_policy(default_deny(types=("Ingress",))), config={"policyTypes": ["Ingress"]}),
    case("deny-types-unset", DENY, "stack", with_policy(edit(default_deny(), **{"spec.policyTypes": DELETE})), "for Egress"),
    case(
        "deny-some-pods",
        DENY,
        "stack",
        with_policy(edit(default_deny(), **{"spec.podSelector": {"matchLabels": {"app": "eurekaserver"}}})),
        "for Ingress and Egress",
    ),
    case("deny-allows-all", DENY, "stack", with_policy(edit(default_deny(), **{"spec.ingress": [{}]})), "for Ingress"),
    case("deny-other-namespace", DENY, "stack", with_policy(default_deny("services")), "Namespace platform"),
    case(
        "deny-workload-namespace",
        DENY,
        "stack",
        [*stack(), (DEPLOYMENT, "other", deployment("other", namespace="services"))],
        'Deployment services/other (kubernetes:apps/v1:Deployment "other"): Namespace services has no default-deny',
    ),
    case("deny-exempt", DENY, "stack", without(NETWORK_POLICY), config={"exemptNamespaces": ["platform"]}),
    case(
        "deny-ignores-policy-patch",
        DENY,
        "stack",
        [*without(NETWORK_POLICY), ("kubernetes:networking.k8s.io/v1:NetworkPolicyPatch", "p", default_deny())],
        "Namespace platform",
    ),
    case("deny-unknown-types", DENY, "stack", with_policy(edit(default_deny(), **{"spec.policyTypes": UNKNOWN}))),
    case("deny-unknown-namespace", DENY, "stack", with_policy(default_deny(UNKNOWN))),
    case("deny-preview-outputs-empty", DENY, "stack", with_policy({})),
]


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_rule(c: Case) -> None:
    assert_case(c)
