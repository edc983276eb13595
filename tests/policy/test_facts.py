"""The facts in policy/config/<stack>.json (registry, plain http, schedulable workers, load
balancer) are what the stack's parsed settings imply, and policy/facts.py keeps them so."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from policy import facts
from tests.policy.fakes import RULES
from tests.policy.stacks import lab_config, stack_config

STACKS = ("dev", "prod", "local")
REGENERATE = {
    "dev": f"{facts.REGENERATE} dev",
    "prod": f"{facts.REGENERATE} prod",
    "local": "python3 -m tools.lab up (the lab calls policy.facts.write_facts('local', <the config of its stack file>))",
}


@pytest.mark.parametrize("stack", STACKS)
def test_committed_config_holds_the_facts_of_the_stack(stack: str) -> None:
    problem = facts.stale(stack, stack_config(stack), command=REGENERATE[stack])
    assert problem is None, problem


def test_every_fact_is_a_setting_of_its_rule() -> None:
    for f in facts.FACTS:
        assert f.key in RULES[f.rule].settings, f"{f.rule}.{f.key}"


# MetalLB's namespace is exempt from exactly these rules, and only when the stack runs MetalLB.
METALLB_EXEMPT_RULES = ("no-host-namespaces", "container-capabilities", "run-as-non-root", "run-as-non-root-group", "min-replicas")


def _prod() -> dict[str, Any]:
    return copy.deepcopy(stack_config("prod"))


def test_each_fact_follows_its_setting() -> None:
    cfg = _prod()
    address = cfg["vm-platform:controlPlane"]["address"]
    workers = [w["name"] for w in cfg["vm-platform:workers"]]
    before = facts.facts(facts.settings_for("prod", cfg))
    assert before == {
        "registry-plain-http": {"allowPlainHttpRegistry": cfg["vm-platform:registry"]["allowPlainHttp"]},
        "image-registry-allowed": {"registry": f"{address}:{cfg['vm-platform:registry']['port']}"},
        "host-port-capacity": {"schedulableWorkers": len(workers)},
        "load-balancer-allowed": {"loadBalancerAvailable": cfg["vm-platform:network"]["loadBalancer"] != "none"},
        **{rule: {"exemptNamespaces": ["metallb-system"]} for rule in METALLB_EXEMPT_RULES},
    }
    assert cfg["vm-platform:network"]["loadBalancer"] == "metallb"
    cfg["vm-platform:registry"].update(port=5443, tls=False, allowPlainHttp=True)
    cfg["vm-platform:maintenance"]["nodes"] = workers[-1:]
    cfg["vm-platform:network"]["loadBalancer"] = "none"
    cfg["vm-platform:eureka"].update(serviceType="NodePort", replicas=2, minAvailable=1)
    after = facts.facts(facts.settings_for("prod", cfg))
    assert after == {
        "registry-plain-http": {"allowPlainHttpRegistry": True},
        "image-registry-allowed": {"registry": f"{address}:5443"},
        "host-port-capacity": {"schedulableWorkers": len(workers) - 1},
        "load-balancer-allowed": {"loadBalancerAvailable": False},
        **{rule: {"exemptNamespaces": []} for rule in METALLB_EXEMPT_RULES},
    }
    assert before["host-port-capacity"] != after["host-port-capacity"]


def test_the_lab_config_with_more_workers_changes_only_the_worker_count() -> None:
    one, three = (facts.facts(facts.settings_for("local", lab_config(n))) for n in (1, 3))
    assert three["host-port-capacity"]["schedulableWorkers"] == one["host-port-capacity"]["schedulableWorkers"] + 2
    assert {k: v for k, v in three.items() if k != "host-port-capacity"} == {k: v for k, v in one.items() if k != "host-port-capacity"}


def test_secure_values_and_paths_on_this_machine_do_not_matter(tmp_path: Path) -> None:
    """Secure values are ciphertext and archives or binaries may not exist yet: stand-ins."""
    cfg = stack_config("dev")
    cfg["vm-platform:sshPrivateKey"] = {"secure": "v1:AAAAciphertext"}
    cfg["vm-platform:registryPassword"] = {"secure": "v1:BBBBciphertext"}
    cfg["vm-platform:registry"] = {**cfg["vm-platform:registry"], "auth": True, "username": "platform"}
    cfg["vm-platform:binaries"] = {**cfg["vm-platform:binaries"], "source": "local", "localDir": str(tmp_path / "not-built-yet")}
    cfg["vm-platform:registry"]["images"] = [{**img, "archive": str(tmp_path / "missing.oci.tar")} for img in cfg["vm-platform:registry"]["images"]]
    cfg["kubernetes:context"] = "another namespace: ignored"
    assert facts.facts(facts.settings_for("dev", cfg)) == facts.facts(facts.settings_for("dev", stack_config("dev")))


def test_a_stale_config_is_reported_with_the_command_and_rewritten(tmp_path: Path) -> None:
    base = tmp_path / "dev.json"
    committed = json.loads((facts.CONFIG_DIR / "dev.json").read_text())
    committed["image-registry-allowed"]["registry"] = "192.0.2.1:5000"
    committed["min-replicas"]["minReplicas"] = 7  # a choice: the generator keeps it
    base.write_text(json.dumps(committed, indent=2) + "\n")
    problem = facts.stale("dev", base=base)
    assert problem is not None and f"{facts.REGENERATE} dev" in problem and '-    "registry": "192.0.2.1:5000"' in problem
    assert facts.write_facts("dev", base=base) is True
    assert facts.stale("dev", base=base) is None and facts.write_facts("dev", base=base) is False
    rewritten = json.loads(base.read_text())
    assert rewritten["image-registry-allowed"]["registry"] == facts.settings_for("dev").registry_host
    assert rewritten["min-replicas"]["minReplicas"] == 7


def test_cli_checks_and_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "local.json"
    stack_file = tmp_path / "Pulumi.local.yaml"
    committed = json.loads((facts.CONFIG_DIR / "local.json").read_text())
    workers = committed["host-port-capacity"]["schedulableWorkers"] + 1  # not what the committed facts say
    stack_file.write_text(json.dumps({"config": lab_config(workers)}))  # JSON is YAML
    out.write_text((facts.CONFIG_DIR / "local.json").read_text())
    assert facts.main(["--check", "local", "--stack-file", str(stack_file), "--out", str(out)]) == 1
    assert "Regenerate it" in capsys.readouterr().err
    assert facts.main(["local", "--stack-file", str(stack_file), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["host-port-capacity"]["schedulableWorkers"] == workers
    assert facts.main(["--check", "local", "--stack-file", str(stack_file), "--out", str(out)]) == 0


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("loadBalancer", "bogus", r"network\.loadBalancer:"),
        ("loadBalancerPool", "10.9.9.1-10.9.9.5", r"network\.loadBalancerPool:"),  # outside hostCidr: a cross-check
    ],
)
def test_a_config_that_does_not_parse_names_the_key(key: str, value: str, named: str) -> None:
    cfg = _prod()
    cfg["vm-platform:network"][key] = value
    with pytest.raises(facts.FactsError, match=named):
        facts.settings_for("prod", cfg)


def test_a_referenced_secret_that_is_not_in_the_stack_file_is_stood_in() -> None:
    """services.<n>.secretEnv may name a Secret set as secret config after the stack file is
    written, or stored whole as one secret: the facts still derive, and the same as with it."""
    from lab.stackfile import EXAMPLE_SECRET

    name, key = EXAMPLE_SECRET
    cfg = lab_config()
    assert "vm-platform:secrets" not in cfg
    assert any((svc or {}).get("secretEnv") for svc in cfg["vm-platform:services"].values())
    whole = {**cfg, "vm-platform:secrets": {"secure": "v1:CCCCciphertext"}}
    given = {**cfg, "vm-platform:secrets": {name: {"namespace": "platform", "data": {key: {"secure": "v1:DDDD"}}}}}
    derived = [facts.facts(facts.settings_for("local", c)) for c in (cfg, whole, given)]
    assert derived[0] == derived[1] == derived[2]


def test_a_malformed_secrets_value_is_not_replaced_by_the_stand_in() -> None:
    """The stand-in fills a missing Secret in; it does not hide a `secrets` that does not parse."""
    cfg = {**lab_config(), "vm-platform:secrets": ["example-greeting"]}
    with pytest.raises(facts.FactsError, match=r"secrets:"):
        facts.settings_for("local", cfg)
