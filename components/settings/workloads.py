"""What the platform runs in the cluster: the Eureka server, namespaces and Secrets."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .core import Described, Edit, Reader, Secret
from .fields import MISSING, REMOVE, Bool, Choice, Entries, FreeMap, Int, Names, Ref, SecretMap, Section, Spec, Text, setting
from .hosts import DNS_LABEL
from .network import DNS_SUBDOMAIN
from .platform import eureka_image, example_image
from .registry import Image

SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")
BUILTIN_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
CPU = r"\d+m|\d+(\.\d+)?"
MEMORY = r"\d+(Ki|Mi|Gi|Ti|k|M|G|T)?"
PERCENT_OR_INT = r"\d+|\d{1,3}%"
SECRET_KEY = r"[-._a-zA-Z0-9]+"


# coerce: `pulumi config set --path ... 1` stores the number 1.
def _cpu(expected: str) -> Text:
    return Text(CPU, expected, shape="CPU quantity", coerce=True)


def _memory(expected: str) -> Text:
    return Text(MEMORY, expected, shape="memory quantity", coerce=True)


@dataclass(frozen=True)
class Resources:
    """Requests and limits of a container (each limit at least its request)."""

    cpu_request: str = setting(_cpu("a CPU quantity such as {default}"), "250m", "CPU request", key="requests.cpu")
    memory_request: str = setting(_memory("a memory quantity such as {default}"), "384Mi", "memory request", key="requests.memory")
    cpu_limit: str = setting(_cpu("a CPU quantity such as {default}"), "1", "CPU limit", key="limits.cpu")
    memory_limit: str = setting(_memory("a memory quantity such as {default}"), "512Mi", "memory limit", key="limits.memory")


def _listed_images(r: Reader, path: str) -> list[str]:
    """Images registry.images provides, other than the pause image: what eureka.image can be."""
    listed = r.get("registry.images")
    names = [i.get("name") for i in listed if isinstance(i, Mapping)] if isinstance(listed, list) else []
    return [n for n in names if isinstance(n, str) and n != r.get("pauseImage")] + [eureka_image()]


_ROLLOUT = Text(PERCENT_OR_INT, "an integer or a percentage such as 25%", shape="integer or percentage", coerce=True)


@dataclass(frozen=True)
class EurekaSettings:
    """The Eureka server: a StatefulSet (stable peer names), its Services and PodDisruptionBudget."""

    namespace: str = setting(Text(DNS_LABEL, "a namespace name"), "platform", "namespace of the Eureka server (created by the platform)")
    image: str = setting(
        Image("an image in the private registry as repo:tag (not latest) or repo@sha256:..."),
        doc="repo:tag (not latest) or repo@sha256:... inside the private registry; must be in registry.images",
        example=_listed_images,
    )
    replicas: int = setting(Int(0, 100), 2, "replicas of the StatefulSet")
    service_type: str = setting(Choice(*SERVICE_TYPES), "ClusterIP", "Service type (LoadBalancer needs network.loadBalancer metallb or external)")
    service_port: int = setting(Int(1, 65535), 80, "Service port")
    container_port: int = setting(Int(1, 65535), 8761, "container port")
    host_port: int = setting(Int(0, 65535), 0, "host port on each node (0 = off; then at most one replica per schedulable worker)")
    max_surge: str = setting(_ROLLOUT, "25%", "rolling update: extra pods allowed")
    max_unavailable: str = setting(_ROLLOUT, "0", "rolling update: pods that may be missing")
    min_available: int = setting(Int(0, 100), 1, "PodDisruptionBudget minAvailable (fewer than replicas, so a node can be drained)")
    resources: Resources = setting(Section(Resources), doc="container requests and limits")


@dataclass(frozen=True)
class AppSecret:
    """A Kubernetes Secret whose values come from secret config (never from plaintext)."""

    name: str  # the key under `secrets`
    namespace: str = setting(Text(DNS_LABEL, "a namespace name"), Ref("eureka.namespace"), "namespace of the Secret (one the platform manages)")
    data: Mapping[str, Secret] = setting(
        SecretMap(SECRET_KEY, "a map of key to secret value"),
        {},
        "key -> value, each set with `pulumi config set --path --secret secrets.<name>.data.<key>`",
        custom=True,
    )


ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
SECRET_REF = rf"{DNS_SUBDOMAIN}/{SECRET_KEY}"


@dataclass(frozen=True)
class ServiceSettings:
    """One of the users' own microservices: a Deployment, its Service and PodDisruptionBudget."""

    name: str  # the key under `services`: the app label, the Deployment's and the Service's name
    image: str = setting(
        Image("an image in the private registry as repo:tag (not latest) or repo@sha256:..."),
        doc="repo:tag (not latest) or repo@sha256:... inside the private registry; must be in registry.images",
        example=[example_image()],
    )
    namespace: str = setting(Text(DNS_LABEL, "a namespace name"), Ref("eureka.namespace"), "namespace (one the platform manages)")
    replicas: int = setting(Int(0, 100), 2, "replicas of the Deployment")
    port: int = setting(Int(1, 65535), 8080, "container port")
    service_port: int = setting(Int(1, 65535), 80, "Service port")
    service_type: str = setting(Choice(*SERVICE_TYPES), "ClusterIP", "Service type")
    env: Mapping[str, str] = setting(FreeMap(ENV_NAME, "a map of variable name to value"), {}, "environment variables (plain values)")
    secret_env: Mapping[str, str] = setting(
        FreeMap(ENV_NAME, "a map of variable name to <secret>/<key>"), {}, "environment variables from a Secret in `secrets`: VAR: <secret>/<key>"
    )
    probe_path: str = setting(Text(r"/\S*", "an absolute URL path"), "/actuator/health", "HTTP path of the readiness and liveness probes")
    eureka_client: bool = setting(Bool(), False, "registers with the platform's Eureka: its peers' URLs and second-scale intervals are set")
    egress: tuple[str, ...] = setting(
        Names(r"(\d{1,3}\.){3}\d{1,3}/\d{1,2}", "a list of IPv4 networks in CIDR form", shape="list of CIDRs"),
        (),
        "networks the service may connect to on any port, besides DNS and Eureka (enforced with network.policyEnforcer vmp-netpol)",
    )
    calls: tuple[str, ...] = setting(
        Names(DNS_LABEL, "a list of service names under `services`", shape="list of names"),
        (),
        "other services under `services` this one connects to, on their container port (enforced with network.policyEnforcer vmp-netpol)",
    )
    max_surge: str = setting(_ROLLOUT, "25%", "rolling update: extra pods allowed")
    max_unavailable: str = setting(_ROLLOUT, "0", "rolling update: pods that may be missing")
    progress_deadline: int = setting(
        Int(10, 3600), 180, "rolling update: seconds without a new pod becoming ready before the rollout stops and `up` fails (the old pods keep serving)"
    )
    min_available: int = setting(Int(0, 100), 1, "PodDisruptionBudget minAvailable (fewer than replicas, so a node can be drained)")
    resources: Resources = setting(Section(Resources), doc="container requests and limits")


