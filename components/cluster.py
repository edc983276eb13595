"""The cluster: a control plane, its workers, and an explicit Kubernetes provider built from the
cluster's kubeconfig (a secret Output) with a stable cluster identifier."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from .control_plane import ControlPlane, ControlPlaneArgs
from .previous import Renewals, last_deployment
from .registry import ImageRegistry, ImageRegistryArgs
from .settings import Settings
from .worker import WorkerNode, WorkerNodeArgs


@dataclass(frozen=True)
class ClusterArgs:
    settings: Settings
    """The validated stack settings."""


class Cluster(pulumi.ComponentResource):
    """Control plane + private registry + workers, bootstrapped over SSH.

    Outputs:
        api_server_endpoint: https://<control-plane address>:<port>.
        kubeconfig: admin kubeconfig (secret).
        registry_endpoint: host:port of the private registry.
        node_names: the workers' node names.
        kubernetes_version: the stack's Kubernetes version, once every host runs it (the next
            preview checks a version change against it).
        provider: the Kubernetes provider for workloads on this cluster.
        ready: the workers' readiness steps (workloads depend on them).
        certificate_expiry: host -> certificate name -> notAfter (UTC, ISO 8601), for every
            certificate the bootstrap made (validity: pki.caValidityDays, pki.certValidityDays).
        certificate_renewals: host -> the mark of its last renewal (components/previous.py), for
            the next run to compare with.
    """

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vm-platform:cluster:Cluster", name, None, opts)
        s = args.settings
        previous = last_deployment(s, self)
        # From the last deployment's certificateExpiry: leaf certificates near expiry are renewed
        # (the preview says so, with the restarts), CAs near expiry get a warning.
        self.renewals = Renewals(s, previous, self)
        self.control_plane = ControlPlane(s.control_plane.name, ControlPlaneArgs(s, previous, self.renewals), pulumi.ResourceOptions(parent=self))
        self.registry = ImageRegistry(f"{s.control_plane.name}-registry", ImageRegistryArgs(s, self.control_plane), pulumi.ResourceOptions(parent=self))
        # One worker at a time through a Kubernetes upgrade: each waits for the one before it.
        self.workers: list[WorkerNode] = []
        for w in s.workers:
            after = (self.workers[-1].upgraded,) if self.workers else ()
            self.workers.append(
                WorkerNode(
                    w.name,
                    WorkerNodeArgs(s, w, self.control_plane, self.registry.credentials, upgrade_after=after),
                    pulumi.ResourceOptions(parent=self, depends_on=[self.registry.service]),
                )
            )
        # The registry and the workers add steps on the control-plane host: its bundle is final now.
        self.control_plane.steps.done()
        self.api_server_endpoint = self.control_plane.api_server_endpoint
        self.kubeconfig = self.control_plane.kubeconfig
        self.registry_endpoint = self.registry.endpoint
        self.node_names = [w.node_name for w in self.workers]
        # Known once the control plane and every worker run it: a failed upgrade keeps the old one.
        self.kubernetes_version = pulumi.Output.all(
            self.control_plane.upgrade_gate.stdout, *(step.stdout for step in self.control_plane.upgraded), *(w.upgraded.stdout for w in self.workers)
        ).apply(lambda _: s.kubernetes_version)
        self.ready = [w.ready for w in self.workers]
        hosts = [s.control_plane.name, *(w.node_name for w in self.workers)]
        expiry = [self.control_plane.certificate_expiry, *(w.certificate_expiry for w in self.workers)]
        self.certificate_expiry = pulumi.Output.all(*expiry).apply(lambda per_host: dict(zip(hosts, per_host, strict=True)))
        self.certificate_renewals = self.renewals.output()
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            # Stable across new kubeconfigs (e.g. re-issued certs): no replacement of every object.
            cluster_identifier=s.cluster_id,
            enable_server_side_apply=True,
            # Workloads use this provider, so they wait for Ready nodes and the pushed images.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*self.ready, *self.registry.images_pushed]),
        )
        self.register_outputs(
            {
                "api_server_endpoint": self.api_server_endpoint,
                "kubeconfig": self.kubeconfig,
                "registry_endpoint": self.registry_endpoint,
                "node_names": self.node_names,
                "kubernetes_version": self.kubernetes_version,
                "certificate_expiry": self.certificate_expiry,
                "certificate_renewals": self.certificate_renewals,
            }
        )
