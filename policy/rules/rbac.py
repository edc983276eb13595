"""RBAC rules: no wildcard grants, no bindings to cluster-admin."""

from __future__ import annotations

from typing import Any

from .common import CRITICAL, HIGH, MANDATORY, UNKNOWN, Config, Report, declared, get, rule, seq, strings
from .kube import k8s_api, ref

_TAGS = ("kubernetes", "rbac")


def _rbac_kind(resource_type: str) -> str | None:
    api = k8s_api(resource_type)
    return api[2] if api and api[0] == "rbac.authorization.k8s.io" else None


@rule(
    "rbac-no-wildcards",
    'Roles and ClusterRoles grant no wildcard ("*") verbs or resources.',
    HIGH,
    MANDATORY,
    'Replace "*" with the explicit verbs (get, list, watch...) and resources the subject needs.',
    settings={
        "fields": strings('Rule fields that must not contain "*" (add apiGroups to be stricter).', ["verbs", "resources"]),
        "exemptRoles": strings("Role names that may use wildcards.", []),
    },
    tags=_TAGS,
)
def validate_wildcards(args: Any, report: Report, cfg: Config) -> None:
    """Roles and ClusterRoles grant no "*" verbs or resources."""
    if _rbac_kind(args.resource_type) not in ("Role", "ClusterRole"):
        return
    name = get(args.props, "metadata", "name")
    if isinstance(name, str) and name in cfg.get("exemptRoles", []):
        return
    rules = seq(args.props, "rules")
    for i, grant in enumerate([] if rules is UNKNOWN else rules):
        for field in cfg.get("fields", ["verbs", "resources"]):
            values = seq(grant, field)
            if values is not UNKNOWN and "*" in values:
                report(
                    f'{ref(args)}: rules[{i}].{field} contains "*", which grants every {field[:-1]} including future ones. List the exact {field} the subject needs.'
                )


@rule(
    "no-cluster-admin-binding",
    "No RoleBinding or ClusterRoleBinding grants cluster-admin.",
    CRITICAL,
    MANDATORY,
    "Bind a narrowly scoped Role instead; keep cluster-admin to the break-glass admin kubeconfig on the control plane.",
    settings={"forbiddenRoles": strings("ClusterRoles no binding may reference.", ["cluster-admin"])},
    tags=_TAGS,
)
def validate_cluster_admin(args: Any, report: Report, cfg: Config) -> None:
    """No RoleBinding or ClusterRoleBinding refers to cluster-admin."""
    if _rbac_kind(args.resource_type) not in ("RoleBinding", "ClusterRoleBinding"):
        return
    role, kind = get(args.props, "roleRef", "name"), get(args.props, "roleRef", "kind")
    if not isinstance(role, str) or role not in cfg.get("forbiddenRoles", ["cluster-admin"]) or kind is UNKNOWN:
        return
    if kind == "ClusterRole":
        report(
            f"{ref(args)}: It binds the ClusterRole {role}, which grants full control of the cluster. Bind a Role/ClusterRole with only the permissions the subjects need."
        )
    else:  # a namespaced Role that borrows the name: whoever reads the binding takes it for the real one
        report(
            f"{ref(args)}: It binds a {kind or 'role'} named {role}, the name of the ClusterRole with full control of the cluster. Rename the role and bind it by its own name."
        )


RULES = declared(__name__)

__all__ = ["RULES"]
