"""RBAC rules: no wildcard grants, no bindings to cluster-admin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .common import CRITICAL, HIGH, MANDATORY, UNKNOWN, Config, Rule, get, k8s_api, ref, seq

Report = Callable[..., None]


def _rbac_kind(resource_type: str) -> str | None:
    api = k8s_api(resource_type)
    return api[2] if api and api[0] == "rbac.authorization.k8s.io" else None


def validate_wildcards(args: Any, report: Report, cfg: Config) -> None:
    """Roles and ClusterRoles grant no "*" verbs or resources."""
    if _rbac_kind(args.resource_type) not in ("Role", "ClusterRole"):
        return
    name = get(args.props, "metadata", "name")
    if isinstance(name, str) and name in cfg.get("exemptRoles", []):
        return
    rules = seq(args.props, "rules")
    for i, rule in enumerate([] if rules is UNKNOWN else rules):
        for field in cfg.get("fields", ["verbs", "resources"]):
            values = seq(rule, field)
            if values is not UNKNOWN and "*" in values:
                report(
                    f'{ref(args)}: rules[{i}].{field} contains "*", which grants every {field[:-1]} including future ones. List the exact {field} the subject needs.'
                )


def validate_cluster_admin(args: Any, report: Report, cfg: Config) -> None:
    """No RoleBinding or ClusterRoleBinding refers to cluster-admin."""
    if _rbac_kind(args.resource_type) not in ("RoleBinding", "ClusterRoleBinding"):
        return
    role = get(args.props, "roleRef", "name")
    if get(args.props, "roleRef", "kind") == "ClusterRole" and isinstance(role, str) and role in cfg.get("forbiddenRoles", ["cluster-admin"]):
        report(
            f"{ref(args)}: It binds the ClusterRole {role}, which grants full control of the cluster. Bind a Role/ClusterRole with only the permissions the subjects need."
        )


RULES: list[Rule] = [
    Rule(
        "rbac-no-wildcards",
        'Roles and ClusterRoles grant no wildcard ("*") verbs or resources.',
        HIGH,
        MANDATORY,
        'Replace "*" with the explicit verbs (get, list, watch...) and resources the subject needs.',
        validate_wildcards,
        settings={
            "fields": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["verbs", "resources"],
                "description": 'Rule fields that must not contain "*" (add apiGroups to be stricter).',
            },
            "exemptRoles": {"type": "array", "items": {"type": "string"}, "default": [], "description": "Role names that may use wildcards."},
        },
        tags=("kubernetes", "rbac"),
    ),
    Rule(
        "no-cluster-admin-binding",
        "No RoleBinding or ClusterRoleBinding grants cluster-admin.",
        CRITICAL,
        MANDATORY,
        "Bind a narrowly scoped Role instead; keep cluster-admin to the break-glass admin kubeconfig on the control plane.",
        validate_cluster_admin,
        settings={
            "forbiddenRoles": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["cluster-admin"],
                "description": "ClusterRoles no binding may reference.",
            }
        },
        tags=("kubernetes", "rbac"),
    ),
]

__all__ = ["RULES"]
