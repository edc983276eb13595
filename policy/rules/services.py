"""Rules for Services and networking: what a Service exposes (LoadBalancer only where the
environment implements it, NodePort, externalIPs) and, as stack rules over Services and the
workloads beside them, whether a Service selects any pods and targets a port they declare."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .common import ADVISORY, HIGH, LOW, MANDATORY, MEDIUM, UNKNOWN, Config, Report, declared, flag, get, number, pairs, rule, seq, show, strings
from .container_spec import pod_ports
from .kube import Workload, describe, k8s_api, labels_match, ref, stack_workload

_TAGS = ("kubernetes", "networking")


def is_service(resource_type: str) -> bool:
    api = k8s_api(resource_type)
    return api is not None and api[0] == "core" and api[2] == "Service"


def same_namespace(a: Any, b: Any) -> bool:
    """Whether two metadata.namespace values may be the same namespace (unknown: maybe)."""
    if a is UNKNOWN or b is UNKNOWN:
        return True
    return (a or "") == (b or "")


# ---------------------------------------------------------------------------------------------
# One Service


@rule(
    "load-balancer-allowed",
    "LoadBalancer Services only where the environment has a load-balancer implementation, and only in allowed namespaces.",
    HIGH,
    MANDATORY,
    "Use NodePort or ClusterIP where network.loadBalancer is none; set loadBalancerAvailable/loadBalancerNamespaces per stack.",
    settings={
        "loadBalancerAvailable": flag("The environment implements type LoadBalancer (network.loadBalancer: external).", False),
        "loadBalancerNamespaces": strings("Namespaces that may expose LoadBalancer Services (empty: any).", []),
    },
    tags=_TAGS,
)
def validate_load_balancer(args: Any, report: Report, cfg: Config) -> None:
    """LoadBalancer Services only where a load-balancer implementation exists, in allowed namespaces."""
    if not is_service(args.resource_type) or get(args.props, "spec", "type") != "LoadBalancer":
        return
    if not cfg.get("loadBalancerAvailable", False):
        report(
            f"{ref(args)}: It is a LoadBalancer Service, but this environment has no load-balancer implementation, so its address stays <pending> forever. "
            "Use type NodePort or ClusterIP (eureka.serviceType), or install one (e.g. MetalLB) and set network.loadBalancer and loadBalancerAvailable."
        )
        return
    allowed = cfg.get("loadBalancerNamespaces", [])
    ns = get(args.props, "metadata", "namespace")
    if allowed and ns is not UNKNOWN and (ns or "default") not in allowed:
        report(
            f"{ref(args)}: It is a LoadBalancer Service in namespace {ns or 'default'}, but this stack exposes load balancers only from {', '.join(allowed)}. Use ClusterIP behind an allowed entry point, or move it."
        )


@rule(
    "no-node-port",
    "Services are not of type NodePort unless the stack allows it.",
    LOW,
    ADVISORY,
    "Use ClusterIP (in-cluster) or LoadBalancer (where available); allow NodePort per stack with allowNodePort.",
    settings={"allowNodePort": flag("NodePort Services are fine in this stack.", False)},
    tags=_TAGS,
)
def validate_node_port(args: Any, report: Report, cfg: Config) -> None:
    """NodePort Services only where the stack allows them."""
    if is_service(args.resource_type) and get(args.props, "spec", "type") == "NodePort" and not cfg.get("allowNodePort", False):
        report(
            f"{ref(args)}: It is a NodePort Service, which opens a port on every node. Use ClusterIP (or LoadBalancer where available), or allow NodePort for this stack."
        )


@rule(
    "no-external-ips",
    "Services set no spec.externalIPs (CVE-2020-8554) beyond an allowed list.",
    HIGH,
    MANDATORY,
    "Remove spec.externalIPs; expose the Service as LoadBalancer or NodePort.",
    settings={"allowedExternalIPs": strings("External IPs a Service may claim.", [])},
    tags=_TAGS,
)
def validate_external_ips(args: Any, report: Report, cfg: Config) -> None:
    """Services set no spec.externalIPs (CVE-2020-8554) beyond the allowed list."""
    if not is_service(args.resource_type):
        return
    ips = seq(args.props, "spec", "externalIPs")
    allowed = set(cfg.get("allowedExternalIPs", []))
    bad = [] if ips is UNKNOWN else [ip for ip in ips if isinstance(ip, str) and ip not in allowed]
    if bad:
        report(
            f"{ref(args)}: It sets spec.externalIPs {', '.join(bad)}, which lets it capture traffic to those addresses cluster-wide. Remove externalIPs and use a LoadBalancer or NodePort Service."
        )


# ---------------------------------------------------------------------------------------------
# Services against the workloads of the stack


def _workloads(resources: list[Any]) -> list[tuple[Any, Workload]]:
    out = []
    for r in resources:
        wl = stack_workload(r.resource_type, r.props)
        if wl is not None:
            out.append((r, wl))
    return out


def _services(resources: list[Any]) -> Iterator[tuple[Any, Any]]:
    """(resource, selector) for each Service that selects pods."""
    for r in resources:
        if not is_service(r.resource_type) or get(r.props, "spec", "type") == "ExternalName":
            continue
        selector = get(r.props, "spec", "selector")
        if selector is UNKNOWN or not selector:
            continue
        yield r, selector


def selected_workloads(service: Any, selector: Any, workloads: list[tuple[Any, Workload]]) -> tuple[list[Workload], bool]:
    """(the workloads the Service surely selects, whether some others might be selected)."""
    sure, maybe = [], False
    ns = get(service.props, "metadata", "namespace")
    for _, wl in workloads:
        if not same_namespace(ns, wl.namespace):
            continue
        match = labels_match(selector, wl.pod_labels)
        if match and ns is not UNKNOWN and wl.namespace is not UNKNOWN:
            sure.append(wl)
        elif match is not False:
            maybe = True
    return sure, maybe


@rule(
    "service-selector-matches-pods",
    "Every Service selector matches the pod labels of a workload in the same namespace of the stack.",
    HIGH,
    MANDATORY,
    "Make the Service's spec.selector equal the labels of the pod template it fronts (e.g. app=<app>).",
    stack=True,
    tags=_TAGS,
)
def validate_service_selectors(args: Any, report: Report, cfg: Config) -> None:
    """Every Service selector matches the pod labels of some workload in its namespace."""
    workloads = _workloads(args.resources)
    for svc, selector in _services(args.resources):
        sure, maybe = selected_workloads(svc, selector, workloads)
        if sure or maybe:
            continue
        shown = ", ".join(f"{k}={v}" for k, v in (pairs(selector) or []))
        report(
            f"{describe(svc.resource_type, svc.name, svc.props)}: Its selector {shown} matches the pod labels of no workload in its namespace in this stack, "
            "so it has no endpoints. Make spec.selector equal the pod template labels of the workload it fronts.",
            svc.urn,
        )


@rule(
    "service-target-port-declared",
    "Every Service targetPort is a port (number or name) that the selected pods declare.",
    MEDIUM,
    MANDATORY,
    "Name the container port (ports[].name: http) and use that name as the Service's targetPort.",
    stack=True,
    tags=_TAGS,
)
def validate_service_target_ports(args: Any, report: Report, cfg: Config) -> None:
    """Every Service port targets a port (name or number) that the selected pods declare."""
    workloads = _workloads(args.resources)
    for svc, selector in _services(args.resources):
        sure, maybe = selected_workloads(svc, selector, workloads)
        if not sure or maybe:
            continue  # no pods, or not all of them known: service-selector-matches-pods speaks for that
        declared = [pod_ports(wl.pod_spec) for wl in sure]
        if any(d is None for d in declared):
            continue
        names = {n for d in declared if d for n in d[0]}
        numbers = {n for d in declared if d for n in d[1]}
        ports = seq(svc.props, "spec", "ports")
        for port in [] if ports is UNKNOWN else ports:
            target = get(port, "targetPort")
            if target is None:
                target = get(port, "port")
            if target is UNKNOWN or target is None:
                continue
            n = number(target)
            if (int(n) in numbers) if n is not None else (target in names):
                continue
            kinds = ", ".join(sorted({f"{wl.kind} {get(wl.props, 'metadata', 'name')}" for wl in sure}))
            report(
                f"{describe(svc.resource_type, svc.name, svc.props)}: Its port {show(get(port, 'name') or get(port, 'port'))} targets {show(target)}, which no container of the selected pods "
                f"({kinds}) declares, so traffic goes nowhere. Set targetPort to a declared containerPort or port name (e.g. http).",
                svc.urn,
            )


RULES = declared(__name__)

__all__ = ["RULES", "same_namespace", "selected_workloads"]
