"""The cluster's networks: the hosts' network, flannel's pod network, Services and DNS."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .core import Reader
from .fields import Choice, Cidr, Int, IPv4, Text, setting

FLANNEL_BACKENDS = ("vxlan", "host-gw")
LB_IMPLEMENTATIONS = ("none", "external", "metallb")
POLICY_ENFORCERS = ("none", "vmp-netpol")
POOL = r"(\d{1,3}\.){3}\d{1,3}(-(\d{1,3}\.){3}\d{1,3}|/\d{1,2})"
DNS_SUBDOMAIN = r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?"


@dataclass(frozen=True)
class NetworkSettings:
    """Host, pod and Service ranges must not overlap; every host address is inside hostCidr."""

    host_cidr: str = setting(Cidr(), doc="the hosts' network; every host address must be inside", example="192.168.0.0/24")
    pod_cidr: str = setting(Cidr(), doc="flannel's pod network", example="172.30.0.0/16")
    pod_subnet_length: int = setting(Int(16, 28), 24, "prefix length of each node's pod subnet")
    backend: str = setting(Choice(*FLANNEL_BACKENDS), "vxlan", "flannel backend")
    service_cidr: str = setting(Cidr(), doc="the Service network (its first address is the kubernetes Service)", example="10.254.0.0/16")
    cluster_dns: str = setting(IPv4(), doc="the cluster DNS Service address, inside serviceCidr", example="10.254.0.10")
    cluster_domain: str = setting(Text(DNS_SUBDOMAIN, "a DNS domain"), "cluster.local", "the cluster's DNS domain")
    api_server_port: int = setting(Int(1, 65535), 6443, "kube-apiserver port on the control-plane host")
    load_balancer: str = setting(
        Choice(*LB_IMPLEMENTATIONS),
        "none",
        "what assigns LoadBalancer Service addresses: metallb (the platform's, L2), external (the network's own) or none",
    )
    policy_enforcer: str = setting(
        Choice(*POLICY_ENFORCERS),
        "none",
        "what enforces NetworkPolicies: vmp-netpol (the platform's, on every worker; the platform's namespaces then get default-deny policies and their allow rules) or none (flannel enforces none)",
    )
    load_balancer_pool: str = setting(
        Text(POOL, "an address range a.b.c.d-a.b.c.e or a CIDR", shape="address range"),
        "",
        "addresses MetalLB hands out (network.loadBalancer metallb): inside hostCidr, no host's address",
    )

    def pool_addresses(self) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address] | None:
        """First and last address of loadBalancerPool (None when unset or malformed)."""
        try:
            if "-" in self.load_balancer_pool:
                a, b = (ipaddress.IPv4Address(x) for x in self.load_balancer_pool.split("-"))
                return (a, b) if a <= b else None
            if self.load_balancer_pool:
                n = ipaddress.IPv4Network(self.load_balancer_pool)
                return n.network_address, n.broadcast_address
        except ValueError:
            return None
        return None

    @property
    def kubernetes_service_ip(self) -> str:
        return str(next(ipaddress.ip_network(self.service_cidr).hosts()))


def parse_network(r: Reader) -> NetworkSettings:
    return NetworkSettings(**r.section(NetworkSettings, "network"))
