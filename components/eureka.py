"""The Eureka server (Spring Cloud's service registry, port 8761): the platform's first
Microservice. Day-2 operations are config: eureka.image's tag is a rolling update,
eureka.replicas is scaling."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from .microservice import Microservice, MicroserviceArgs
from .settings import Settings


@dataclass(frozen=True)
class EurekaServerArgs:
    settings: Settings
    """The validated stack settings."""
    namespace: pulumi.Input[str]
    """The namespace (created by PlatformNamespaces)."""
    image_pull_secrets: Sequence[pulumi.Input[str]] = ()
    """Pull secrets for the private registry, when it requires auth."""


class EurekaServer(pulumi.ComponentResource):
    """Eureka server Deployment (app=eurekaserver), its Service (servicePort -> 8761) and PDB.

    Outputs:
        app: the Microservice (deployment, service, pdb).
        endpoint: how clients reach it.
    """

    def __init__(self, name: str, args: EurekaServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vm-platform:apps:EurekaServer", name, None, opts)
        e = args.settings.eureka
        annotations = {}
        if e.service_type == "LoadBalancer":
            # Bare VMs: an external implementation assigns the address; don't block `up` on it.
            annotations["pulumi.com/timeoutSeconds"] = "300"
        self.app = Microservice(
            f"{name}-app",
            MicroserviceArgs(
                namespace=args.namespace,
                app="eurekaserver",
                image=args.settings.image_ref(e.image),
                replicas=e.replicas,
                container_port=e.container_port,
                service_port=e.service_port,
                service_type=e.service_type,
                host_port=e.host_port,
                max_surge=e.max_surge,
                max_unavailable=e.max_unavailable,
                min_available=e.min_available,
                resources=e.resources,
                probe_path="/actuator/health",
                probe_initial_delay=20,
                env={
                    "SERVER_PORT": str(e.container_port),
                    # A standalone registry: it neither registers with nor fetches from peers.
                    "EUREKA_CLIENT_REGISTER_WITH_EUREKA": "false",
                    "EUREKA_CLIENT_FETCH_REGISTRY": "false",
                    "JAVA_TOOL_OPTIONS": "-XX:MaxRAMPercentage=70 -Djava.io.tmpdir=/tmp",
                },
                image_pull_secrets=args.image_pull_secrets,
                service_annotations=annotations,
            ),
            pulumi.ResourceOptions(parent=self),
        )
        self.endpoint = self.app.endpoint
        self.register_outputs({"endpoint": self.endpoint})
