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


def case(
    id: str, rule: str, resource_type: str, props: Any, *expect: str, config: Mapping[str, Any] | None = None, secret_outputs: tuple[str, ...] = ()
) -> Case:
    return Case(id, rule, resource_type, props, tuple(expect), dict(config or {}), secret_outputs)


def violations(c: Case, props: Any = None) -> list[str]:
    from tests.policy.fakes import run, run_stack

    props = c.props if props is None else props
    if c.resource_type == "stack":
        return run_stack(c.rule, props, c.config)
    return run(c.rule, c.resource_type, props, c.config, secret_outputs=c.secret_outputs)


def assert_case(c: Case) -> None:
    got = violations(c)
    assert len(got) == len(c.expect), f"{c.id}: expected {len(c.expect)} violation(s) {c.expect}, got {got}"
    for want, message in zip(c.expect, got, strict=True):
        assert want in message, f"{c.id}: expected {want!r} in {message!r}"
        assert message.rstrip().endswith("."), f"{c.id}: not a full sentence: {message!r}"
