"""Shared case type for the table-driven rule tests: one row = one resource (or stack), one
rule, the config, and what must be reported ([] = nothing)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Case:
    id: str
    rule: str
    resource_type: str  # "stack" for stack rules (props is then a list of resources)
    props: Any
    expect: tuple[str, ...] = ()
    """Substrings, one per expected violation, in report order. Empty: no violation."""
    config: Mapping[str, Any] = field(default_factory=dict)
    secret_outputs: tuple[str, ...] = ()


def case(id: str, rule: str, resource_type: str, props: Any, *expect: str, config: Mapping[str, Any] | None = None, secret_outputs: tuple[str, ...] = ()) -> Case:
    return Case(id, rule, resource_type, props, tuple(expect), dict(config or {}), secret_outputs)
