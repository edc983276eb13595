"""Stack-wide graph rules: PodDisruptionBudgets for replicated workloads."""

from __future__ import annotations

import pytest

from tests.policy.cases import Case, assert_case, case
from tests.policy.fakes import DEPLOYMENT, PDB, UNKNOWN, deployment, edit, pdb, stack

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
    case("pdb-threshold", RULE, "stack", with_pdb(None), config={"minReplicas": 3.0}),
    case("pdb-kinds", RULE, "stack", with_pdb(None), config={"kinds": ["StatefulSet"]}),
    case("pdb-ignore-daemonset", RULE, "stack", [("kubernetes:apps/v1:DaemonSet", "ds", deployment())]),
    case("pdb-unknown-replicas", RULE, "stack", [(DEPLOYMENT, "d", edit(deployment(), **{"spec.replicas": UNKNOWN}))]),
    case("pdb-unknown-min", RULE, "stack", with_pdb(pdb(minAvailable=UNKNOWN))),
    case("pdb-unknown-namespace", RULE, "stack", with_pdb(pdb(namespace=UNKNOWN, minAvailable=1.0))),
]


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_rule(c: Case) -> None:
    assert_case(c)
