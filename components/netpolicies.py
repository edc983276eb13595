"""NetworkPolicies of the platform's namespaces, when network.policyEnforcer is vmp-netpol.

Every namespace the platform manages (the `namespaces`, Eureka's, kube-system for CoreDNS,
metallb-system) gets `default-deny`: all its pods isolated both ways. Then each workload is
allowed what it needs, and nothing more:
  - every pod: DNS to CoreDNS (its pods' port, as policies see traffic after the Service's
    address was translated);
  - CoreDNS: DNS from anywhere; to the API server and to upstream resolvers (port 53, or the
    ports dns.upstream names);
  - MetalLB's controller: to the API server (the speakers use the host's network: not isolated);
  - Eureka: its port from anywhere (the LoadBalancer, clients, peers); to its peers' port;
  - each service: its port from anywhere; to Eureka when it is a client, to the pods of the
    services it `calls` on their port, and to its `egress` networks on any port.
The enforcer (vmp-netpol, on every worker) reads them with kube-proxy's identity, which the
ClusterRole here grants read access to pods, namespaces and NetworkPolicies. With
policyEnforcer none nothing here is created: flannel enforces no policy, and objects that
promise isolation without it would mislead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from . import dns, metallb
from .eureka import APP as EUREKA_APP
from .k8s import KubernetesObject
from .settings import Settings

ENFORCER_USER = "system:kube-proxy"  # the identity in kube-proxy.kubeconfig, which vmp-netpol uses
NS_LABEL = "kubernetes.io/metadata.name"  # set by the API server on every namespace


def _in(namespace: str, **labels: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {NS_LABEL: namespace}}, "podSelector": {"matchLabels": labels}}


def _ports(*ports: tuple[str, int]) -> list[dict[str, Any]]:
    return [{"protocol": proto, "port": port} for proto, port in ports]


def _api_server(s: Settings) -> dict[str, Any]:
    """Egress to the API server on the control-plane host (the kubernetes Service's backend)."""
    return {"to": [{"ipBlock": {"cidr": f"{s.control_plane.address}/32"}}], "ports": _ports(("TCP", s.network.api_server_port))}


def _upstream_ports(s: Settings) -> list[int]:
    ports = {53}
    for u in s.dns.upstream:
        if m := re.fullmatch(r"[\d.]+:(\d+)", u):
            ports.add(int(m.group(1)))
    return sorted(ports)


def managed_namespaces(s: Settings) -> list[str]:
    out = [*s.namespaces, dns.NAMESPACE]
    if s.network.load_balancer == "metallb":
        out.append(metallb.NAMESPACE)
    return sorted(set(out))


def policies(s: Settings) -> dict[str, dict[str, Any]]:
    """resource-name suffix -> {namespace, name, spec} of every policy (pure: for tests too)."""
    dns_egress = {"to": [_in(dns.NAMESPACE, **{"k8s-app": "kube-dns"})], "ports": _ports(("UDP", dns.DNS_PORT), ("TCP", dns.DNS_PORT))}
    out: dict[str, dict[str, Any]] = {}

    def add(ns: str, name: str, selector: Mapping[str, str], ingress: list | None, egress: list | None) -> None:
        types = [t for t, rules in (("Ingress", ingress), ("Egress", egress)) if rules is not None]
        spec: dict[str, Any] = {"podSelector": {"matchLabels": dict(selector)} if selector else {}, "policyTypes": types}
        if ingress:
            spec["ingress"] = ingress
        if egress:
            spec["egress"] = egress
        out[f"{ns}-{name}"] = {"namespace": ns, "name": name, "spec": spec}

    for ns in managed_namespaces(s):
        add(ns, "default-deny", {}, [], [])
        add(ns, "allow-dns", {}, None, [dns_egress])
    dns_ingress = [{"ports": _ports(("UDP", dns.DNS_PORT), ("TCP", dns.DNS_PORT))}]
    upstream = [{"ports": [p for port in _upstream_ports(s) for p in _ports(("UDP", port), ("TCP", port))]}] if s.dns.upstream else []
    add(dns.NAMESPACE, "coredns", {"k8s-app": "kube-dns"}, dns_ingress, [_api_server(s), *upstream])
    if s.network.load_balancer == "metallb":
        add(metallb.NAMESPACE, "controller", metallb.CONTROLLER_LABELS, None, [_api_server(s)])
    e = s.eureka
    eureka_port = _ports(("TCP", e.container_port))
    add(e.namespace, EUREKA_APP, {"app": EUREKA_APP}, [{"ports": eureka_port}], [{"to": [_in(e.namespace, app=EUREKA_APP)], "ports": eureka_port}])
    by_name = {x.name: x for x in s.services}
    for svc in s.services:
        egress: list[dict[str, Any]] = []
        if svc.eureka_client:
            egress.append({"to": [_in(e.namespace, app=EUREKA_APP)], "ports": eureka_port})
        for called in svc.calls:
            if (target := by_name.get(called)) is not None:
                egress.append({"to": [_in(target.namespace, app=target.name)], "ports": _ports(("TCP", target.port))})
        if svc.egress:
            egress.append({"to": [{"ipBlock": {"cidr": c}} for c in svc.egress]})
        add(svc.namespace, f"service-{svc.name}", {"app": svc.name}, [{"ports": _ports(("TCP", svc.port))}], egress or None)
    return out


@dataclass(frozen=True)
class ClusterPoliciesArgs:
    settings: Settings
    """The validated stack settings."""
    namespaces: Mapping[str, pulumi.Output[str]]
    """Namespace name -> its metadata.name Output (PlatformNamespaces), so policies follow them."""
    after: tuple[pulumi.Resource, ...] = ()
    """What must exist first (the kube-system and metallb-system objects)."""


class ClusterPolicies(pulumi.ComponentResource):
    """The enforcer's read access and the platform's NetworkPolicies (see the module)."""

    def __init__(self, name: str, args: ClusterPoliciesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vm-platform:platform:ClusterPolicies", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self, depends_on=list(args.after))
        labels = {"app.kubernetes.io/managed-by": "vm-platform", "app.kubernetes.io/name": "vmp-netpol"}
        role = KubernetesObject(
            f"{name}-reader",
            "ClusterRole",
            metadata={"name": "vm-platform:netpol", "labels": labels},
            rules=[
                {"apiGroups": [""], "resources": ["pods", "namespaces"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["get", "list", "watch"]},
            ],
            opts=child,
        )
        KubernetesObject(
            f"{name}-reader-binding",
            "ClusterRoleBinding",
            metadata={"name": "vm-platform:netpol", "labels": labels},
            roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role.metadata.apply(lambda m: m["name"])},
            subjects=[{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": ENFORCER_USER}],
            opts=child,
        )
        self.policies = {}
        for key, p in policies(s).items():
            ns = args.namespaces.get(p["namespace"], p["namespace"])
            self.policies[key] = KubernetesObject(
                f"{name}-{key}", "NetworkPolicy", metadata={"name": p["name"], "namespace": ns, "labels": labels}, spec=p["spec"], opts=child
            )
        self.register_outputs({})
