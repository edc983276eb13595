"""A reusable container microservice: Deployment + Service + PodDisruptionBudget + its own ServiceAccount.

Secure by default (non-root, read-only root filesystem, no privilege escalation, all
capabilities dropped, RuntimeDefault seccomp, no service-account token), with probes,
requests/limits, rolling updates and a topology spread so replicas land on different nodes.
hostPort is possible but off by default: with it, replicas > nodes leaves pods Pending.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi

from .k8s import KubernetesObject, env_from_field
from .settings import Resources


@dataclass(frozen=True)
class MicroserviceArgs:
    namespace: pulumi.Input[str]
    """Namespace to run in."""
    app: str
    """The app label (pods, selectors and the PDB use app=<app>)."""
    image: str
    """Full image reference (registry host:port/repo:tag or @digest)."""
    replicas: int
    container_port: int
    service_port: int
    service_type: str = "ClusterIP"
    host_port: int = 0
    """0 = off."""
    max_surge: str = "25%"
    max_unavailable: str = "0"
    progress_deadline: int = 600
    """Deployment progressDeadlineSeconds: a rollout without progress that long fails (and `up` with it)."""
    min_available: int = 1
    resources: Resources = field(default_factory=lambda: Resources("100m", "128Mi", "500m", "256Mi"))
    probe_path: str = "/"
    probe_initial_delay: int = 5
    """Seconds before the first startup probe (the process cannot answer sooner)."""
    startup_seconds: int = 300
    """How long a start may take before the kubelet restarts the container (startup probe)."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Plain values; they may name the field and secret variables as $(NAME)."""
    env_from_fields: Mapping[str, str] = field(default_factory=dict)
    """Variable -> downward-API fieldPath (metadata.name, status.podIP), set before `env`."""
    env_from_secrets: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    """Variable -> (Secret name, key) in the namespace."""
    stateful: bool = False
    """A StatefulSet with a headless Service <app>-peers: stable per-pod DNS names
    (<app>-<n>.<app>-peers.<namespace>.svc.<domain>), e.g. for Eureka peers."""
    image_pull_secrets: Sequence[pulumi.Input[str]] = ()
    writable_dirs: Sequence[str] = ("/tmp",)
    """emptyDir mounts, since the root filesystem is read-only."""
    service_annotations: Mapping[str, str] = field(default_factory=dict)
    tolerations: Sequence[Mapping[str, Any]] = ()
    """Pod tolerations (nodeLoss: how long the pods stay on a NotReady or unreachable node)."""
    service_depends_on: Sequence[pulumi.Resource] = ()
    """What the Service waits for (a LoadBalancer Service: the implementation that gives it an address)."""


PRE_STOP_SECONDS = 5


def restricted_container() -> dict[str, Any]:
    """A container's securityContext under Pod Security `restricted`: non-root, read-only root
    filesystem, no privilege or escalation, every capability dropped."""
    return {"allowPrivilegeEscalation": False, "privileged": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}


def spread_over_nodes(labels: Mapping[str, str], per_revision: bool = True) -> dict[str, Any]:
    """Replicas on different nodes where there are; cordoned, lost or tainted nodes do not count
    (nodeTaintsPolicy: Honor), so a drain or a node loss never blocks scheduling.

    per_revision (Deployments): the skew is counted among the pods of the same ReplicaSet
    (matchLabelKeys pod-template-hash). Counting the old revision's pods too, a rollout could
    place every new pod on one node (the old ones elsewhere still counted), and once the old
    pods are gone a single node loss takes every replica."""
    spread: dict[str, Any] = {
        "maxSkew": 1,
        "topologyKey": "kubernetes.io/hostname",
        "whenUnsatisfiable": "DoNotSchedule",
        "nodeTaintsPolicy": "Honor",
        "labelSelector": {"matchLabels": dict(labels)},
    }
    if per_revision:
        spread["matchLabelKeys"] = ["pod-template-hash"]
    return spread


