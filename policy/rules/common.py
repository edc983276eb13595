"""Shared building blocks for the vm-platform policy pack.

- `Rule` bundles a rule's metadata (name, description, severity, default enforcement level,
  settings schema, remediation) with one pure validator and turns it into a pulumi_policy Policy.
- Property access that tolerates missing keys and unknown values: during `pulumi preview` an
  input computed from another resource's output is unknown. pulumi_policy wraps props in a proxy
  that raises `UnknownValueError` when such a value is read (and the raw value is one of the
  `UNKNOWN_*_VALUE` sentinel strings). `get`/`seq`/`pairs` turn both into the `UNKNOWN` marker, so
  validators skip what they cannot know instead of crashing or reporting a false violation.
- Kubernetes helpers: the kind of a resource type, one place that knows where each workload kind
  keeps its pod spec and replica count, containers, label selectors, and resource references for
  violation messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationPolicy,
    Secret,
    Severity,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)

__all__ = [
    "ADVISORY", "MANDATORY", "DISABLED", "LOW", "MEDIUM", "HIGH", "CRITICAL", "UNKNOWN", "Config", "Rule", "Workload",
    "Validator", "WORKLOAD_KINDS", "containers", "describe", "get", "is_known", "is_secret", "k8s_kind", "k8s_api", "labels_match",
    "number", "pairs", "ref", "selector_matches", "seq", "show", "text", "workload",
]  # fmt: skip

ADVISORY, MANDATORY, DISABLED = EnforcementLevel.ADVISORY, EnforcementLevel.MANDATORY, EnforcementLevel.DISABLED
LOW, MEDIUM, HIGH, CRITICAL = Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL

Config = Mapping[str, Any]

# ---------------------------------------------------------------------------------------------
# Unknown values and safe property access


class _Unknown:
    """A value that cannot be known during preview. Falsy, so `if value:` never reports on it."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "<unknown during preview>"


UNKNOWN: Any = _Unknown()

_SENTINELS = frozenset(
    {UNKNOWN_BOOLEAN_VALUE, UNKNOWN_NUMBER_VALUE, UNKNOWN_STRING_VALUE, UNKNOWN_ARRAY_VALUE, UNKNOWN_ASSET_VALUE, UNKNOWN_ARCHIVE_VALUE, UNKNOWN_OBJECT_VALUE}
)
_SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


def _normalize(value: Any) -> Any:
    if isinstance(value, str) and value in _SENTINELS:
        return UNKNOWN
    if isinstance(value, Secret):
        return _normalize(value.value)
    if isinstance(value, Mapping) and _raw_secret(value):
        return _normalize(value.get("value"))
    return value


def _raw_secret(value: Mapping[str, Any]) -> bool:
    try:
        return value.get(_SECRET_SIG_KEY) == _SECRET_SIG
    except UnknownValueError:
        return False


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def is_known(value: Any) -> bool:
    return value is not UNKNOWN


def get(obj: Any, *path: str | int, default: Any = None) -> Any:
    """obj[path[0]][path[1]]...: `default` when a key is missing or a level has the wrong shape,
    `UNKNOWN` when any level is unknown during preview. Secret wrappers are unwrapped."""
    cur = _normalize(obj)
    for key in path:
        if cur is UNKNOWN:
            return UNKNOWN
        try:
            if isinstance(key, int):
                if not _is_list(cur) or not -len(cur) <= key < len(cur):
                    return default
                cur = cur[key]
            else:
                if not isinstance(cur, Mapping) or key not in cur:
                    return default
                cur = cur[key]
        except UnknownValueError:
            return UNKNOWN
        cur = _normalize(cur)
    return cur


def seq(obj: Any, *path: str | int) -> Any:
    """The list at path with each element normalized (unknown elements become UNKNOWN); [] when
    missing or not a list; UNKNOWN when the list itself is unknown."""
    value = get(obj, *path)
    if value is UNKNOWN:
        return UNKNOWN
    if not _is_list(value):
        return []
    out = []
    for i in range(len(value)):
        try:
            out.append(_normalize(value[i]))
        except UnknownValueError:
            out.append(UNKNOWN)
    return out