SERVICES = Spec(Entries(ServiceSettings), {}, "the users' own microservices, by name", custom=True)

NAMESPACES = Spec(
    Names(None, "a list", shape="list of names"),
    (),
    "namespaces the platform creates (Pod Security restricted); the Eureka namespace is added",
    example=["platform"],
    custom=True,
)
SECRETS = Spec(Entries(AppSecret), {}, "Kubernetes Secrets from secret config", custom=True)


def parse_eureka(r: Reader) -> EurekaSettings:
    return EurekaSettings(**r.section(EurekaSettings, "eureka"), resources=Resources(**r.section(Resources, "eureka.resources")))


def _as_namespace(name: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63] or "platform"


def parse_namespaces(r: Reader, eureka_namespace: str | None) -> tuple[str, ...]:
    names = r.read("namespaces", NAMESPACES) or ()
    namespaces: list[str] = []
    for i, n in enumerate(names):
        path = f"namespaces[{i}]"
        if not (isinstance(n, str) and re.fullmatch(DNS_LABEL, n)):
            r.problem(path, "a namespace name (DNS label)", n, *([_as_namespace(n)] if isinstance(n, str) else []), fixes=[(Edit(path, REMOVE),)])
        elif n in namespaces:
            r.problem(path, "a namespace listed once", n, fixes=[(Edit(path, REMOVE),)])
        elif n in BUILTIN_NAMESPACES:
            r.problem(path, "a namespace the platform creates (not a built-in one)", n, fixes=[(Edit(path, REMOVE),), (Edit(path, "platform"),)])
        else:
            namespaces.append(n)
    if eureka_namespace and eureka_namespace not in namespaces:
        namespaces.append(eureka_namespace)
    return tuple(namespaces)


