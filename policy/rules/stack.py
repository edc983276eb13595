"""Stack-wide graph rules: relations between resources that no single resource shows.

service-account-exists: a pod's ServiceAccount is one the stack creates in its namespace (or one
the stack config names as created elsewhere); otherwise the pods are never created.

namespace-default-deny: every namespace of the stack has a NetworkPolicy that selects all of its
pods and denies what no other policy allows (advisory by default: the allow rules are the
workloads' to add).

pdb-for-replicated-workloads: every replicated Deployment/StatefulSet has a PodDisruptionBudget
in its namespace that selects its pods and still allows a voluntary disruption (otherwise a
node drain blocks forever: maintenance.nodes relies on drains finishing). A workload below
minReplicas needs no budget, but one that selects it must still allow a disruption:
`minAvailable: 1` over one replica blocks every drain of its node.
"""

from __future__ import annotations

import math
from typing import Any

from .common import ADVISORY, HIGH, MANDATORY, MEDIUM, UNKNOWN, Config, Report, declared, get, integer, number, rule, seq, show, strings
from .kube import EXEMPT_NAMESPACES, RELIABILITY_TAGS, SECURITY_TAGS, Workload, describe, k8s_kind, selector_matches, stack_workload
from .security import service_account
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
    if min_available is not None:
        n = _scaled(min_available, replicas)
        if n is not None and n >= replicas:
            return f"requires minAvailable {show(min_available)} of {replicas} replicas"
    if max_unavailable is not None:
        n = _scaled(max_unavailable, replicas)
        if n is not None and n <= 0:
            return f"allows maxUnavailable {show(max_unavailable)}"
    return None


def never_allows(pdb_props: Any) -> str | None:
    """Why the PDB allows no eviction whatever it selects (minAvailable 100%, maxUnavailable 0
    or less), or None."""
    min_available, max_unavailable = get(pdb_props, "spec", "minAvailable"), get(pdb_props, "spec", "maxUnavailable")
    if isinstance(min_available, str) and min_available.endswith("%") and (n := number(min_available[:-1])) is not None and n >= 100:
        return f"requires minAvailable {show(min_available)}"
    if max_unavailable is not None and max_unavailable is not UNKNOWN:
        n = number(max_unavailable[:-1] if isinstance(max_unavailable, str) and max_unavailable.endswith("%") else max_unavailable)
        if n is not None and n <= 0:
            return f"allows maxUnavailable {show(max_unavailable)}"
    return None


def protects_nothing(pdb_props: Any) -> bool:
    """A budget with neither minAvailable nor maxUnavailable: the disruption controller then wants
    0 healthy pods, so every pod may be evicted at once."""
    return get(pdb_props, "spec", "minAvailable") is None and get(pdb_props, "spec", "maxUnavailable") is None


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
            elif protects_nothing(pdb.props):
                report(
                    f"{who}: Its disruption budget, {describe(pdb.resource_type, pdb.name, pdb.props)}, sets neither minAvailable nor maxUnavailable, so it protects none of "
                    f"its {wl.replicas} replicas and a node drain may evict all of them at once. Set minAvailable below {wl.replicas} (or maxUnavailable to at least 1).",
                    r.urn,
                )
    # A budget that blocks whatever it selects, over pods of no workload here (or of kinds not judged above)
    workloads = [wl for r in args.resources if (wl := stack_workload(r.resource_type, r.props)) is not None]
    for pdb in pdbs:
        if get(pdb.props, "spec") is None or (why := never_allows(pdb.props)) is None:
            continue
        ns = get(pdb.props, "metadata", "namespace")
        selector = get(pdb.props, "spec", "selector", default={})
        if any(same_namespace(ns, wl.namespace) and selector_matches(selector, wl.pod_labels) is not False for wl in workloads):
            continue  # judged with its workload
        report(
            f"{describe(pdb.resource_type, pdb.name, pdb.props)}: It {why}, so whatever it selects, no pod may ever be evicted and drains of their nodes hang. "
            "Set maxUnavailable to at least 1 (or minAvailable below the replica count).",
            pdb.urn,
        )


def _known_text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


