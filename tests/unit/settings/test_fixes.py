"""A printed fix never produces a new error: applied as pulumi would apply it, the problem goes
and no other appears. When no value works, the fix names the key and leaves `<value>`."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import pytest

from components.settings import ConfigError, parse_settings
from tests.unit.settings.helpers import problems_for, run_fix, setp, stack_raw
from tests.unit.settings.test_blame import WRONG_KEY
from tests.unit.settings.test_values import BAD_CONFIGS


def _keys(problems: list[Any], renumber: bool) -> set[tuple[str, str]]:
    return {(re.sub(r"\[\d+\]", "[]", p.path) if renumber else p.path, p.expected) for p in problems}


def _after(raw: dict[str, Any], stack: str) -> list[Any]:
    try:
        parse_settings(raw, stack)
    except ConfigError as e:
        return e.problems
    return []


CASES = [(i, m, "dev") for i, m, _ in BAD_CONFIGS] + [(i, m, s) for i, s, m, *_ in WRONG_KEY]


@pytest.mark.parametrize("mutate,stack", [pytest.param(m, s, id=i) for i, m, s in CASES])
def test_every_printed_fix_fixes_its_problem_and_breaks_nothing(mutate, stack):
    raw = stack_raw(stack)
    mutate(raw)
    problems = problems_for(lambda r: (r.clear(), r.update(raw)), stack)
    checked = 0
    for p in problems:
        if "<value>" in p.fix or "--secret" in p.fix:
            continue
        renumber = bool(re.search(r"rm --path \S*\[\d+\]", p.fix))
        after = _after(run_fix(stack_raw_like(raw), p.fix), stack)
        before = _keys(problems, renumber) - _keys([p], renumber)
        assert _keys([p], renumber).isdisjoint(_keys(after, renumber)), f"{p}\nstill there after the fix"
        assert _keys(after, renumber) <= before, f"{p}\nthe fix adds: " + "\n".join(str(q) for q in after if _keys([q], renumber) - before)
        checked += 1
    assert checked or all("<value>" in p.fix or "--secret" in p.fix for p in problems)


def stack_raw_like(raw: dict[str, Any]) -> dict[str, Any]:
    """A deep copy (Secrets stay the same objects)."""
    if isinstance(raw, dict):
        return {k: stack_raw_like(v) for k, v in raw.items()}
    if isinstance(raw, list):
        return [stack_raw_like(v) for v in raw]
    return raw


def only_fix(mutate: Any, path: str, stack: str = "dev") -> str:
    problems = [p for p in problems_for(mutate, stack) if p.path == path]
    assert len(problems) == 1, problems
    return problems[0].fix


def fixed_value(fix: str, path: str) -> str:
    m = re.search(r"pulumi config set --path '?" + re.escape(path) + r"'? (\S+)", fix)
    assert m, fix
    return m.group(1)


def test_a_duplicate_address_fix_stays_inside_the_host_network():
    fix = only_fix(setp("workers.1.address", "192.168.227.11"), "workers[1].address", "prod")
    address = ipaddress.IPv4Address(fixed_value(fix, "workers[1].address"))
    assert address in ipaddress.IPv4Network("192.168.227.0/24")
    assert str(address) not in ("192.168.227.10", "192.168.227.11", "192.168.227.12", "192.168.227.13")


def test_a_service_range_fix_keeps_cluster_dns_inside():
    def mutate(raw: dict[str, Any]) -> None:
        raw["network"].update(serviceCidr="172.30.128.0/17", clusterDns="10.96.0.10")

    fix = only_fix(mutate, "network.serviceCidr")
    assert ipaddress.IPv4Address("10.96.0.10") in ipaddress.IPv4Network(fixed_value(fix, "network.serviceCidr")), fix


def test_a_pod_range_fix_overlaps_no_other_range():
    def mutate(raw: dict[str, Any]) -> None:
        raw["network"].update(podCidr="192.168.0.0/16", serviceCidr="172.30.0.0/16", clusterDns="172.30.0.10")

    pod = ipaddress.IPv4Network(fixed_value(only_fix(mutate, "network.podCidr"), "network.podCidr"))
    assert not pod.overlaps(ipaddress.IPv4Network("172.30.0.0/16")) and not pod.overlaps(ipaddress.IPv4Network("192.168.226.0/24"))


def test_an_enum_fix_is_the_near_miss_typed():
    assert only_fix(setp("eureka.serviceType", "LoadBalncer"), "eureka.serviceType") == "pulumi config set --path eureka.serviceType LoadBalancer"
    assert only_fix(setp("network.backend", "host_gw"), "network.backend") == "pulumi config set --path network.backend host-gw"


def test_an_enum_near_miss_that_another_rule_refuses_is_not_suggested():
    def mutate(raw: dict[str, Any]) -> None:
        raw["eureka"]["serviceType"] = "LoadBalncer"
        raw["network"]["loadBalancer"] = "none"

    assert "LoadBalancer" not in only_fix(mutate, "eureka.serviceType")


def test_a_boolean_fix_that_needs_more_config_is_not_suggested():
    """registry.auth true would then require a registryPassword that is not set."""
    assert only_fix(setp("registry.auth", "yes"), "registry.auth") == "pulumi config set --path registry.auth false"


def test_when_no_value_fits_the_fix_names_the_key():
    fix = only_fix(setp("workers", []), "workers")
    assert "pulumi config set --path 'workers[0].hostKey' <value>" in fix, fix
    assert "pulumi config set --path 'workers[0].address' 192.168.226." in fix, fix


def test_each_fix_is_checked_against_the_whole_config():
    """All problems at once: each fix is still checked against the others' rules."""
    raw = stack_raw("dev")
    raw["eureka"].update(replicas="two", minAvailable=2)
    problems = {p.path: p for p in problems_for(lambda r: (r.clear(), r.update(raw)))}
    assert set(problems) == {"eureka.replicas"}, problems
    # replicas 2 (the default) would make minAvailable 2 a problem: another value is suggested.
    fix = problems["eureka.replicas"].fix
    assert fix.endswith("<value>") or int(fixed_value(fix, "eureka.replicas")) > 2, fix
