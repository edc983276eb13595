"""The pack as a whole: rule metadata, the Policy objects handed to the engine, the per-stack
config files (valid against each rule's schema) and the README table."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, Severity, StackValidationPolicy
from rules import ALL_RULES

from tests.policy.fakes import RULES
from tests.unit.harness import ROOT

POLICY = ROOT / "policy"
STACKS = ("dev", "prod", "local")
JSON_TYPES: dict[str, Any] = {"string": str, "boolean": bool, "integer": (int, float), "number": (int, float), "array": list, "object": dict}


def test_rule_names_are_unique_kebab_case() -> None:
    names = [r.name for r in ALL_RULES]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", n) for n in names)


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.name)
def test_rule_metadata(rule: Any) -> None:
    assert rule.description.endswith(".") and rule.remediation.strip()
    assert isinstance(rule.severity, Severity) and rule.enforcement in (EnforcementLevel.ADVISORY, EnforcementLevel.MANDATORY)
    assert rule.validator.__doc__, "one documented validator per rule"
    for key, schema in rule.settings.items():
        assert schema["type"] in JSON_TYPES and "default" in schema and schema.get("description"), key
        assert isinstance(schema["default"], JSON_TYPES[schema["type"]]), key
    policy = rule.policy()
    assert isinstance(policy, StackValidationPolicy if rule.stack else ResourceValidationPolicy)
    assert (policy.name, policy.severity, policy.remediation_steps, policy.enforcement_level) == (rule.name, rule.severity, rule.remediation, rule.enforcement)
    assert policy.config_schema is not None and set(policy.config_schema.properties) == set(rule.settings)


def test_main_only_assembles_the_pack() -> None:
    main = (POLICY / "__main__.py").read_text()
    assert 'name="vm-platform-policies"' in main and "ALL_RULES" in main
    assert "def " not in main


@pytest.mark.parametrize("stack", STACKS)
def test_stack_config_is_valid(stack: str) -> None:
    config = json.loads((POLICY / "config" / f"{stack}.json").read_text())
    assert set(config) == set(RULES), "every rule has an explicit level per stack"
    for name, values in config.items():
        rule = RULES[name]
        assert values["enforcementLevel"] in ("advisory", "mandatory", "disabled")
        for key, value in values.items():
            if key == "enforcementLevel":
                continue
            assert key in rule.settings, f"{stack}: {name}.{key} is not a setting"
            assert isinstance(value, JSON_TYPES[rule.settings[key]["type"]]), f"{stack}: {name}.{key}"
        for key in rule.required:
            assert values.get(key), f"{stack}: {name} needs {key}"


# Security rules that are advisory in every stack, and why (README.md, "Choices").
ADVISORY_SECURITY = {
    "namespace-default-deny": "advisory by default: the allow rules are each workload's to write",
}


def test_stack_choices() -> None:
    """The hand-written choices (facts are checked against the stack files in test_facts.py)."""
    configs = {s: json.loads((POLICY / "config" / f"{s}.json").read_text()) for s in STACKS}
    dev, prod = configs["dev"], configs["prod"]
    assert (dev["min-replicas"]["minReplicas"], prod["min-replicas"]["minReplicas"]) == (2, 3)
    security = [r.name for r in ALL_RULES if "security" in r.tags]
    assert set(ADVISORY_SECURITY) <= set(security)
    for stack in configs.values():
        assert all(stack[name]["enforcementLevel"] == "mandatory" for name in security if name not in ADVISORY_SECURITY)
        assert all(stack[name]["enforcementLevel"] == "advisory" for name in ADVISORY_SECURITY)
        if not stack["load-balancer-allowed"]["loadBalancerAvailable"]:
            assert stack["no-node-port"]["allowNodePort"] is True, "without a load balancer a node port is the way in"
    assert [n for n, v in prod.items() if v["enforcementLevel"] != "mandatory" and n not in ADVISORY_SECURITY] == ["rolling-update-strategy"]


def test_pulumi_policy_yaml() -> None:
    text = (POLICY / "PulumiPolicy.yaml").read_text()
    assert "name: python" in text and "virtualenv: venv" in text and "description:" in text


def test_readme_lists_every_rule_with_its_levels() -> None:
    readme = (POLICY / "README.md").read_text()
    configs = {s: json.loads((POLICY / "config" / f"{s}.json").read_text()) for s in STACKS}
    for rule in ALL_RULES:
        row = next((line for line in readme.splitlines() if line.startswith(f"| `{rule.name}`")), None)
        assert row is not None, rule.name
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[2] == rule.severity.value, rule.name
        assert cells[3:6] == [configs[s][rule.name]["enforcementLevel"] for s in STACKS], rule.name