def _pod_spec(a: MicroserviceArgs, labels: Mapping[str, str]) -> dict[str, Any]:
    """The pod template's spec: one container, secure by default (see the module docstring)."""
    port: dict = {"name": "http", "containerPort": a.container_port, "protocol": "TCP"}
    if a.host_port:
        port["hostPort"] = a.host_port
    probe = {"httpGet": {"path": a.probe_path, "port": "http"}, "periodSeconds": 10, "timeoutSeconds": 3}
    container = {
        "name": a.app,
        "image": a.image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [port],
        "env": [
            *(env_from_field(k, v) for k, v in sorted(a.env_from_fields.items())),
            *({"name": k, "valueFrom": {"secretKeyRef": {"name": v[0], "key": v[1]}}} for k, v in sorted(a.env_from_secrets.items())),
            *({"name": k, "value": v} for k, v in sorted(a.env.items())),
        ],
        # A start is probed every 3 s from probe_initial_delay on, for up to startup_seconds: a
        # new pod (a rollout, a replacement after a node loss) takes traffic within 3 s of
        # answering, and a slow start (JVMs starting together on a busy host) is not killed by
        # liveness, which only begins once the start succeeded.
        "startupProbe": {**probe, "initialDelaySeconds": a.probe_initial_delay, "periodSeconds": 3, "failureThreshold": -(-a.startup_seconds // 3)},
        "readinessProbe": {**probe, "periodSeconds": 3, "failureThreshold": 3},
        "livenessProbe": {**probe, "failureThreshold": 6},
        "resources": {
            "requests": {"cpu": a.resources.cpu_request, "memory": a.resources.memory_request},
            "limits": {"cpu": a.resources.cpu_limit, "memory": a.resources.memory_limit},
        },
        "securityContext": restricted_container(),
        "volumeMounts": [{"name": f"writable-{i}", "mountPath": d} for i, d in enumerate(a.writable_dirs)],
        # Endpoints drop a terminating pod while it still serves: the process gets SIGTERM only
        # after this pause, so a rolling update or a scale-down loses no request in flight.
        "lifecycle": {"preStop": {"sleep": {"seconds": PRE_STOP_SECONDS}}},
    }
    pod_spec = {
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": PRE_STOP_SECONDS + 25,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        "volumes": [{"name": f"writable-{i}", "emptyDir": {"sizeLimit": "64Mi"}} for i in range(len(a.writable_dirs))],
        "topologySpreadConstraints": [spread_over_nodes(labels, per_revision=not a.stateful)],
    }
    if a.tolerations:
        pod_spec["tolerations"] = [dict(x) for x in a.tolerations]
    if a.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": s} for s in a.image_pull_secrets]
    return pod_spec


def _count(v: str, replicas: int, round_up: bool) -> int:
    """A rollout bound (an integer or a percentage of the replicas) as a pod count."""
    if v.endswith("%"):
        share = int(v[:-1]) * replicas
        return -(-share // 100) if round_up else share // 100
    return int(v)


def rollout_timeout(a: MicroserviceArgs) -> int:
    """Seconds `up` waits for a Deployment's rollout: the progress deadline once per wave of new
    pods (replicas / (maxSurge + maxUnavailable), as Kubernetes rounds them), plus one."""
    step = max(1, _count(a.max_surge, a.replicas, True) + _count(a.max_unavailable, a.replicas, False))
    waves = -(-a.replicas // step)
    return a.progress_deadline * (waves + 1)


def _int_or_str(v: str) -> int | str:
    return int(v) if v.isdigit() else v


class Microservice(pulumi.ComponentResource):
    """Deployment (or StatefulSet + headless Service) + Service + PodDisruptionBudget for one app.

    Outputs:
        deployment, service, pdb: the Kubernetes objects.
        service_name: the Service's name.
        endpoint: cluster-internal http://<service>.<namespace>.svc:<port>, or the load
            balancer's address when the Service is a LoadBalancer that has one.
    """

    def __init__(self, name: str, args: MicroserviceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vm-platform:apps:Microservice", name, None, opts)
        a = args
        labels = {"app": a.app}
        pod_spec = _pod_spec(a, labels)
        meta = {"namespace": a.namespace, "labels": labels}
        # Its own ServiceAccount, without a token (the app never calls the API): not the
        # namespace's default one, which anything else in the namespace may be granted.
        self.account = KubernetesObject(
            f"{name}-account",
            "ServiceAccount",
            metadata={**meta, "name": a.app},
            automountServiceAccountToken=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        pod_spec["serviceAccountName"] = self.account.metadata.apply(lambda m: m["name"])
        template = {"metadata": {"labels": labels}, "spec": pod_spec}
        if a.stateful:
            self.peers = KubernetesObject(
                f"{name}-peers",
                "Service",
                metadata={**meta, "name": f"{a.app}-peers"},
                # Peers resolve each other before they are ready (they become ready by syncing).
                spec={
                    "clusterIP": "None",
                    "publishNotReadyAddresses": True,
                    "selector": labels,
                    "ports": [{"name": "http", "port": a.container_port, "targetPort": "http", "protocol": "TCP"}],
                },
                opts=pulumi.ResourceOptions(parent=self),
            )
            # Pods roll one at a time from the highest ordinal, each waiting for the previous to be
            # ready (maxSurge has no meaning for fixed identities); Parallel starts them together.
            self.deployment = KubernetesObject(
                f"{name}-statefulset",
                "StatefulSet",
                metadata={**meta, "name": a.app},
                spec={
                    "replicas": a.replicas,
                    "serviceName": self.peers.metadata.apply(lambda m: m["name"]),
                    "podManagementPolicy": "Parallel",
                    "selector": {"matchLabels": labels},
                    "updateStrategy": {"type": "RollingUpdate"},
                    "template": template,
                },
                opts=pulumi.ResourceOptions(parent=self),
            )
        else:
            timeout = f"{rollout_timeout(a)}s"
            self.deployment = KubernetesObject(
                f"{name}-deployment",
                "Deployment",
                metadata={**meta, "name": a.app},
                spec={
                    "replicas": a.replicas,
                    "selector": {"matchLabels": labels},
                    "progressDeadlineSeconds": a.progress_deadline,
                    "strategy": {
                        "type": "RollingUpdate",
                        "rollingUpdate": {"maxSurge": _int_or_str(a.max_surge), "maxUnavailable": _int_or_str(a.max_unavailable)},
                    },
                    "template": template,
                },
                # The provider waits for the rollout without looking at the progress deadline:
                # bound its wait by the deadline per wave of new pods, so a stuck rollout fails
                # `up` soon after Kubernetes gives up on it (a timeout is no input: no diff).
                opts=pulumi.ResourceOptions(parent=self, custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout)),
            )
        self.service = KubernetesObject(
            f"{name}-service",
            "Service",
            metadata={**meta, "name": a.app, "annotations": dict(a.service_annotations)},
            spec={"type": a.service_type, "selector": labels, "ports": [{"name": "http", "port": a.service_port, "targetPort": "http", "protocol": "TCP"}]},
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(a.service_depends_on) or None),
        )
        self.pdb = KubernetesObject(
            f"{name}-pdb",
            "PodDisruptionBudget",
            metadata={**meta, "name": a.app},
            spec={"minAvailable": a.min_available, "selector": {"matchLabels": labels}},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.service_name = self.service.metadata.apply(lambda m: m["name"])
        internal = pulumi.Output.concat("http://", a.app, ".", pulumi.Output.from_input(a.namespace), ".svc:", str(a.service_port))
        if a.service_type == "LoadBalancer":
            lb = self.service.status.apply(_lb_address)
            self.endpoint = pulumi.Output.all(lb, internal).apply(lambda v: f"http://{v[0]}:{a.service_port}" if v[0] else v[1])
        else:
            self.endpoint = internal
        self.register_outputs({"service_name": self.service_name, "endpoint": self.endpoint})


def _lb_address(status: Mapping[str, Any] | None) -> str | None:
    """The first load-balancer ingress address of a Service status, if it has one yet."""
    ingress = ((status or {}).get("loadBalancer") or {}).get("ingress") or []
    return (ingress[0].get("ip") or ingress[0].get("hostname")) if ingress else None
