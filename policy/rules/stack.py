"""Stack-wide graph rules: relations between resources that no single resource shows.

pdb-for-replicated-workloads: every replicated Deployment/StatefulSet has a PodDisruptionBudget
in its namespace that selects its pods and still allows a voluntary disruption (otherwise a
node drain blocks forever: maintenance.nodes relies on drains finishing). A workload below
minReplicas needs no budget, but one that selects it must still allow a disruption:
`minAvailable: 1` over one replica blocks every drain of its node.
"""

from __future__ import annotations

import math
from typing import Any

from .common import HIGH, MANDATORY, UNKNOWN, Config, Report, declared, get, integer, number, rule, show, strings
from .kube import RELIABILITY_TAGS, Workload, describe, k8s_kind, selector_matches, stack_workload
from .services import same_namespace


def _scaled(value: Any, replicas: int) -> int | None:
    """An int-or-percent PDB value as a pod count (percentages round up, as the disruption
    controller does); None when unknown or malformed."""
    if value is UNKNOWN or value is None:
        return None
    if isinstance(value, str) and value.endswith("%"):
        n = number(value[:-1])
        return None if n is None else math.ceil(n * replicas / 100)
    n = number(value)
    return None if n is None else int(n)


def pdb_blocks(pdb_props: Any, replicas: int) -> str | None:
    """Why the PDB allows no voluntary disruption of `replicas` healthy pods, or None."""
    min_available, max_unavailable = get(pdb_props, "spec", "minAvailable"), get(pdb_props, "spec", "maxUnavailable")
    if min_available is UNKNOWN or max_unavailable is UNKNOWN:
        return None
    if min_available is None and max_unavailable is None:
        return "sets neither minAvailable nor maxUnavailable"
    if min_available is not None:
        n = _scaled(min_available, replicas)
        if n is not None and n >= replicas:
            return f"requires minAvailable {show(min_available)} of {replicas} replicas"
    if max_unavailable is not None:
        n = _scaled(max_unavailable, replicas)
        if n is not None and n <= 0:
            return f"allows maxUnavailable {show(max_unavailable)}"
    return None


def budgets_for(wl: Workload, pdbs: list[Any]) -> tuple[list[Any], bool]:
    """(the PodDisruptionBudgets that surely select the workload's pods, whether others might:
    an unknown namespace or label during preview may match)."""
    sure, maybe = [], False
    for pdb in pdbs:
        if get(pdb.props, "spec") is None:
            maybe = True  # outputs not known yet (kube.stack_workload)
            continue
        ns = get(pdb.props, "metadata", "namespace")
        if not same_namespace(ns, wl.namespace):
            continue
        match = selector_matches(get(pdb.props, "spec", "selector", default={}), wl.pod_labels)
        if match and ns is not UNKNOWN and wl.namespace is not UNKNOWN:
            sure.append(pdb)
        elif match is not False:
            maybe = True
    return sure, maybe


@rule(
    "pdb-for-replicated-workloads",
    "Every replicated Deployment/StatefulSet has a PodDisruptionBudget in its namespace that selects its pods, and every budget that selects a workload allows a disruption (minAvailable < replicas or maxUnavailable > 0).",
    HIGH,
    MANDATORY,
    "Add a policy/v1 PodDisruptionBudget with selector = the pod labels and minAvailable < replicas (eureka.minAvailable < eureka.replicas) or maxUnavailable >= 1.",
    settings={
        "minReplicas": integer("Workloads with at least this many replicas need a PDB.", 2, minimum=1),
        "kinds": strings("Workload kinds that need a PDB.", ["Deployment", "StatefulSet"]),
    },
    stack=True,
    tags=RELIABILITY_TAGS,
)
def validate_pdbs(args: Any, report: Report, cfg: Config) -> None:
    """Each replicated workload has a PodDisruptionBudget, and every budget allows a disruption."""
    kinds = set(cfg.get("kinds", ["Deployment", "StatefulSet"]))
    threshold = int(cfg.get("minReplicas", 2))
    pdbs = [r for r in args.resources if k8s_kind(r.resource_type) == "PodDisruptionBudget"]
    for r in args.resources:
        wl: Workload | None = stack_workload(r.resource_type, r.props)
        if wl is None or wl.kind not in kinds or wl.replicas is UNKNOWN or wl.replicas is None or wl.replicas < 1:
            continue
        who = describe(r.resource_type, r.name, r.props)
        matching, maybe = budgets_for(wl, pdbs)
        if wl.replicas < threshold:
            # too small to need a budget, but one that selects it still blocks every drain of its node
            for pdb in matching:
                why = pdb_blocks(pdb.props, wl.replicas)
                if why:
                    report(
                        f"{who}: It runs only {wl.replicas} replica(s) and its disruption budget, {describe(pdb.resource_type, pdb.name, pdb.props)}, {why}, "
                        "so its pods can never be evicted and draining their node hangs. "
                        "Run more replicas than minAvailable (eureka.replicas > eureka.minAvailable), set maxUnavailable to at least 1, or drop the budget.",
                        r.urn,
                    )
            continue
        if not matching and not maybe:
            report(
                f"{who}: It runs {wl.replicas} replicas but no PodDisruptionBudget in its namespace selects its pods, so a node drain may evict all of them at once. "
                "Add a PodDisruptionBudget with the pod labels as selector and minAvailable below the replica count (eureka.minAvailable).",
                r.urn,
            )
        for pdb in matching:
            why = pdb_blocks(pdb.props, wl.replicas)
            if why:
                report(
                    f"{who}: Its disruption budget, {describe(pdb.resource_type, pdb.name, pdb.props)}, {why}, so no pod may ever be evicted and node drains hang. "
                    f"Set minAvailable below {wl.replicas} (or maxUnavailable to at least 1).",
                    r.urn,
                )


RULES = declared(__name__)

__all__ = ["RULES", "budgets_for", "pdb_blocks"]
