"""Cluster DNS: CoreDNS answering at network.clusterDns for network.clusterDomain.

The kubelets already point every pod's resolv.conf at network.clusterDns; this component puts
something there: a CoreDNS Deployment (dns.replicas, spread over the nodes, a budget that keeps
one while a node drains), the Service `kube-dns` with that fixed cluster IP, the read-only RBAC
the kubernetes plugin needs and the Corefile, written from settings. CoreDNS runs as non-root
on port 1053 (the Service maps 53 to it): no capability is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from .k8s import KubernetesObject
from .microservice import restricted_container, spread_over_nodes
from .namespaces import pull_secret
from .settings import Settings

NAMESPACE = "kube-system"
APP = "coredns"
DNS_PORT = 1053  # unprivileged; the Service's port 53 maps here
HEALTH_PORT = 8080
READY_PORT = 8181
METRICS_PORT = 9153
UID = 65532


def corefile(settings: Settings) -> str:
    """The Corefile: the cluster zone from the kubernetes plugin, reverse zones for Service and
    pod addresses, and names outside the cluster forwarded to dns.upstream (none when empty)."""
    n, d = settings.network, settings.dns
    lines = [
        f".:{DNS_PORT} {{",
        "    errors",
        "    health {",
        "        lameduck 5s",
        "    }",
        f"    ready :{READY_PORT}",
        f"    kubernetes {n.cluster_domain} in-addr.arpa ip6.arpa {{",
        "        pods insecure",
        "        fallthrough in-addr.arpa ip6.arpa",
        "        ttl 30",
        "    }",
        f"    prometheus :{METRICS_PORT}",
    ]
    if d.upstream:
        lines += [f"    forward . {' '.join(d.upstream)} {{", "        max_concurrent 1000", "    }"]
    lines += ["    cache 30", "    loop", "    reload", "    loadbalance", "}", ""]
    return "\n".join(lines)


@dataclass(frozen=True)
class ClusterDnsArgs:
    settings: Settings
    """The validated stack settings."""
    registry_credentials: pulumi.Output[tuple[str, str]] | None = None
    """(user, password) of the private registry, when it requires auth (a pull secret is made)."""


class ClusterDns(pulumi.ComponentResource):
    """CoreDNS: ServiceAccount, ClusterRole + binding, Corefile ConfigMap, Deployment, PDB and
    the kube-dns Service at network.clusterDns.

    Outputs:
        service: the kube-dns Service.
        deployment: the CoreDNS Deployment (dependents wait for its rollout).
    """

    def __init__(self, name: str, args: ClusterDnsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vm-platform:platform:ClusterDns", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        labels = {"k8s-app": "kube-dns", "app.kubernetes.io/name": APP}
        meta = {"namespace": NAMESPACE, "labels": labels}
        account = KubernetesObject(f"{name}-account", "ServiceAccount", metadata={**meta, "name": APP}, opts=child)
        role = KubernetesObject(
            f"{name}-role",
            "ClusterRole",
            metadata={"name": "vm-platform:coredns", "labels": labels},
            rules=[
                {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"], "verbs": ["list", "watch"]},
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
            ],
            opts=child,
        )
        binding = KubernetesObject(
            f"{name}-binding",
            "ClusterRoleBinding",
            metadata={"name": "vm-platform:coredns", "labels": labels},
            roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role.metadata.apply(lambda m: m["name"])},
            subjects=[{"kind": "ServiceAccount", "name": account.metadata.apply(lambda m: m["name"]), "namespace": NAMESPACE}],
            opts=child,
        )
        config = KubernetesObject(f"{name}-corefile", "ConfigMap", metadata={**meta, "name": APP}, data={"Corefile": corefile(s)}, opts=child)
        select = {"k8s-app": "kube-dns"}
        pod_spec: dict = {
            "serviceAccountName": APP,  # literal: the preview and the policy pack see it
            "automountServiceAccountToken": True,  # the kubernetes plugin watches Services and endpoints
            "priorityClassName": "system-cluster-critical",
            "dnsPolicy": "Default",  # CoreDNS itself resolves through the host's resolv.conf
            "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": APP,
                    "image": s.image_ref(s.dns.image),
                    "imagePullPolicy": "IfNotPresent",
                    "args": ["-conf", "/etc/coredns/Corefile"],
                    "ports": [
                        {"name": "dns", "containerPort": DNS_PORT, "protocol": "UDP"},
                        {"name": "dns-tcp", "containerPort": DNS_PORT, "protocol": "TCP"},
                        {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
                        {"name": "health", "containerPort": HEALTH_PORT, "protocol": "TCP"},
                        {"name": "ready", "containerPort": READY_PORT, "protocol": "TCP"},
                    ],
                    "livenessProbe": {"httpGet": {"path": "/health", "port": "health"}, "initialDelaySeconds": 10, "periodSeconds": 10, "failureThreshold": 5},
                    "readinessProbe": {"httpGet": {"path": "/ready", "port": "ready"}, "periodSeconds": 5},
                    "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "170Mi"}},
                    "securityContext": restricted_container(),
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}],
                }
            ],
            "volumes": [
                {"name": "config", "configMap": {"name": config.metadata.apply(lambda m: m["name"]), "items": [{"key": "Corefile", "path": "Corefile"}]}}
            ],
            "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}, *s.node_loss.tolerations()],
            "topologySpreadConstraints": [spread_over_nodes(select)],
        }
        if args.registry_credentials is not None:
            pod_spec["imagePullSecrets"] = [{"name": pull_secret(f"{name}-pull", NAMESPACE, s, args.registry_credentials, self)}]
        self.deployment = KubernetesObject(
            f"{name}-deployment",
            "Deployment",
            metadata={**meta, "name": APP},
            spec={
                "replicas": s.dns.replicas,
                "selector": {"matchLabels": select},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                # The Corefile's digest in the template: a changed Corefile rolls the pods.
                "template": {"metadata": {"labels": labels, "annotations": {"vm-platform/corefile": _digest(corefile(s))}}, "spec": pod_spec},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[account, binding]),
        )
        KubernetesObject(
            f"{name}-pdb",
            "PodDisruptionBudget",
            metadata={**meta, "name": APP},
            spec={"maxUnavailable": 1, "selector": {"matchLabels": select}},
            opts=child,
        )
        self.service = KubernetesObject(
            f"{name}-service",
            "Service",
            metadata={**meta, "name": "kube-dns", "labels": {**labels, "kubernetes.io/name": "CoreDNS"}},
            spec={
                "clusterIP": s.network.cluster_dns,
                "selector": select,
                "ports": [
                    {"name": "dns", "port": 53, "targetPort": "dns", "protocol": "UDP"},
                    {"name": "dns-tcp", "port": 53, "targetPort": "dns-tcp", "protocol": "TCP"},
                    {"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics", "protocol": "TCP"},
                ],
            },
            opts=child,
        )
        self.register_outputs({})


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:16]