def pairs(obj: Any, *path: str | int) -> Any:
    """(key, value) pairs of the mapping at path (unknown values become UNKNOWN); [] when missing;
    UNKNOWN when the mapping itself is unknown."""
    value = get(obj, *path)
    if value is UNKNOWN:
        return UNKNOWN
    if not isinstance(value, Mapping):
        return []
    out = []
    for k in list(value):
        try:
            out.append((k, _normalize(value[k])))
        except UnknownValueError:
            out.append((k, UNKNOWN))
    return out


def text(obj: Any, *path: str | int) -> Any:
    """A string property: the string, '' when missing or not a string, UNKNOWN when unknown."""
    value = get(obj, *path)
    if value is UNKNOWN:
        return UNKNOWN
    return value if isinstance(value, str) else ""


def number(value: Any) -> float | None:
    """A number from a number or a numeric string (the engine sends every number as a float)."""
    if isinstance(value, bool) or value is UNKNOWN or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value.strip()):
        return float(value)
    return None


def show(value: Any) -> str:
    """A value for a message: 2.0 -> '2' (the engine sends every number as a float), strings quoted."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, str) else str(value)


def is_secret(obj: Any, *path: str | int) -> bool:
    """Whether the value at path is marked secret (a `Secret` or a raw secret envelope).

    pulumi_policy 1.21 unwraps secrets before validators see them, so this is true only when a
    future SDK (or another caller) keeps the marker; callers must not rely on it alone."""
    cur = obj
    for key in path:
        try:
            if isinstance(cur, Secret) or (isinstance(cur, Mapping) and _raw_secret(cur)):
                return True
            if isinstance(key, int):
                if not _is_list(cur) or not -len(cur) <= key < len(cur):
                    return False
            elif not isinstance(cur, Mapping) or key not in cur:
                return False
            cur = cur[key]
        except UnknownValueError:
            return False
    return isinstance(cur, Secret) or (isinstance(cur, Mapping) and _raw_secret(cur))


# ---------------------------------------------------------------------------------------------
# Rules


class _ArgsWithConfig(Protocol):
    def get_config(self) -> Mapping[str, Any]: ...


Validator = Callable[[Any, ReportViolation, Config], None]


@dataclass(frozen=True)
class Rule:
    """One policy: metadata plus a pure validator `(args, report, config) -> None`.

    `settings` is the JSON schema of each setting (each with a `default`); `config(args)` merges
    the defaults with the `--policy-pack-config` values. `stack=True` makes a stack policy.
    """

    name: str
    description: str
    severity: Severity
    enforcement: EnforcementLevel
    remediation: str
    validator: Validator
    settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    stack: bool = False
    tags: tuple[str, ...] = ()

    def config(self, args: _ArgsWithConfig) -> dict[str, Any]:
        out = {k: s["default"] for k, s in self.settings.items() if "default" in s}
        out.update(args.get_config() or {})
        return out

    def check(self, args: Any, report: ReportViolation) -> None:
        """What the engine calls. An unknown value read without a guard ends the check quietly:
        a preview cannot prove a violation from a value it does not know."""
        try:
            self.validator(args, report, self.config(args))
        except UnknownValueError:
            return

    def policy(self) -> Policy:
        schema = PolicyConfigSchema(properties={k: dict(v) for k, v in self.settings.items()}, required=list(self.required) or None)
        common: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "enforcement_level": self.enforcement,
            "config_schema": schema,
            "severity": self.severity,
            "tags": list(self.tags) or None,
            "remediation_steps": self.remediation,
        }
        if self.stack:
            return StackValidationPolicy(validate=self.check, **common)
        return ResourceValidationPolicy(validate=self.check, **common)


# ---------------------------------------------------------------------------------------------
# Kubernetes resources

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
