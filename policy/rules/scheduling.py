"""Rules for how a workload's pods are placed and rolled out: enough replicas, spread over
nodes, a selector that owns the pod template, a rolling update, and host ports (off, or no more
one-per-node replicas than the stack has schedulable workers)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .common import ADVISORY, HIGH, LOW, MANDATORY, MEDIUM, UNKNOWN, Config, declared, get, integer, number, pairs, seq, strings
from .kube import (
    EXEMPT_NAMESPACES,
    HOSTNAME_KEY,
    RELIABILITY_TAGS,
    REPLICATED_KINDS,
    SECURITY_TAGS,
    Workload,
    containers,
    selector_matches,
    workload_rule,
)


@workload_rule(
    "min-replicas",
    "Replicated workloads (Deployment, StatefulSet, ReplicaSet) run at least minReplicas replicas.",
    MEDIUM,
    MANDATORY,
    "Set spec.replicas to at least the stack's minReplicas (eureka.replicas in the stack config).",
    kinds=REPLICATED_KINDS,
    settings={**EXEMPT_NAMESPACES, "minReplicas": integer("Minimum replicas of a replicated workload.", 2, minimum=1)},
    tags=RELIABILITY_TAGS,
)
def check_min_replicas(wl: Workload, cfg: Config) -> Iterator[str]:
    """Replicated workloads run at least minReplicas replicas."""
    want = int(cfg.get("minReplicas", 2))
    if wl.replicas is not UNKNOWN and wl.replicas is not None and wl.replicas < want:
        yield f"It runs {wl.replicas} replica(s), fewer than this stack's minimum of {want}. Set spec.replicas to at least {want}."


NAMESPACE_NAME_KEY = "kubernetes.io/metadata.name"


def _in_scope(term: Any, namespace: Any) -> bool | None:
    """Whether a pod (anti-)affinity term counts pods of `namespace`, the workload's own. The term
    covers the namespaces it lists plus those its namespaceSelector selects; with neither, only
    the pod's own; an empty selector selects all. A resource rule sees no Namespace's labels, so
    only a selector on kubernetes.io/metadata.name (which every namespace carries) is decided;
    None: cannot be known."""
    names, ns_selector = seq(term, "namespaces"), get(term, "namespaceSelector")
    if names is UNKNOWN or ns_selector is UNKNOWN:
        return None
    if not names and ns_selector is None:
        return True
    if not isinstance(namespace, str) or not namespace or UNKNOWN in names:
        return None
    if namespace in names:
        return True
    if ns_selector is None:
        return False
    keys = [k for k, _ in pairs(ns_selector, "matchLabels") or []] + [get(e, "key") for e in seq(ns_selector, "matchExpressions") or []]
    if any(k != NAMESPACE_NAME_KEY for k in keys):
        return None
    return selector_matches(ns_selector, {NAMESPACE_NAME_KEY: namespace})


def _selects_own_pods(term: Any, wl: Workload) -> bool | None:
    """Whether a topology spread constraint or pod anti-affinity term selects the workload's pods."""
    matches = selector_matches(get(term, "labelSelector", default={}), wl.pod_labels)
    if matches is False:
        return False
    scope = _in_scope(term, wl.namespace)
    if scope is False:
        return False
    return True if matches and scope else None


def _spreads_over_hosts(wl: Workload, keys: list[str]) -> bool | None:
    """Whether topology spread or pod anti-affinity on one of `keys` selects the pods themselves."""
    result: bool | None = False
    tsc = seq(wl.pod_spec, "topologySpreadConstraints")
    anti = get(wl.pod_spec, "affinity", "podAntiAffinity")
    required, preferred = seq(anti, "requiredDuringSchedulingIgnoredDuringExecution"), seq(anti, "preferredDuringSchedulingIgnoredDuringExecution")
    if UNKNOWN in (tsc, anti, required, preferred):
        return None
    terms = [*required, *(get(t, "podAffinityTerm") for t in preferred)]
    for term in [*tsc, *terms]:
        key = get(term, "topologyKey")
        if key is UNKNOWN:
            result = None
        if key not in keys:
            continue
        matches = _selects_own_pods(term, wl)
        if matches:
            return True
        if matches is None:
            result = None
    return result