def parse_secrets(r: Reader, default_namespace: str | None) -> tuple[AppSecret, ...]:
    raw_secrets = r.get("secrets")
    if raw_secrets is MISSING:
        return ()
    if not isinstance(raw_secrets, Mapping):
        r.problem("secrets", "a map of secret name to {namespace, data}", raw_secrets, fixes=[(Edit("secrets", REMOVE),)])
        return ()
    secrets: list[AppSecret] = []
    for sname, spec in raw_secrets.items():
        path = f"secrets.{sname}"
        if not re.fullmatch(DNS_SUBDOMAIN, str(sname)):
            r.problem(path, "a Secret name (DNS subdomain)", sname, fixes=[(Edit(path, REMOVE),)])
            continue
        if not isinstance(spec, Mapping):
            r.problem(path, "an object {namespace, data}", spec, {"namespace": default_namespace or "platform"})
            continue
        namespace = spec.get("namespace", default_namespace)
        data: dict[str, Secret] = {}
        raw_data = spec.get("data") or {}
        if not isinstance(raw_data, Mapping):
            r.problem(f"{path}.data", "a map of key to secret value", raw_data, fixes=[(Edit(f"{path}.data", REMOVE),)])
            raw_data = {}
        for k, v in raw_data.items():
            if not re.fullmatch(SECRET_KEY, str(k)):
                renamed = re.sub(r"[^-._a-zA-Z0-9]+", "-", str(k)).strip("-") or "password"
                rename = (Edit(f"{path}.data.{k}", REMOVE), Edit(f"{path}.data.{renamed}", v, secret=True))
                r.problem(f"{path}.data", "keys of letters, digits, '-', '_' and '.'", k, fixes=[rename])
            elif not isinstance(v, Secret):
                r.secret_problem(f"{path}.data.{k}", "a value stored as a secret", Described("a plaintext value"))
            else:
                data[k] = v
        secrets.append(AppSecret(name=sname, namespace=namespace, data=data))
    return tuple(secrets)


def parse_services(r: Reader, default_namespace: str | None) -> tuple[ServiceSettings, ...]:
    raw = r.get("services")
    if raw is MISSING:
        return ()
    if not isinstance(raw, Mapping):
        r.problem("services", "a map of service name to its settings", raw, fixes=[(Edit("services", REMOVE),)])
        return ()
    out: list[ServiceSettings] = []
    for name in raw:
        path = f"services.{name}"
        if not re.fullmatch(DNS_LABEL, str(name)):
            r.problem(path, "a service name (DNS label: lower-case letters, digits, '-')", name, fixes=[(Edit(path, REMOVE),)])
            continue
        if not isinstance(raw[name], Mapping):
            r.problem(path, "an object {image, replicas, port, ...}", raw[name], {"image": example_image()})
            continue
        fields = r.section(ServiceSettings, path)
        if isinstance(fields.get("namespace"), Ref):
            fields["namespace"] = default_namespace
        out.append(ServiceSettings(name=str(name), **fields, resources=Resources(**r.section(Resources, f"{path}.resources"))))
    return tuple(out)
