"""A problem is blamed on the key the operator got wrong (the one written, the odd one out),
not on a neighbouring key; where two keys disagree, the other is named."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.settings.helpers import errors_for


def _network(**values: Any) -> Any:
    return lambda raw: raw["network"].update(values)


def _two_equal_workers(raw: dict[str, Any]) -> None:
    raw["workers"].append(dict(raw["workers"][0]))


def _hosts_at(prefix: str) -> Any:
    def mutate(raw: dict[str, Any]) -> None:
        raw["controlPlane"]["address"] = f"{prefix}.10"
        for i, w in enumerate(raw["workers"]):
            w["address"] = f"{prefix}.{11 + i}"

    return mutate


def _request_above_default_limit(raw: dict[str, Any]) -> None:
    del raw["eureka"]["resources"]["limits"]["cpu"]
    raw["eureka"]["resources"]["requests"]["cpu"] = "2"


def _surge_zero_unavailable_default(raw: dict[str, Any]) -> None:
    del raw["eureka"]["maxUnavailable"]
    raw["eureka"]["maxSurge"] = "0"


def _pod_range_as_small_as_default_subnets(raw: dict[str, Any]) -> None:
    del raw["network"]["podSubnetLength"]
    raw["network"]["podCidr"] = "172.30.0.0/24"


WRONG_KEY = [
    # (id, stack, mutation, the problem expected, paths that must not be blamed)
    (
        "second-of-two-equal-workers",
        "dev",
        _two_equal_workers,
        'workers[1].name: expected a node name not already used by workers[0], found "centos-minion-1"',
        ["workers[0].name", "workers[0].address"],
    ),
    (
        "host-range-written-too-wide",
        "dev",
        _network(hostCidr="192.168.0.0/16", serviceCidr="192.168.100.0/24", clusterDns="192.168.100.10"),
        'network.hostCidr: expected a range that does not overlap network.serviceCidr (192.168.100.0/24), found "192.168.0.0/16"',
        ["network.serviceCidr"],
    ),
    (
        "earlier-range-is-the-loose-one",
        "dev",
        _network(podCidr="10.254.0.0/16"),
        'network.podCidr: expected a range that does not overlap network.serviceCidr (10.254.0.0/16), found "10.254.0.0/16"',
        ["network.serviceCidr"],
    ),
    (
        "host-range-wrong-for-every-host",
        "prod",
        _network(hostCidr="192.168.228.0/24"),
        "network.hostCidr: expected a network that holds the hosts' addresses (192.168.227.10, 192.168.227.11, 192.168.227.12, 192.168.227.13)",
        ["controlPlane.address", "workers[0].address", "workers[1].address", "workers[2].address"],
    ),
    (
        "hosts-moved-host-range-kept",
        "dev",
        _hosts_at("10.20.0"),
        'network.hostCidr: expected a network that holds the hosts\' addresses (10.20.0.10, 10.20.0.11), found "192.168.226.0/24". Fix: pulumi config set --path network.hostCidr 10.20.0.0/24',
        ["controlPlane.address", "workers[0].address"],
    ),
    (
        "service-range-not-cluster-dns",
        "dev",
        _network(serviceCidr="172.30.128.0/17"),
        "network.serviceCidr: expected a range that does not overlap network.podCidr (172.30.0.0/16)",
        ["network.clusterDns"],
    ),
    (
        "request-written-limit-defaulted",
        "dev",
        _request_above_default_limit,
        'eureka.resources.requests.cpu: expected at most the limit (1), found "2"',
        ["eureka.resources.limits.cpu"],
    ),
    (
        "surge-written-unavailable-defaulted",
        "dev",
        _surge_zero_unavailable_default,
        "eureka.maxSurge: expected a non-zero value when eureka.maxUnavailable is 0",
        ["eureka.maxUnavailable"],
    ),
    (
        "pod-range-written-subnet-length-defaulted",
        "dev",
        _pod_range_as_small_as_default_subnets,
        'network.podCidr: expected a network larger than the per-node subnets (network.podSubnetLength is 24), found "172.30.0.0/24"',
        ["network.podSubnetLength"],
    ),
    (
        "pause-image-tag-mistyped",
        "dev",
        lambda raw: raw.update(pauseImage="pause:3.9"),
        'pauseImage: expected an image that registry.images provides (pause:3.10, eureka-server:1.1.0, coredns:1.15.0, metallb-controller:v0.15.2, metallb-speaker:v0.15.2), found "pause:3.9". Fix: pulumi config set --path pauseImage pause:3.10',
        ["registry.images"],
    ),
]


@pytest.mark.parametrize("stack,mutate,expected,not_blamed", [pytest.param(s, m, e, n, id=i) for i, s, m, e, n in WRONG_KEY])
def test_the_key_written_wrong_is_blamed(stack, mutate, expected, not_blamed):
    problems = errors_for(mutate, stack)
    assert any(p.startswith(expected) for p in problems), "\n".join(problems)
    blamed = {p.split(": expected")[0] for p in problems}
    assert not blamed & set(not_blamed), "\n".join(problems)
