"""Namespaces the platform manages, the Kubernetes Secrets from secret config, and the pull
secret for the private registry when it requires auth."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import pulumi

from .k8s import KubernetesObject
from .settings import Settings

PULL_SECRET = "vm-platform-registry"


@dataclass(frozen=True)
class PlatformNamespacesArgs:
    settings: Settings
    """The validated stack settings."""
    registry_credentials: pulumi.Output[tuple[str, str]] | None = None
    """(user, password) of the private registry, when it requires auth."""


def docker_config(registry: str, user: str, password: str) -> str:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    return json.dumps({"auths": {registry: {"username": user, "password": password, "auth": auth}}})


def pull_secret(
    name: str,
    namespace: pulumi.Input[str],
    settings: Settings,
    credentials: pulumi.Output[tuple[str, str]],
    parent: pulumi.Resource,
    after: pulumi.Resource | None = None,
) -> pulumi.Output[str]:
    """The registry pull secret in `namespace` (its data derives from the secret credentials)."""
    cfg = credentials.apply(lambda c: docker_config(settings.registry_host, c[0], c[1]))
    pull = KubernetesObject(
        name,
        "Secret",
        metadata={"name": PULL_SECRET, "namespace": namespace},
        type="kubernetes.io/dockerconfigjson",
        stringData={".dockerconfigjson": cfg},
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[after] if after else None),
    )
    return pull.metadata.apply(lambda m: m["name"])


class PlatformNamespaces(pulumi.ComponentResource):
    """Namespaces, application Secrets and registry pull secrets.

    Outputs:
        names: namespace name -> the namespace's metadata.name Output.
        pull_secrets: namespace -> name of its registry pull secret (empty without auth).
    """

    def __init__(self, name: str, args: PlatformNamespacesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("vm-platform:apps:PlatformNamespaces", name, None, opts)
        s = args.settings
        self.namespaces: dict[str, KubernetesObject] = {}
        self.names: dict[str, pulumi.Output[str]] = {}
        self.pull_secrets: dict[str, list[pulumi.Output[str]]] = {}
        for ns in s.namespaces:
            obj = KubernetesObject(
                f"{name}-{ns}",
                "Namespace",
                metadata={"name": ns, "labels": {"app.kubernetes.io/managed-by": "vm-platform", "pod-security.kubernetes.io/enforce": "restricted"}},
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.namespaces[ns] = obj
            self.names[ns] = obj.metadata.apply(lambda m: m["name"])
            self.pull_secrets[ns] = []
            if args.registry_credentials is not None:
                self.pull_secrets[ns].append(pull_secret(f"{name}-{ns}-pull", self.names[ns], s, args.registry_credentials, self))
        self.secrets = []
        for sec in s.secrets:
            self.secrets.append(
                KubernetesObject(
                    f"{name}-secret-{sec.namespace}-{sec.name}",
                    "Secret",
                    metadata={"name": sec.name, "namespace": self.names[sec.namespace]},
                    type="Opaque",
                    stringData={k: v.output() for k, v in sorted(sec.data.items())},
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
        self.register_outputs({"names": self.names})
