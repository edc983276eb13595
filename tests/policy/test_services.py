"""Service rules, including the stack rules that check Services against the stack's workloads."""

from __future__ import annotations

import pytest

from tests.policy.cases import Case, assert_case, case
from tests.policy.fakes import CONFIGMAP, DELETE, DEPLOYMENT, SERVICE, UNKNOWN, deployment, edit, run_stack, service, stack

LB = service(type_="LoadBalancer")
LB_ON = {"loadBalancerAvailable": True, "loadBalancerNamespaces": ["platform"]}
C0 = "spec.template.spec.containers.0"


def with_service(svc: dict) -> list:
    return [r if r[0] != SERVICE else (SERVICE, r[1], svc) for r in stack()]


def with_deployment(dep: dict) -> list:
    return [r if r[0] != DEPLOYMENT else (DEPLOYMENT, r[1], dep) for r in stack()]


CASES: list[Case] = [
    # load-balancer-allowed
    case("lb-ok", "load-balancer-allowed", SERVICE, LB, config=LB_ON),
    case("lb-unavailable", "load-balancer-allowed", SERVICE, LB, "no load-balancer implementation"),
    case(
        "lb-namespace",
        "load-balancer-allowed",
        SERVICE,
        edit(LB, **{"metadata.namespace": "services"}),
        "exposes load balancers only from platform",
        config=LB_ON,
    ),
    case("lb-any-namespace", "load-balancer-allowed", SERVICE, edit(LB, **{"metadata.namespace": "services"}), config={"loadBalancerAvailable": True}),
    case("lb-clusterip", "load-balancer-allowed", SERVICE, service()),
    case("lb-ignore-configmap", "load-balancer-allowed", CONFIGMAP, {"spec": {"type": "LoadBalancer"}}),
    case("lb-unknown-type", "load-balancer-allowed", SERVICE, edit(LB, **{"spec.type": UNKNOWN})),
    case("lb-unknown-namespace", "load-balancer-allowed", SERVICE, edit(LB, **{"metadata.namespace": UNKNOWN}), config=LB_ON),
    # no-node-port
    case("nodeport-ok", "no-node-port", SERVICE, service()),
    case("nodeport", "no-node-port", SERVICE, service(type_="NodePort"), "is a NodePort Service"),
    case("nodeport-allowed", "no-node-port", SERVICE, service(type_="NodePort"), config={"allowNodePort": True}),
    case("nodeport-ignore-deployment", "no-node-port", DEPLOYMENT, edit(deployment(), **{"spec.type": "NodePort"})),
    case("nodeport-unknown", "no-node-port", SERVICE, edit(service(), **{"spec.type": UNKNOWN})),
    # no-external-ips
    case("externalips-ok", "no-external-ips", SERVICE, service()),
    case("externalips", "no-external-ips", SERVICE, edit(service(), **{"spec.externalIPs": ["8.8.8.8"]}), "spec.externalIPs 8.8.8.8"),
    case(
        "externalips-allowed",
        "no-external-ips",
        SERVICE,
        edit(service(), **{"spec.externalIPs": ["192.168.226.200"]}),
        config={"allowedExternalIPs": ["192.168.226.200"]},
    ),
    case("externalips-ignore-configmap", "no-external-ips", CONFIGMAP, {"spec": {"externalIPs": ["8.8.8.8"]}}),
    case("externalips-unknown", "no-external-ips", SERVICE, edit(service(), **{"spec.externalIPs": [UNKNOWN]})),
    # service-selector-matches-pods (stack)
    case("selector-pods-ok", "service-selector-matches-pods", "stack", stack()),
    case(
        "selector-pods-none",
        "service-selector-matches-pods",
        "stack",
        with_service(edit(service(), **{"spec.selector": {"app": "eureka"}})),
        "selector app=eureka matches the pod labels of no workload",
    ),
    case(
        "selector-pods-other-namespace", "service-selector-matches-pods", "stack", with_service(service(namespace="services")), "no workload in its namespace"
    ),
    case(
        "selector-pods-no-workloads",
        "service-selector-matches-pods",
        "stack",
        [r for r in stack() if r[0] != DEPLOYMENT],
        "matches the pod labels of no workload",
    ),
    case("selector-pods-no-selector", "service-selector-matches-pods", "stack", with_service(edit(service(), **{"spec.selector": DELETE}))),
    case(
        "selector-pods-external-name",
        "service-selector-matches-pods",
        "stack",
        with_service(edit(service(type_="ExternalName"), **{"spec.selector": {"app": "x"}})),
    ),
    case("selector-pods-unknown-namespace", "service-selector-matches-pods", "stack", with_deployment(edit(deployment(), **{"metadata.namespace": UNKNOWN}))),
    case(
        "selector-pods-unknown-label",
        "service-selector-matches-pods",
        "stack",
        with_deployment(edit(deployment(), **{"spec.template.metadata.labels.app": UNKNOWN})),
    ),
    # service-target-port-declared (stack)
    case("targetport-ok", "service-target-port-declared", "stack", stack()),
    case("targetport-name", "service-target-port-declared", "stack", with_service(service(target="web")), "targets 'web'"),
    case("targetport-number-ok", "service-target-port-declared", "stack", with_service(service(target=8761.0))),
    case("targetport-number", "service-target-port-declared", "stack", with_service(service(target=9999.0)), "targets 9999"),
    case(
        "targetport-default-is-port",
        "service-target-port-declared",
        "stack",
        with_service(edit(service(), **{"spec.ports.0.targetPort": DELETE})),
        "targets 80",
    ),
    case("targetport-no-pods", "service-target-port-declared", "stack", with_service(edit(service(target="web"), **{"spec.selector": {"app": "x"}}))),
    case("targetport-unknown-ports", "service-target-port-declared", "stack", with_deployment(edit(deployment(), **{f"{C0}.ports": UNKNOWN}))),
    case("targetport-unknown-namespace", "service-target-port-declared", "stack", with_service(edit(service(target="web"), **{"metadata.namespace": UNKNOWN}))),
]


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_rule(c: Case) -> None:
    assert_case(c)


def test_stack_violations_point_at_the_service() -> None:
    from rules.services import validate_service_target_ports

    from tests.policy.fakes import Report, stack_args

    report = Report()
    validate_service_target_ports(stack_args(with_service(service(target="web"))), report, {})
    assert report.urns == ["urn:pulumi:test::vm-platform::kubernetes:core/v1:Service::eureka-app-service"]


def test_stack_rules_config_is_accepted() -> None:
    assert run_stack("service-selector-matches-pods", stack(), {"enforcementLevel": "mandatory"}) == []