@rule(
    "service-account-exists",
    "Every pod's ServiceAccount (other than default) is created by the stack in the pod's namespace, or listed as created elsewhere.",
    HIGH,
    MANDATORY,
    "Create the ServiceAccount in the workload's namespace in the same program, or list it as namespace/name in externalServiceAccounts.",
    settings={"externalServiceAccounts": strings("ServiceAccounts created outside the stack, as namespace/name.", [])},
    stack=True,
    tags=SECURITY_TAGS,
)
def validate_service_accounts(args: Any, report: Report, cfg: Config) -> None:
    """Pods use ServiceAccounts the stack creates (or that are listed as external)."""
    accounts = {(ns, name) for a in cfg.get("externalServiceAccounts", []) if "/" in a for ns, name in [a.split("/", 1)]}
    for r in args.resources:
        if k8s_kind(r.resource_type) != "ServiceAccount":
            continue
        name, ns = get(r.props, "metadata", "name"), get(r.props, "metadata", "namespace", default="")
        if not _known_text(name) or ns is UNKNOWN:
            return  # an account not known yet (preview) may be any of them
        accounts.add((ns or "default", name))
    for r in args.resources:
        wl = stack_workload(r.resource_type, r.props)
        if wl is None or wl.namespace is UNKNOWN:
            continue
        name = service_account(wl.pod_spec)
        if not _known_text(name) or name == "default":
            continue  # unknown, or the default one (no-default-service-account speaks for that)
        ns = wl.namespace or "default"
        if (ns, name) not in accounts:
            report(
                f"{describe(r.resource_type, r.name, r.props)}: Its pods run as ServiceAccount {name}, which no resource of the stack creates in namespace {ns}, "
                f"so the API server refuses to create them. Create the ServiceAccount in {ns} (or list {ns}/{name} in externalServiceAccounts).",
                r.urn,
            )


def _selects_all(selector: Any) -> bool | None:
    if selector is UNKNOWN:
        return None
    labels, exprs = get(selector, "matchLabels"), get(selector, "matchExpressions")
    if UNKNOWN in (labels, exprs):
        return None
    return not labels and not exprs


def denies(policy_props: Any, direction: str) -> bool | None:
    """Whether a NetworkPolicy is a default deny for `direction` (Ingress or Egress): it selects
    every pod of its namespace, has the type, and no rule of that type. None: unknown."""
    spec = get(policy_props, "spec")
    if spec is None or spec is UNKNOWN:
        return None
    all_pods = _selects_all(get(spec, "podSelector", default={}))
    types, rules = seq(spec, "policyTypes"), get(spec, direction.lower())
    if all_pods is None or types is UNKNOWN or UNKNOWN in types or rules is UNKNOWN:
        return None
    if not types:  # unset: Ingress always, Egress when egress rules are given
        types = ["Ingress"] + (["Egress"] if get(spec, "egress") else [])
    return bool(all_pods and direction in types and not rules)


@rule(
    "namespace-default-deny",
    "Every namespace of the stack has a default-deny NetworkPolicy (all pods selected; no ingress, no egress allowed but by other policies).",
    MEDIUM,
    ADVISORY,
    "Add a NetworkPolicy per namespace with podSelector: {} and policyTypes [Ingress, Egress] and no rules, then one policy per workload that allows exactly its traffic (DNS to kube-dns, its clients, its peers).",
    settings={
        **EXEMPT_NAMESPACES,
        "policyTypes": strings("Directions a namespace must deny by default.", ["Ingress", "Egress"]),
    },
    stack=True,
    tags=SECURITY_TAGS,
)
def validate_default_deny(args: Any, report: Report, cfg: Config) -> None:
    """Each namespace the stack creates or runs pods in has a default-deny NetworkPolicy."""
    wanted = list(cfg.get("policyTypes", ["Ingress", "Egress"]))
    exempt = set(cfg.get("exemptNamespaces", []))
    where: dict[str, Any] = {}  # namespace -> the resource to report on (its Namespace, else its first workload)
    for r in args.resources:
        if k8s_kind(r.resource_type) == "Namespace":
            name = get(r.props, "metadata", "name")
            if not _known_text(name):
                continue
            where[name] = r
    for r in args.resources:
        wl = stack_workload(r.resource_type, r.props)
        if wl is None or wl.namespace is UNKNOWN:
            continue
        where.setdefault(wl.namespace or "default", r)
    denied: dict[str, set[str]] = {}
    for r in args.resources:
        if k8s_kind(r.resource_type) != "NetworkPolicy":
            continue
        ns = get(r.props, "metadata", "namespace", default="")
        if get(r.props, "spec") is None or ns is UNKNOWN:
            return  # a policy not known yet (preview) may be the one
        for direction in wanted:
            verdict = denies(r.props, direction)
            if verdict is None:
                return
            if verdict:
                denied.setdefault(ns or "default", set()).add(direction)
    for ns, r in where.items():
        missing = [d for d in wanted if d not in denied.get(ns, set())]
        if ns in exempt or not missing:
            continue
        report(
            f"{describe(r.resource_type, r.name, r.props)}: Namespace {ns} has no default-deny NetworkPolicy for {' and '.join(missing)}, so every pod in it accepts "
            f"(and opens) any connection that no policy restricts. Add a NetworkPolicy with podSelector: {{}}, policyTypes [{', '.join(wanted)}] and no rules, "
            "and allow each workload's own traffic in its own policy.",
            r.urn,
        )


RULES = declared(__name__)

__all__ = ["RULES", "budgets_for", "denies", "never_allows", "pdb_blocks"]
