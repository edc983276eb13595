"""The users' own microservices (`services:` in the stack config), each a Microservice.

A service with eurekaClient: true gets the platform's Eureka peers as its defaultZone, its pod
IP as the address it registers (prefer-ip-address), its name as spring.application.name and
registration intervals of seconds; clients talk to the headless peers, not to the
LoadBalancer. secretEnv variables come from the Secrets declared under `secrets`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi

from .eureka import FAST_REGISTRATION, client_url, instance_id
from .microservice import Microservice, MicroserviceArgs
from .settings import ServiceSettings, Settings


def eureka_client_env(settings: Settings, svc: ServiceSettings) -> dict[str, str]:
    return {
        "SPRING_APPLICATION_NAME": svc.name,
        "EUREKA_CLIENT_SERVICEURL_DEFAULTZONE": client_url(settings),
        "EUREKA_INSTANCE_PREFERIPADDRESS": "true",
        "EUREKA_INSTANCE_IPADDRESS": "$(POD_IP)",
        **FAST_REGISTRATION,
        **instance_id("$(POD_NAME)", svc.port),
    }


def user_services(
    settings: Settings,
    namespaces: Mapping[str, pulumi.Output[str]],
    pull_secrets: Mapping[str, Sequence[pulumi.Output[str]]],
    after: Sequence[pulumi.Resource],
    load_balancer: Sequence[pulumi.Resource],
    opts: pulumi.ResourceOptions,
) -> dict[str, Microservice]:
    """One Microservice per `services` entry; `after`: what their pods need first (Secrets, Eureka)."""
    out: dict[str, Microservice] = {}
    for svc in settings.services:
        env = {"SERVER_PORT": str(svc.port), "JAVA_TOOL_OPTIONS": "-XX:MaxRAMPercentage=70 -Djava.io.tmpdir=/tmp", **svc.env}
        fields = {"POD_NAME": "metadata.name", "POD_IP": "status.podIP"}
        if svc.eureka_client:
            env = {**eureka_client_env(settings, svc), **env}
        out[svc.name] = Microservice(
            f"service-{svc.name}",
            MicroserviceArgs(
                namespace=namespaces[svc.namespace],
                app=svc.name,
                image=settings.image_ref(svc.image),
                replicas=svc.replicas,
                container_port=svc.port,
                service_port=svc.service_port,
                service_type=svc.service_type,
                max_surge=svc.max_surge,
                max_unavailable=svc.max_unavailable,
                tolerations=settings.node_loss.tolerations(),
                progress_deadline=svc.progress_deadline,
                min_available=svc.min_available,
                resources=svc.resources,
                probe_path=svc.probe_path,
                env=env,
                env_from_fields=fields,
                env_from_secrets={k: tuple(v.split("/", 1)) for k, v in svc.secret_env.items()},  # type: ignore[misc]
                image_pull_secrets=pull_secrets.get(svc.namespace, ()),
                service_depends_on=load_balancer if svc.service_type == "LoadBalancer" else (),
            ),
            pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=list(after))),
        )
    return out