@workload_rule(
    "replica-spread",
    "Workloads with more than one replica spread them over nodes (pod anti-affinity or topology spread on the pod labels).",
    MEDIUM,
    MANDATORY,
    "Add a topologySpreadConstraint with topologyKey kubernetes.io/hostname and labelSelector = the pod labels (ScheduleAnyway on small clusters), or a preferred podAntiAffinity.",
    kinds=REPLICATED_KINDS,
    settings={"topologyKeys": strings("Topology keys that count as spreading.", [HOSTNAME_KEY, "topology.kubernetes.io/zone"])},
    tags=RELIABILITY_TAGS,
)
def check_replica_spread(wl: Workload, cfg: Config) -> Iterator[str]:
    """Replicated workloads spread their pods over nodes (anti-affinity or topology spread)."""
    if wl.replicas is UNKNOWN or wl.replicas is None or wl.replicas < 2:
        return
    keys = cfg.get("topologyKeys", [HOSTNAME_KEY, "topology.kubernetes.io/zone"])
    if _spreads_over_hosts(wl, keys) is False:
        yield (
            f"Its {wl.replicas} replicas may all land on one node: no podAntiAffinity or topologySpreadConstraints on {' or '.join(keys)} selects its pods. "
            f"Add a topologySpreadConstraint (topologyKey {HOSTNAME_KEY}, labelSelector = the pod labels) or a preferred podAntiAffinity."
        )


@workload_rule(
    "selector-matches-template",
    "A workload's spec.selector selects its own pod template labels.",
    HIGH,
    MANDATORY,
    "Make spec.selector.matchLabels a subset of spec.template.metadata.labels.",
    kinds=frozenset({"Deployment", "StatefulSet", "ReplicaSet", "DaemonSet"}),
)
def check_selector_matches_template(wl: Workload, cfg: Config) -> Iterator[str]:
    """spec.selector selects the pod template's labels."""
    if wl.selector is None:
        yield "It has no spec.selector. Set spec.selector.matchLabels to the pod template's labels."
        return
    if selector_matches(wl.selector, wl.pod_labels) is False:
        yield "Its spec.selector does not match the pod template's labels, so it would never own its own pods. Make spec.selector.matchLabels a subset of spec.template.metadata.labels."


@workload_rule(
    "rolling-update-strategy",
    "Deployments declare a RollingUpdate strategy; StatefulSets and DaemonSets do not use OnDelete.",
    LOW,
    ADVISORY,
    "Set spec.strategy: {type: RollingUpdate, rollingUpdate: {maxSurge, maxUnavailable}} on Deployments.",
    kinds=frozenset({"Deployment", "StatefulSet", "DaemonSet"}),
    tags=RELIABILITY_TAGS,
)
def check_rolling_update(wl: Workload, cfg: Config) -> Iterator[str]:
    """Deployments declare a RollingUpdate strategy; StatefulSets and DaemonSets do not use OnDelete."""
    if wl.kind == "Deployment":
        stype = get(wl.props, "spec", "strategy", "type")
        if stype is UNKNOWN or stype == "RollingUpdate":
            return
        state = f"uses the {stype} strategy, which stops every pod before starting new ones" if stype else "declares no spec.strategy"
        yield f"It {state}. Set spec.strategy.type to RollingUpdate with explicit maxSurge and maxUnavailable."
    elif get(wl.props, "spec", "updateStrategy", "type") == "OnDelete":
        yield "It uses the OnDelete update strategy, so changes roll out only when someone deletes pods. Set spec.updateStrategy.type to RollingUpdate."


def host_ports(c: Any) -> list[int]:
    ports = seq(c, "ports")
    return [int(n) for n in (number(get(p, "hostPort")) for p in ([] if ports is UNKNOWN else ports)) if n]


