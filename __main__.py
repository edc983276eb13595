"""vm-platform: plain Linux VMs -> a Kubernetes platform with a private registry and Eureka.

This file only wires: settings -> components -> exports.
"""

import pulumi

from components.cluster import Cluster, ClusterArgs
from components.dns import ClusterDns, ClusterDnsArgs
from components.eureka import EurekaServer, EurekaServerArgs
from components.maintenance import NodeMaintenance, NodeMaintenanceArgs
from components.metallb import LoadBalancer, LoadBalancerArgs
from components.namespaces import PlatformNamespaces, PlatformNamespacesArgs
from components.netpolicies import ClusterPolicies, ClusterPoliciesArgs
from components.previous import EXPIRY_OUTPUT, RENEWALS_OUTPUT
from components.sdk import drop_sdk_debug_messages
from components.services import user_services
from components.settings import load_settings
from components.upgrade import VERSION_OUTPUT

drop_sdk_debug_messages()
settings = load_settings()

cluster = Cluster("cluster", ClusterArgs(settings))
k8s_opts = pulumi.ResourceOptions(provider=cluster.provider)
ClusterDns("dns", ClusterDnsArgs(settings, cluster.registry.credentials), k8s_opts)
load_balancer = (
    LoadBalancer("metallb", LoadBalancerArgs(settings, cluster.registry.credentials), k8s_opts) if settings.network.load_balancer == "metallb" else None
)
namespaces = PlatformNamespaces("platform", PlatformNamespacesArgs(settings, cluster.registry.credentials), k8s_opts)
if settings.network.policy_enforcer == "vmp-netpol":
    ClusterPolicies("netpol", ClusterPoliciesArgs(settings, namespaces.names, after=(load_balancer,) if load_balancer else ()), k8s_opts)
eureka = EurekaServer(
    "eureka",
    EurekaServerArgs(
        settings,
        namespaces.names[settings.eureka.namespace],
        namespaces.pull_secrets[settings.eureka.namespace],
        load_balancer=load_balancer.ready if load_balancer else (),
    ),
    k8s_opts,
)
services = user_services(
    settings,
    namespaces.names,
    namespaces.pull_secrets,
    after=namespaces.secrets,
    load_balancer=load_balancer.ready if load_balancer else (),
    opts=k8s_opts,
)
NodeMaintenance("maintenance", NodeMaintenanceArgs(settings, cluster.control_plane.target, tuple(cluster.ready)), k8s_opts)

pulumi.export("apiServerEndpoint", cluster.api_server_endpoint)
pulumi.export("kubeconfig", cluster.kubeconfig)
pulumi.export("registryEndpoint", cluster.registry_endpoint)
pulumi.export("eurekaEndpoint", eureka.endpoint)
pulumi.export("serviceEndpoints", {name: svc.endpoint for name, svc in services.items()})
pulumi.export("nodeNames", cluster.node_names)
pulumi.export(VERSION_OUTPUT, cluster.kubernetes_version)
pulumi.export(EXPIRY_OUTPUT, cluster.certificate_expiry)
pulumi.export(RENEWALS_OUTPUT, cluster.certificate_renewals)
