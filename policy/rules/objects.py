"""Rules for Kubernetes objects of any kind: no bare Pods, a namespace other than default on
every namespaced object, and current API versions."""

from __future__ import annotations

import re
from typing import Any

from .common import HIGH, MANDATORY, MEDIUM, UNKNOWN, Config, Report, declared, flag, get, rule, seq, strings
from .kube import K8S_TAGS, RELIABILITY_TAGS, k8s_api, ref


@rule(
    "no-bare-pods",
    "Pods are created by a controller (Deployment, StatefulSet, Job...), not bare.",
    MEDIUM,
    MANDATORY,
    "Wrap the pod spec in a Deployment (long-running) or a Job (run to completion).",
    tags=RELIABILITY_TAGS,
)
def validate_bare_pod(args: Any, report: Report, cfg: Config) -> None:
    """Pods are owned by a controller, not created bare."""
    if k8s_api(args.resource_type) != ("core", "v1", "Pod"):
        return
    owners = seq(args.props, "metadata", "ownerReferences")
    if owners is UNKNOWN or UNKNOWN in owners or any(get(o, "kind") for o in owners):
        return  # an owner (a ReplicaSet, Job, StatefulSet...) recreates it
    report(f"{ref(args)}: It is a bare Pod, which nothing recreates when its node fails or is drained. Run it from a Deployment, StatefulSet or Job.")


_BUILTIN_GROUPS = frozenset(
    {
        "core", "apps", "batch", "policy", "autoscaling", "extensions", "networking.k8s.io", "rbac.authorization.k8s.io",
        "discovery.k8s.io", "coordination.k8s.io", "events.k8s.io", "storage.k8s.io", "scheduling.k8s.io", "node.k8s.io",
        "admissionregistration.k8s.io", "apiextensions.k8s.io", "certificates.k8s.io", "flowcontrol.apiserver.k8s.io", "resource.k8s.io",
    }
)  # fmt: skip
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "StorageClass", "CustomResourceDefinition",
        "PriorityClass", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding", "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding", "APIService", "CSIDriver",
        "CSINode", "VolumeAttachment", "IngressClass", "RuntimeClass", "CertificateSigningRequest", "ClusterTrustBundle", "ComponentStatus",
        "FlowSchema", "PriorityLevelConfiguration", "PodSecurityPolicy", "DeviceClass", "ResourceSlice", "VolumeAttributesClass",
        "IPAddress", "ServiceCIDR", "TokenReview", "SubjectAccessReview", "SelfSubjectAccessReview", "SelfSubjectRulesReview", "SelfSubjectReview",
    }
)  # fmt: skip


@rule(
    "no-default-namespace",
    "Namespaced Kubernetes objects name a namespace, and not default.",
    MEDIUM,
    MANDATORY,
    "Set metadata.namespace to a namespace the platform creates (the namespaces list in the stack config).",
    settings={"forbiddenNamespaces": strings("Namespaces objects must not use.", ["default"])},
    tags=K8S_TAGS,
)
def validate_namespace(args: Any, report: Report, cfg: Config) -> None:
    """Namespaced objects name a namespace other than default."""
    api = k8s_api(args.resource_type)
    if api is None or api[0] not in _BUILTIN_GROUPS or api[2] in CLUSTER_SCOPED_KINDS:
        return
    ns = get(args.props, "metadata", "namespace")
    if ns is UNKNOWN:
        return
    forbidden = cfg.get("forbiddenNamespaces", ["default"])
    if not ns:
        report(
            f"{ref(args)}: It sets no metadata.namespace, so it lands in the provider's default namespace (usually default). Set metadata.namespace to the app's namespace."
        )
    elif ns in forbidden:
        report(f"{ref(args)}: It is in the namespace {ns}, which this stack reserves. Move it to the app's own namespace.")


# (group, version) -> the version to use instead
DEPRECATED_APIS: dict[tuple[str, str], str] = {
    ("extensions", "v1beta1"): "apps/v1 (workloads) or networking.k8s.io/v1 (Ingress, NetworkPolicy)",
    ("apps", "v1beta1"): "apps/v1",
    ("apps", "v1beta2"): "apps/v1",
    ("policy", "v1beta1"): "policy/v1 (PodDisruptionBudget; PodSecurityPolicy is gone: use Pod Security Admission)",
    ("batch", "v1beta1"): "batch/v1",
    ("batch", "v2alpha1"): "batch/v1",
    ("networking.k8s.io", "v1beta1"): "networking.k8s.io/v1",
    ("rbac.authorization.k8s.io", "v1beta1"): "rbac.authorization.k8s.io/v1",
    ("rbac.authorization.k8s.io", "v1alpha1"): "rbac.authorization.k8s.io/v1",
    ("autoscaling", "v2beta1"): "autoscaling/v2",
    ("autoscaling", "v2beta2"): "autoscaling/v2",
    ("storage.k8s.io", "v1beta1"): "storage.k8s.io/v1",
    ("admissionregistration.k8s.io", "v1beta1"): "admissionregistration.k8s.io/v1",
    ("apiextensions.k8s.io", "v1beta1"): "apiextensions.k8s.io/v1",
    ("scheduling.k8s.io", "v1beta1"): "scheduling.k8s.io/v1",
    ("scheduling.k8s.io", "v1alpha1"): "scheduling.k8s.io/v1",
    ("coordination.k8s.io", "v1beta1"): "coordination.k8s.io/v1",
    ("discovery.k8s.io", "v1beta1"): "discovery.k8s.io/v1",
    ("events.k8s.io", "v1beta1"): "events.k8s.io/v1",
    ("certificates.k8s.io", "v1beta1"): "certificates.k8s.io/v1",
    ("node.k8s.io", "v1beta1"): "node.k8s.io/v1",
    ("flowcontrol.apiserver.k8s.io", "v1beta1"): "flowcontrol.apiserver.k8s.io/v1",
    ("flowcontrol.apiserver.k8s.io", "v1beta2"): "flowcontrol.apiserver.k8s.io/v1",
    ("flowcontrol.apiserver.k8s.io", "v1beta3"): "flowcontrol.apiserver.k8s.io/v1",
}


@rule(
    "deprecated-api-version",
    "Kubernetes objects use current API versions (no extensions/v1beta1, apps/v1beta1/2, policy/v1beta1, batch/v1beta1...).",
    HIGH,
    MANDATORY,
    "Switch the resource to the stable API version (e.g. k8s.apps.v1.Deployment, k8s.policy.v1.PodDisruptionBudget, k8s.batch.v1.CronJob).",
    settings={"flagAlphaBeta": flag("Also flag every other alpha/beta version of a built-in group.", False)},
    tags=K8S_TAGS,
)
def validate_api_version(args: Any, report: Report, cfg: Config) -> None:
    """Objects use current API versions."""
    api = k8s_api(args.resource_type)
    if api is None:
        return
    group, version, kind = api
    instead = DEPRECATED_APIS.get((group, version))
    if instead:
        report(f"{ref(args)}: It uses the API version {group}/{version}, which is deprecated or removed in current Kubernetes. Use {instead} for {kind}.")
    elif cfg.get("flagAlphaBeta", False) and re.search(r"v\d+(alpha|beta)\d+$", version) and group in _BUILTIN_GROUPS:
        report(f"{ref(args)}: It uses the pre-release API version {group}/{version}. Use a stable (v1/v2) version of {kind}.")


RULES = declared(__name__)
