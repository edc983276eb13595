"""The Eureka server (Spring Cloud's service registry, port 8761): the platform's first
Microservice, as peers. Day-2 operations are config: eureka.image's tag is a rolling update,
eureka.replicas is scaling.

Replicas are a StatefulSet behind a headless Service, so each has a stable DNS name
(eurekaserver-<n>.eurekaserver-peers.<namespace>.svc.<domain>). Every replica finds its peers by
the Service's SRV records (refreshed every 15 s, so scaling changes no replica's settings; a
server drops its own URL), and eureka.instance.hostname is the pod's own stable name: a peer counts as an available replica only when the host in its service
URL equals its registered hostname (the "unavailable-replicas" trap). The read-only response
cache is off and the intervals are seconds, so a registration made on one replica shows on the
others within seconds instead of the 30-90 s defaults."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from .microservice import Microservice, MicroserviceArgs
from .settings import Settings

APP = "eurekaserver"


def peers_srv(settings: Settings) -> str:
    """The SRV name of the headless peers Service: one record per replica, its stable DNS name
    as the target (the servers read it: images/eureka-server SrvPeers.java)."""
    return f"_http._tcp.{APP}-peers.{settings.eureka.namespace}.svc.{settings.network.cluster_domain}"


def client_url(settings: Settings) -> str:
    """defaultZone of clients: the Eureka Service by its in-cluster name (only ready replicas
    behind it; the one a client registers with replicates to the others)."""
    e = settings.eureka
    return f"http://{APP}.{e.namespace}.svc.{settings.network.cluster_domain}:{e.service_port}/eureka/"


# Registration in seconds (Spring relaxed binding of eureka.* properties), for servers and clients.
FAST_REGISTRATION = {
    "EUREKA_INSTANCE_LEASERENEWALINTERVALINSECONDS": "5",
    "EUREKA_INSTANCE_LEASEEXPIRATIONDURATIONINSECONDS": "15",
    "EUREKA_CLIENT_INITIALINSTANCEINFOREPLICATIONINTERVALSECONDS": "2",
    "EUREKA_CLIENT_INSTANCEINFOREPLICATIONINTERVALSECONDS": "5",
    "EUREKA_CLIENT_REGISTRYFETCHINTERVALSECONDS": "5",
}


def instance_id(host: str, port: int) -> dict[str, str]:
    """eureka.instance.instance-id from the pod's own name, for servers and clients.

    Spring Cloud's default id is `<spring.cloud.client.hostname>:<app>:<port>`, and that hostname
    is a reverse lookup of the pod's address given 1 s (spring.cloud.inetutils.timeout-seconds).
    On a busy host a JVM starting takes longer, the hostname falls back to "localhost", and two
    replicas register under one id: the registry keeps one of them (seen in CI: only
    eurekaserver-0 listed for 300 s; reproduced with the timeout at 0). The pod's name is
    unique and known before the JVM starts."""
    return {"EUREKA_INSTANCE_INSTANCEID": f"{host}:{port}"}


@dataclass(frozen=True)
class EurekaServerArgs:
    settings: Settings
    """The validated stack settings."""
    namespace: pulumi.Input[str]
    """The namespace (created by PlatformNamespaces)."""
    image_pull_secrets: Sequence[pulumi.Input[str]] = ()
    """Pull secrets for the private registry, when it requires auth."""
    load_balancer: Sequence[pulumi.Resource] = ()
    """What the LoadBalancer Service waits for (MetalLB's pool and speakers), if anything."""


class EurekaServer(pulumi.ComponentResource):
    """Eureka server StatefulSet (app=eurekaserver), its headless peers Service, its Service
    (servicePort -> 8761) and PDB.

    Outputs:
        app: the Microservice (deployment = the StatefulSet, service, peers, pdb).
        endpoint: how clients outside reach it.
    """

    def __init__(self, name: str, args: EurekaServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vm-platform:apps:EurekaServer", name, None, opts)
        s = args.settings
        e = s.eureka
        annotations = {}
        if e.service_type == "LoadBalancer" and s.network.load_balancer == "external":
            # Bare VMs with the network's own implementation: don't block `up` on it forever.
            annotations["pulumi.com/timeoutSeconds"] = "300"
        own_name = f"$(POD_NAME).{APP}-peers.{e.namespace}.svc.{s.network.cluster_domain}"
        self.app = Microservice(
            f"{name}-app",
            MicroserviceArgs(
                namespace=args.namespace,
                app=APP,
                image=s.image_ref(e.image),
                replicas=e.replicas,
                container_port=e.container_port,
                service_port=e.service_port,
                service_type=e.service_type,
                host_port=e.host_port,
                max_surge=e.max_surge,
                max_unavailable=e.max_unavailable,
                tolerations=s.node_loss.tolerations(),
                min_available=e.min_available,
                resources=e.resources,
                probe_path="/actuator/health",
                stateful=True,
                env_from_fields={"POD_NAME": "metadata.name"},
                env={
                    "SERVER_PORT": str(e.container_port),
                    "EUREKA_INSTANCE_HOSTNAME": own_name,
                    "EUREKA_INSTANCE_PREFERIPADDRESS": "false",
                    "EUREKA_CLIENT_REGISTERWITHEUREKA": "true",
                    "EUREKA_CLIENT_FETCHREGISTRY": "true",
                    # Peers from DNS (SRV of the headless Service), so scaling changes no env.
                    "EUREKA_PEERS_SRV": peers_srv(s),
                    "EUREKA_SERVER_PEEREUREKANODESUPDATEINTERVALMS": "15000",
                    "EUREKA_SERVER_USEREADONLYRESPONSECACHE": "false",
                    "EUREKA_SERVER_WAITTIMEINMSWHENSYNCEMPTY": "0",
                    "EUREKA_SERVER_EVICTIONINTERVALTIMERINMS": "5000",
                    **FAST_REGISTRATION,
                    **instance_id(own_name, e.container_port),
                    "JAVA_TOOL_OPTIONS": "-XX:MaxRAMPercentage=70 -Djava.io.tmpdir=/tmp",
                },
                image_pull_secrets=args.image_pull_secrets,
                service_annotations=annotations,
                service_depends_on=args.load_balancer,
            ),
            pulumi.ResourceOptions(parent=self),
        )
        self.endpoint = self.app.endpoint
        self.register_outputs({"endpoint": self.endpoint})
