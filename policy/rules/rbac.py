"""RBAC rules: no wildcard grants, no bindings to cluster-admin, by its name or by another."""

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


def _grants_everything(role_props: Any) -> bool | None:
    """Whether a role has a rule granting every verb on every resource (of every API group, or
    of the core group): what cluster-admin grants. None: not known yet."""
    rules = seq(role_props, "rules")
    if rules is UNKNOWN:
        return None
    for grant in rules:
        verbs, resources, groups = seq(grant, "verbs"), seq(grant, "resources"), seq(grant, "apiGroups")
        if UNKNOWN in (verbs, resources, groups):
            return None
        if "*" in verbs and "*" in resources and ("*" in groups or "" in groups or not groups):
            return True
    return False


@rule(
    "no-admin-by-another-name",
    "No RoleBinding or ClusterRoleBinding binds a role of the stack that grants every verb on every resource (cluster-admin by another name).",
    CRITICAL,
    MANDATORY,
    "Give the role only the verbs and resources its subjects need, or bind nothing to it.",
    stack=True,
    tags=_TAGS,
)
def validate_admin_by_another_name(args: Any, report: Report, cfg: Config) -> None:
    """A binding's role, looked up among the stack's Roles and ClusterRoles, is not all-powerful."""
    roles: dict[tuple[str, str, str], Any] = {}
    for r in args.resources:
        kind = _rbac_kind(r.resource_type)
        if kind in ("Role", "ClusterRole"):
            name, ns = get(r.props, "metadata", "name"), get(r.props, "metadata", "namespace", default="")
            if isinstance(name, str) and isinstance(ns, str):
                roles[(kind, "" if kind == "ClusterRole" else ns or "default", name)] = r.props
    for r in args.resources:
        if _rbac_kind(r.resource_type) not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        kind, name = get(r.props, "roleRef", "kind"), get(r.props, "roleRef", "name")
        ns = get(r.props, "metadata", "namespace", default="")
        if not isinstance(kind, str) or not isinstance(name, str) or not isinstance(ns, str):
            continue
        props = roles.get((kind, "" if kind == "ClusterRole" else ns or "default", name))
        if props is not None and _grants_everything(props):
            report(
                f"{ref(r)}: It binds the {kind} {name}, which grants every verb on every resource: cluster-admin by another name. "
                "Give the role only the verbs and resources its subjects need.",
                r.urn,
            )


RULES = declared(__name__)

__all__ = ["RULES"]
