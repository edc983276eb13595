"""Kubernetes objects for the official Kubernetes provider, without the typed SDK classes.

Why: importing `pulumi_kubernetes.core.v1` executes about 4 MB of generated input/output
classes, 0.6-0.8 s of every preview on a 2-core machine (measured with `python -X importtime`),
more than the rest of the program. The objects here register exactly what the typed classes
register: the same type token (so the same URN and the same provider code path), `apiVersion`
and `kind` filled in, the body fields in the API's camelCase (the typed classes translate their
snake_case names to these), the same secret handling for Secret data, and the same output
properties. Only the Provider comes from the SDK (its module is small).

Outputs are plain dicts in the API's own shape (`obj.status["loadBalancer"]["ingress"]`), not
typed objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes


@dataclass(frozen=True)
class Kind:
    api_version: str
    module: str  # the type token's module, e.g. core/v1
    fields: tuple[str, ...]  # top-level body fields besides apiVersion, kind and metadata
    status: bool = True  # the object has a status (an output property)
    old_types: tuple[str, ...] = ()  # the typed class's aliases (earlier API versions)


_RBAC = "rbac.authorization.k8s.io/v1"
_RBAC_OLD = ("rbac.authorization.k8s.io/v1alpha1", "rbac.authorization.k8s.io/v1beta1")
KINDS: dict[str, Kind] = {
    "Namespace": Kind("v1", "core/v1", ("spec",)),
    "Secret": Kind("v1", "core/v1", ("data", "immutable", "stringData", "type"), status=False),
    "ConfigMap": Kind("v1", "core/v1", ("binaryData", "data", "immutable"), status=False),
    "ServiceAccount": Kind("v1", "core/v1", ("automountServiceAccountToken", "imagePullSecrets", "secrets"), status=False),
    "Service": Kind("v1", "core/v1", ("spec",)),
    "NodePatch": Kind("v1", "core/v1", ("spec",)),
    "Deployment": Kind("apps/v1", "apps/v1", ("spec",), old_types=("apps/v1beta1", "apps/v1beta2", "extensions/v1beta1")),
    "StatefulSet": Kind("apps/v1", "apps/v1", ("spec",), old_types=("apps/v1beta1", "apps/v1beta2")),
    "DaemonSet": Kind("apps/v1", "apps/v1", ("spec",), old_types=("apps/v1beta2", "extensions/v1beta1")),
    "PodDisruptionBudget": Kind("policy/v1", "policy/v1", ("spec",), old_types=("policy/v1beta1",)),
    "ClusterRole": Kind(_RBAC, _RBAC, ("aggregationRule", "rules"), status=False, old_types=_RBAC_OLD),
    "ClusterRoleBinding": Kind(_RBAC, _RBAC, ("roleRef", "subjects"), status=False, old_types=_RBAC_OLD),
    "Role": Kind(_RBAC, _RBAC, ("rules",), status=False, old_types=_RBAC_OLD),
    "RoleBinding": Kind(_RBAC, _RBAC, ("roleRef", "subjects"), status=False, old_types=_RBAC_OLD),
    "CustomResourceDefinition": Kind("apiextensions.k8s.io/v1", "apiextensions.k8s.io/v1", ("spec",), old_types=("apiextensions.k8s.io/v1beta1",)),
    "NetworkPolicy": Kind("networking.k8s.io/v1", "networking.k8s.io/v1", ("spec",), old_types=("extensions/v1beta1",)),
    # Custom resources (apiextensions.CustomResource registers kubernetes:<apiVersion>:<kind>).
    "IPAddressPool": Kind("metallb.io/v1beta1", "metallb.io/v1beta1", ("spec",), status=False),
    "L2Advertisement": Kind("metallb.io/v1beta1", "metallb.io/v1beta1", ("spec",), status=False),
}
# Fields the typed Secret class stores as secrets (inputs and outputs).
SECRET_FIELDS = ("data", "stringData")


# Every object is applied with force: the stack's config is the authority over the fields it sets.
# A run killed after the API server took an object, before the state recorded it, leaves that run's
# field manager co-owning every field (the next run's create is an upsert under a new manager, with
# the same values); without force, the first change of any field then conflicts with the dead
# run's manager ("conflict with \"pulumi-kubernetes-...\": .spec.replicas", seen when scaling after
# the kill chain). With force, the change takes the field over.
PATCH_FORCE = {"pulumi.com/patchForce": "true"}


def forced(metadata: pulumi.Input[Mapping[str, Any]]) -> pulumi.Input[Mapping[str, Any]]:
    """metadata with PATCH_FORCE among its annotations (a plain dict stays a plain dict, so the
    preview sees the same known values)."""

    def add(m: Mapping[str, Any]) -> dict[str, Any]:
        return {**m, "annotations": {**(m.get("annotations") or {}), **PATCH_FORCE}}

    if isinstance(metadata, Mapping) and not isinstance(metadata.get("annotations"), pulumi.Output):
        return add(metadata)
    return pulumi.Output.from_input(metadata).apply(add)


def env_from_field(name: str, field_path: str) -> dict[str, Any]:
    """A container variable from the downward API (metadata.name, status.podIP, ...).

    `apiVersion` is spelt out although the API server defaults it to v1: a fieldRef is an atomic
    struct under server-side apply, so an apply without it differs from the stored (defaulted)
    value and conflicts with any other field manager of the object. That other manager is a run
    killed after the API server took the object and before the state recorded it: the next run
    creates the object again (an upsert under a new manager) and failed with "Apply failed with 1
    conflict: ... env[name=\"POD_NAME\"].valueFrom.fieldRef"."""
    return {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": field_path}}}


class KubernetesObject(pulumi.CustomResource):
    """One Kubernetes object of a kind in KINDS, managed by the Kubernetes provider.

    Attributes (Outputs, as the provider returns them): metadata, status, and the kind's body
    fields (spec, data, ...).
    """

    metadata: pulumi.Output[Any]
    status: pulumi.Output[Any]
    spec: pulumi.Output[Any]

    def __init__(
        self,
        name: str,
        kind: str,
        metadata: pulumi.Input[Mapping[str, Any]],
        opts: pulumi.ResourceOptions | None = None,
        **body: Any,
    ) -> None:
        k = KINDS.get(kind)
        if k is None:
            raise ValueError(f"unsupported kind {kind!r}: add it to components.k8s.KINDS")
        unknown = sorted(set(body) - set(k.fields))
        if unknown:
            raise ValueError(f"{kind} has no top-level field(s) {', '.join(unknown)} (expected: {', '.join(k.fields)})")
        secret = SECRET_FIELDS if kind == "Secret" else ()
        props: dict[str, Any] = {"apiVersion": k.api_version, "kind": kind.removesuffix("Patch"), "metadata": forced(metadata)}
        for f in k.fields:
            value = body.get(f)
            props[f] = pulumi.Output.secret(value) if f in secret and value is not None else value
        if k.status:
            props["status"] = None
        defaults = pulumi.ResourceOptions(
            version=pulumi_kubernetes._utilities.get_version(),
            aliases=[pulumi.Alias(type_=f"kubernetes:{old}:{kind}") for old in k.old_types] or None,
            additional_secret_outputs=list(secret) or None,
        )
        super().__init__(f"kubernetes:{k.module}:{kind}", name, props, pulumi.ResourceOptions.merge(defaults, opts))