@workload_rule(
    "no-host-ports",
    "Containers do not bind hostPorts (except allowed ones).",
    MEDIUM,
    MANDATORY,
    "Remove ports[].hostPort and reach the pods through a Service (ClusterIP, NodePort or LoadBalancer).",
    settings={
        **EXEMPT_NAMESPACES,
        "allowedHostPorts": {"type": "array", "items": {"type": "integer"}, "default": [], "description": "hostPorts that are allowed."},
    },
    tags=SECURITY_TAGS,
)
def check_host_ports(wl: Workload, cfg: Config) -> Iterator[str]:
    """No hostPort (except allowed ports)."""
    allowed = {int(p) for p in cfg.get("allowedHostPorts", []) if number(p) is not None}
    for label, c in containers(wl.pod_spec):
        for port in host_ports(c):
            if port not in allowed:
                yield f"{label.capitalize()} binds hostPort {port} on the node. Remove hostPort and reach the pod through a Service."


def _required_host_anti_affinity(wl: Workload) -> bool:
    for term in seq(get(wl.pod_spec, "affinity", "podAntiAffinity", default={}), "requiredDuringSchedulingIgnoredDuringExecution") or []:
        if get(term, "topologyKey") == HOSTNAME_KEY and _selects_own_pods(term, wl):
            return True
    return False


def _int_or_percent(value: Any, total: int, round_up: bool) -> int | None:
    if isinstance(value, str) and value.endswith("%") and number(value[:-1]) is not None:
        share = float(value[:-1]) * total / 100
        return int(-(-share // 1)) if round_up else int(share)
    n = number(value)
    return None if n is None else int(n)


@workload_rule(
    "host-port-capacity",
    "A workload with hostPort (or required pod anti-affinity on hostname) asks for no more replicas than the stack has schedulable workers, and can still roll out.",
    HIGH,
    MANDATORY,
    "Drop the hostPort and use a Service (the platform's default, eureka.hostPort: 0), or keep replicas <= schedulable workers with maxUnavailable >= 1.",
    settings={"schedulableWorkers": integer("Workers that accept pods (not cordoned).", 1, minimum=0)},
    tags=RELIABILITY_TAGS,
)
def check_host_port_capacity(wl: Workload, cfg: Config) -> Iterator[str]:
    """With hostPort (or required anti-affinity on hostname) at most one replica fits per node."""
    if wl.replicas is UNKNOWN or wl.replicas is None:
        return
    one_per_node = [f"hostPort {p}" for _, c in containers(wl.pod_spec) for p in host_ports(c)]
    if _required_host_anti_affinity(wl):
        one_per_node.append(f"required podAntiAffinity on {HOSTNAME_KEY}")
    if not one_per_node:
        return
    workers = int(cfg.get("schedulableWorkers", 1))
    why = " and ".join(one_per_node)
    if wl.replicas > workers:
        yield (
            f"It asks for {wl.replicas} replicas with {why}, which allows one pod per node, but this stack has {workers} schedulable worker(s), "
            f"so {wl.replicas - workers} pod(s) stay Pending. Remove the hostPort/anti-affinity (use a Service) or lower spec.replicas to {workers}."
        )
    elif wl.kind == "Deployment" and wl.replicas == workers and get(wl.props, "spec", "strategy", "type") in (None, "RollingUpdate"):
        max_unavailable = _int_or_percent(get(wl.props, "spec", "strategy", "rollingUpdate", "maxUnavailable", default="25%"), workers, round_up=False)
        if max_unavailable == 0:
            yield (
                f"It runs {wl.replicas} replicas with {why} on {workers} schedulable worker(s) and a rolling update with maxUnavailable 0, "
                "so the surge pod of every rollout finds no free node and the rollout never finishes. Set maxUnavailable to 1 (and maxSurge to 0) or remove the hostPort."
            )


RULES = declared(__name__)
