"""Shared building blocks for the vm-platform policy pack.

- Property access that tolerates missing keys and unknown values: during `pulumi preview` an
  input computed from another resource's output is unknown. pulumi_policy wraps props in a proxy
  that raises `UnknownValueError` when such a value is read (and the raw value is one of the
  `UNKNOWN_*_VALUE` sentinel strings). `get`/`seq`/`pairs` turn both into the `UNKNOWN` marker, so
  validators skip what they cannot know instead of crashing or reporting a false violation.
- `Rule` bundles a rule's metadata (name, description, severity, default enforcement level,
  settings schema, remediation) with one pure validator and turns it into a pulumi_policy Policy.
  `@rule(...)` declares it on top of the validator, so the metadata sits with the code it
  describes; `declared(__name__)` lists a module's rules in the order they are written.
- Schema helpers for rule settings (`flag`, `strings`, `integer`).

Kubernetes helpers (kinds, workloads, selectors) are in `kube`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

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
    "ADVISORY", "MANDATORY", "DISABLED", "LOW", "MEDIUM", "HIGH", "CRITICAL", "UNKNOWN", "Config", "Report", "Rule", "Validator",
    "declare", "declared", "flag", "get", "integer", "is_known", "is_secret", "number", "pairs", "rule", "seq", "show", "strings", "text",
]  # fmt: skip

ADVISORY, MANDATORY, DISABLED = EnforcementLevel.ADVISORY, EnforcementLevel.MANDATORY, EnforcementLevel.DISABLED
LOW, MEDIUM, HIGH, CRITICAL = Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL

Config = Mapping[str, Any]
Report = Callable[..., None]

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
Schema = Mapping[str, Mapping[str, Any]]


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
    settings: Schema = field(default_factory=dict)
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


# module name -> rule name -> Rule, in declaration order (a re-import replaces, never duplicates)
_DECLARED: dict[str, dict[str, Rule]] = {}

F = TypeVar("F", bound=Callable[..., Any])


def declare(module: str, r: Rule) -> None:
    """Adds a rule to its module's list (what `rule` and `kube.workload_rule` call)."""
    _DECLARED.setdefault(module, {})[r.name] = r


def declared(module: str) -> list[Rule]:
    """The rules declared in `module`, in the order they are written: the module's RULES."""
    return list(_DECLARED.get(module, {}).values())


def rule(
    name: str,
    description: str,
    severity: Severity,
    enforcement: EnforcementLevel,
    remediation: str,
    *,
    settings: Schema | None = None,
    required: tuple[str, ...] = (),
    stack: bool = False,
    tags: tuple[str, ...] = (),
) -> Callable[[F], F]:
    """Declares the rule whose validator is the decorated function `(args, report, config)`.

    The function is returned unchanged, so tests and other rules can still call it directly."""

    def register(validator: F) -> F:
        declare(validator.__module__, Rule(name, description, severity, enforcement, remediation, validator, dict(settings or {}), required, stack, tags))
        return validator

    return register


def flag(description: str, default: bool) -> dict[str, Any]:
    """The schema of a boolean setting."""
    return {"type": "boolean", "default": default, "description": description}


def strings(description: str, default: list[str]) -> dict[str, Any]:
    """The schema of a list-of-strings setting."""
    return {"type": "array", "items": {"type": "string"}, "default": default, "description": description}


def integer(description: str, default: int, minimum: int) -> dict[str, Any]:
    """The schema of an integer setting."""
    return {"type": "integer", "minimum": minimum, "default": default, "description": description}
