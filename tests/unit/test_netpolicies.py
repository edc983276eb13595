"""network.policyEnforcer vmp-netpol: the platform's namespaces default-deny, each workload
allowed what it needs (components/netpolicies.py), the enforcer on every worker, its read
access; with none, nothing of it. The enforcer's semantics have their own Go tests (netpol/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components import dns
from components.binaries import ETCD_BINARIES, FLANNEL_BINARIES, KUBERNETES_CONTROL_PLANE_BINARIES, KUBERNETES_WORKER_BINARIES, NETPOL_BINARIES
from components.netpolicies import ENFORCER_USER, managed_namespaces, policies
from components.settings import Secret, parse_settings
from tests.unit.harness import TEST_KEY, RecordingMocks, base_config, run_program
from tests.unit.settings.helpers import errors_for, setp, stack_raw


def _settings(**services: dict[str, Any]):
    raw = stack_raw("dev")
    raw["network"]["policyEnforcer"] = "vmp-netpol"
    raw["binaries"] = {"source": "local", "localDir": "/nonexistent/{kubernetesVersion}"}
    raw["registry"]["images"].append({"name": "example-service:1.0.0"})
    raw["services"] = {name: {"image": "example-service:1.0.0", **svc} for name, svc in services.items()}
    return parse_settings(raw, "dev", check_files=False)


def test_every_managed_namespace_is_default_deny_both_ways_and_may_ask_dns():
    s = _settings()
    p = policies(s)
    assert managed_namespaces(s) == sorted({*s.namespaces, "kube-system", "metallb-system"})
    for ns in managed_namespaces(s):
        # The policy pack's namespace-default-deny shape: all pods, both types, no rule.
        assert p[f"{ns}-default-deny"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
        dns_rule = p[f"{ns}-allow-dns"]["spec"]
        assert dns_rule["policyTypes"] == ["Egress"] and dns_rule["podSelector"] == {}
        assert dns_rule["egress"][0]["ports"] == [{"protocol": "UDP", "port": dns.DNS_PORT}, {"protocol": "TCP", "port": dns.DNS_PORT}]
        assert dns_rule["egress"][0]["to"] == [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
        ]


def test_platform_workloads_get_what_they_need():
    s = _settings()
    p = policies(s)
    api = {"to": [{"ipBlock": {"cidr": f"{s.control_plane.address}/32"}}], "ports": [{"protocol": "TCP", "port": s.network.api_server_port}]}
    coredns = p["kube-system-coredns"]["spec"]
    assert coredns["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}} and coredns["ingress"] == [
        {"ports": [{"protocol": "UDP", "port": 1053}, {"protocol": "TCP", "port": 1053}]}
    ]
    assert coredns["egress"][0] == api and coredns["egress"][1]["ports"][0] == {"protocol": "UDP", "port": 53}  # dev forwards upstream
    assert p["metallb-system-controller"]["spec"]["egress"] == [api] and p["metallb-system-controller"]["spec"]["policyTypes"] == ["Egress"]
    eureka = p["platform-eurekaserver"]["spec"]
    assert eureka["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8761}]}]  # the LoadBalancer, clients and peers
    assert eureka["egress"] == [
        {
            "to": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "platform"}}, "podSelector": {"matchLabels": {"app": "eurekaserver"}}}
            ],
            "ports": [{"protocol": "TCP", "port": 8761}],
        }
    ]


def test_services_get_their_port_eureka_when_clients_and_their_egress_networks():
    p = policies(_settings(orders={"eurekaClient": True, "egress": ["10.20.0.0/16"]}, report={"port": 9090}))
    orders = p["platform-service-orders"]["spec"]
    assert orders["podSelector"] == {"matchLabels": {"app": "orders"}} and orders["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8080}]}]
    assert orders["egress"][0]["ports"] == [{"protocol": "TCP", "port": 8761}] and orders["egress"][1] == {"to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}]}
    report = p["platform-service-report"]["spec"]
    assert report["policyTypes"] == ["Ingress"] and report["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 9090}]  # egress: DNS only (allow-dns)


def test_a_service_reaches_the_services_it_calls_on_their_container_port_only():
    p = policies(_settings(orders={"calls": ["report"], "eurekaClient": True}, report={"port": 9090, "namespace": "platform"}))
    orders = p["platform-service-orders"]["spec"]["egress"]
    assert orders[1] == {
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "platform"}}, "podSelector": {"matchLabels": {"app": "report"}}}],
        "ports": [{"protocol": "TCP", "port": 9090}],
    }
    assert len(orders) == 2  # Eureka, report: nothing else
    assert "egress" not in p["platform-service-report"]["spec"]  # being called opens nothing outward


def test_coredns_without_upstream_has_no_upstream_egress():
    s = _settings()
    raw_less = policies(type(s)(**{**s.__dict__, "dns": type(s.dns)(**{**s.dns.__dict__, "upstream": ()})}))
    assert len(raw_less["kube-system-coredns"]["spec"]["egress"]) == 1


def test_the_enforcer_needs_local_binaries():
    assert any(e.startswith("network.policyEnforcer") for e in errors_for(setp("network.policyEnforcer", "vmp-netpol")))
    raw = stack_raw("dev")
    raw["network"]["policyEnforcer"] = "none"
    assert parse_settings(raw, "dev").network.policy_enforcer == "none"


@pytest.fixture(scope="module")
def enforced(tmp_path_factory: pytest.TempPathFactory) -> RecordingMocks:
    d: Path = tmp_path_factory.mktemp("bin")
    for name in (*KUBERNETES_CONTROL_PLANE_BINARIES, *KUBERNETES_WORKER_BINARIES, *ETCD_BINARIES, *FLANNEL_BINARIES, *NETPOL_BINARIES):
        (d / name).write_bytes(f"#!/bin/sh\n# {name}\n".encode())
    cfg = base_config()
    cfg["network"]["policyEnforcer"] = "vmp-netpol"
    cfg["binaries"] = {"source": "local", "localDir": str(d)}
    return run_program(cfg)


def test_enforced_stacks_run_vmp_netpol_on_every_worker_and_create_the_policies(enforced: RecordingMocks):
    workers = [n.removesuffix("-vmp-netpol-unit") for n in enforced.resources if n.endswith("-vmp-netpol-unit")]
    assert workers and all(f"{w}-vmp-netpol-restart" in enforced.resources and f"{w}-bin-vmp-netpol" in enforced.resources for w in workers)
    unit = enforced.resources[f"{workers[0]}-vmp-netpol-unit"].inputs["stdin"]
    assert "--kubeconfig=/etc/vm-platform/kube-proxy.kubeconfig" in unit and "ExecStopPost=/usr/local/bin/vmp-netpol --cleanup" in unit
    binding = enforced.resources["netpol-reader-binding"].inputs
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": ENFORCER_USER}]
    kinds = [r for r in enforced.resources.values() if r.type == "kubernetes:networking.k8s.io/v1:NetworkPolicy"]
    raw = {**base_config(), "sshPrivateKey": Secret(TEST_KEY), "binaries": {"source": "local", "localDir": "/x"}}
    raw["network"]["policyEnforcer"] = "vmp-netpol"
    want = policies(parse_settings(raw, "dev", check_files=False))
    assert sorted(r.inputs["metadata"]["namespace"] + "/" + r.inputs["metadata"]["name"] for r in kinds) == sorted(
        f"{p['namespace']}/{p['name']}" for p in want.values()
    )


def test_without_an_enforcer_nothing_of_it():
    dev = run_program(base_config())
    assert not [
        n for n, r in dev.resources.items() if "vmp-netpol" in n or r.type == "kubernetes:networking.k8s.io/v1:NetworkPolicy" or n.startswith("netpol-")
    ]
