"""Kubernetes helpers for the rules: the kind of a resource type, one place that knows where each
workload kind keeps its pod spec and replica count, containers, label selectors, resource
references for violation messages, and `@workload_rule(...)`, which declares a rule whose check
looks at one workload at a time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from pulumi_policy import EnforcementLevel, Severity

from .common import UNKNOWN, Config, Report, Rule, Schema, Validator, declare, get, number, pairs, seq

__all__ = [
    "EXEMPT_NAMESPACES", "HOSTNAME_KEY", "LONG_RUNNING_KINDS", "REPLICATED_KINDS", "WORKLOAD_KINDS", "Workload", "WorkloadCheck",
    "containers", "describe", "k8s_api", "k8s_kind", "labels_match", "on_workloads", "ref", "security_context", "selector_matches",
    "stack_workload", "workload", "workload_rule",
]  # fmt: skip

K8S_TAGS = ("kubernetes",)
SECURITY_TAGS = ("kubernetes", "security")
RELIABILITY_TAGS = ("kubernetes", "reliability")

_K8S_TYPE = re.compile(r"^kubernetes:(?P<group>[^/:]+)/(?P<version>[^:]+):(?P<kind>[A-Za-z0-9]+)$")


def k8s_api(resource_type: str) -> tuple[str, str, str] | None:
    """('apps', 'v1', 'Deployment') for kubernetes:apps/v1:Deployment; None for other types and
    for Patch/List variants (partial objects the rules must not judge as whole ones)."""
    m = _K8S_TYPE.match(resource_type)
    if not m or m["kind"].endswith(("Patch", "List")):
        return None
    return m["group"], m["version"], m["kind"]


def k8s_kind(resource_type: str) -> str | None:
    api = k8s_api(resource_type)
    return api[2] if api else None


def describe(resource_type: str, name: str, props: Any) -> str:
    """'Deployment platform/eurekaserver (kubernetes:apps/v1:Deployment "eureka-app-deployment")'."""
    kind = k8s_kind(resource_type)
    if kind is None:
        return f'{resource_type} "{name}"'
    meta_name = get(props, "metadata", "name")
    ns = get(props, "metadata", "namespace")
    obj = meta_name if isinstance(meta_name, str) and meta_name else name
    if isinstance(ns, str) and ns:
        obj = f"{ns}/{obj}"
    return f'{kind} {obj} ({resource_type} "{name}")'


def ref(args: Any) -> str:
    return describe(args.resource_type, args.name, args.props)


@dataclass(frozen=True)
class Workload:
    """Where a workload kind keeps its pods: `replicas` is None for one-per-node (DaemonSet) and
    UNKNOWN when it cannot be known yet; labels/selector may be UNKNOWN too."""

    kind: str
    pod_spec: Any
    pod_labels: Any
    replicas: Any
    selector: Any
    namespace: Any
    props: Any


# kind -> (path to the pod template, path to the replica count, default replicas)
_WORKLOAD_SHAPES: dict[str, tuple[tuple[str, ...], tuple[str, ...] | None, int | None]] = {
    "Deployment": (("spec", "template"), ("spec", "replicas"), 1),
    "StatefulSet": (("spec", "template"), ("spec", "replicas"), 1),
    "ReplicaSet": (("spec", "template"), ("spec", "replicas"), 1),
    "ReplicationController": (("spec", "template"), ("spec", "replicas"), 1),
    "DaemonSet": (("spec", "template"), None, None),
    "Job": (("spec", "template"), ("spec", "parallelism"), 1),
    "CronJob": (("spec", "jobTemplate", "spec", "template"), ("spec", "jobTemplate", "spec", "parallelism"), 1),
    "Pod": ((), None, 1),
}
WORKLOAD_KINDS = frozenset(_WORKLOAD_SHAPES)


def workload(resource_type: str, props: Any) -> Workload | None:
    """The pod spec, pod labels, replicas and selector of any workload kind; None for others."""
    kind = k8s_kind(resource_type)
    if kind not in _WORKLOAD_SHAPES:
        return None
    template_path, replicas_path, default_replicas = _WORKLOAD_SHAPES[kind]
    template = get(props, *template_path) if template_path else props
    replicas: Any = default_replicas
    if replicas_path is not None:
        raw = get(props, *replicas_path)
        replicas = UNKNOWN if raw is UNKNOWN else (int(n) if (n := number(raw)) is not None else default_replicas)
    selector = None if kind == "Pod" else get(props, "spec", "selector")
    if kind == "CronJob":
        selector = get(props, "spec", "jobTemplate", "spec", "selector")
    return Workload(
        kind=kind,
        pod_spec=get(template, "spec", default={}),
        pod_labels=get(template, "metadata", "labels", default={}),
        replicas=replicas,
        selector=selector,
        namespace=get(props, "metadata", "namespace"),
        props=props,
    )


def stack_workload(resource_type: str, props: Any) -> Workload | None:
    """`workload` for a stack rule, which sees outputs: while the Kubernetes provider is not
    configured yet (a preview before the cluster exists: its kubeconfig comes from the hosts) an
    object's outputs are {}. That is no workload of 1 replica with no labels but one whose every
    part is unknown."""
    wl = workload(resource_type, props)
    if wl is None or get(props, "spec") is not None:
        return wl
    return replace(wl, pod_spec=UNKNOWN, pod_labels=UNKNOWN, replicas=UNKNOWN, selector=UNKNOWN, namespace=UNKNOWN)


def containers(pod_spec: Any, *, init: bool = True) -> Iterator[tuple[str, Any]]:
    """('container "app"', container) for each known container (init and ephemeral ones too
    unless init=False)."""
    groups = [("containers", "container")]
    if init:
        groups += [("initContainers", "init container"), ("ephemeralContainers", "ephemeral container")]
    for key, label in groups:
        items = seq(pod_spec, key)
        if items is UNKNOWN:
            continue
        for c in items:
            if c is UNKNOWN or not isinstance(c, Mapping):
                continue
            cname = get(c, "name")
            yield f'{label} "{cname if isinstance(cname, str) else "?"}"', c


def labels_match(selector: Any, labels: Any) -> bool | None:
    """Whether a plain label map selector (a Service's) selects pods with `labels`. None: unknown."""
    sel_pairs, label_pairs = pairs(selector), pairs(labels)
    if sel_pairs is UNKNOWN or label_pairs is UNKNOWN:
        return None
    have = dict(label_pairs)
    result: bool | None = True
    for k, v in sel_pairs:
        if v is UNKNOWN or have.get(k, "") is UNKNOWN:
            result = None
        elif have.get(k) != v:
            return False
    return result


def selector_matches(selector: Any, labels: Any) -> bool | None:
    """Whether a LabelSelector ({matchLabels, matchExpressions}) selects `labels`. None: unknown.
    An empty selector selects everything."""
    result = labels_match(get(selector, "matchLabels", default={}), labels)
    if result is False:
        return False
    exprs = seq(selector, "matchExpressions")
    label_pairs = pairs(labels)
    if exprs is UNKNOWN or label_pairs is UNKNOWN:
        return None
    have = dict(label_pairs)
    for e in exprs:
        key, op, values = get(e, "key"), get(e, "operator"), seq(e, "values")
        if UNKNOWN in (key, op) or values is UNKNOWN:
            result = None
            continue
        present = key in have
        ok = {
            "In": present and have.get(key) in values,
            "NotIn": not present or have.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }.get(op, True)
        if not ok:
            return False
    return result


def security_context(container: Any, pod_spec: Any, key: str) -> Any:
    """A security-context field with the container's value overriding the pod's."""
    value = get(container, "securityContext", key)
    return get(pod_spec, "securityContext", key) if value is None else value


# ---------------------------------------------------------------------------------------------
# Rules over one workload

REPLICATED_KINDS = frozenset({"Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"})
LONG_RUNNING_KINDS = REPLICATED_KINDS | {"DaemonSet", "Pod"}
HOSTNAME_KEY = "kubernetes.io/hostname"

EXEMPT_NAMESPACES: Schema = {
    "exemptNamespaces": {
        "type": "array",
        "items": {"type": "string"},
        "default": [],
        "description": "Namespaces where this rule does not apply (e.g. kube-system for node agents).",
    }
}

WorkloadCheck = Callable[[Workload, Config], Iterable[str]]


def on_workloads(check: WorkloadCheck, kinds: frozenset[str] | None = None) -> Validator:
    """A validator from a check over one workload: it finds the workload of any kind (or of
    `kinds`), skips exempt namespaces and names the resource in front of each problem."""

    def validate(args: Any, report: Report, cfg: Config) -> None:
        wl = workload(args.resource_type, args.props)
        if wl is None or (kinds is not None and wl.kind not in kinds):
            return
        if isinstance(wl.namespace, str) and wl.namespace in cfg.get("exemptNamespaces", ()):
            return
        for problem in check(wl, cfg):
            report(f"{ref(args)}: {problem}")

    validate.__name__ = check.__name__
    validate.__doc__ = check.__doc__
    return validate


def workload_rule(
    name: str,
    description: str,
    severity: Severity,
    enforcement: EnforcementLevel,
    remediation: str,
    *,
    kinds: frozenset[str] | None = None,
    settings: Schema | None = None,
    required: tuple[str, ...] = (),
    tags: tuple[str, ...] = K8S_TAGS,
) -> Callable[[WorkloadCheck], WorkloadCheck]:
    """Declares the rule whose check is the decorated generator `(workload, config) -> problems`
    (one full sentence each), applied to workloads of `kinds` (default: every kind)."""

    def register(check: WorkloadCheck) -> WorkloadCheck:
        validator = on_workloads(check, kinds)
        declare(check.__module__, Rule(name, description, severity, enforcement, remediation, validator, dict(settings or {}), required, False, tags))
        return check

    return register
