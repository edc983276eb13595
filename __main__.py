"""vm-platform: plain Linux VMs -> a Kubernetes platform with a private registry and Eureka.

This file only wires: settings -> components -> exports.
"""

import pulumi

from components.cluster import Cluster, ClusterArgs
from components.eureka import EurekaServer, EurekaServerArgs
from components.maintenance import NodeMaintenance, NodeMaintenanceArgs
from components.namespaces import PlatformNamespaces, PlatformNamespacesArgs
from components.sdk import drop_sdk_debug_messages
from components.settings import load_settings

drop_sdk_debug_messages()
settings = load_settings()

cluster = Cluster("cluster", ClusterArgs(settings))
k8s_opts = pulumi.ResourceOptions(provider=cluster.provider)
namespaces = PlatformNamespaces("platform", PlatformNamespacesArgs(settings, cluster.registry.credentials), k8s_opts)
eureka = EurekaServer(
    "eureka",
    EurekaServerArgs(settings, namespaces.names[settings.eureka.namespace], namespaces.pull_secrets[settings.eureka.namespace]),
    k8s_opts,
)
NodeMaintenance("maintenance", NodeMaintenanceArgs(settings, cluster.control_plane.target, tuple(cluster.ready)), k8s_opts)

pulumi.export("apiServerEndpoint", cluster.api_server_endpoint)
pulumi.export("kubeconfig", cluster.kubeconfig)
pulumi.export("registryEndpoint", cluster.registry_endpoint)
pulumi.export("eurekaEndpoint", eureka.endpoint)
pulumi.export("nodeNames", cluster.node_names)
pulumi.export("certificateExpiry", cluster.certificate_expiry)
