"""RBAC rules."""

from __future__ import annotations

import pytest

from tests.policy.cases import Case, assert_case, case
from tests.policy.fakes import CONFIGMAP, UNKNOWN

ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
CLUSTER_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"
BINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
CLUSTER_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding"


def role(verbs: list, resources: list, api_groups: list | None = None, name: str = "reader") -> dict:
    return {"metadata": {"name": name, "namespace": "platform"}, "rules": [{"apiGroups": api_groups or [""], "resources": resources, "verbs": verbs}]}


def binding(role_name: str, kind: str = "ClusterRole") -> dict:
    return {
        "metadata": {"name": "b", "namespace": "platform"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role_name},
        "subjects": [],
    }


CASES: list[Case] = [
    case("wildcard-ok", "rbac-no-wildcards", ROLE, role(["get", "list"], ["pods"])),
    case("wildcard-verbs", "rbac-no-wildcards", ROLE, role(["*"], ["pods"]), 'rules[0].verbs contains "*"'),
    case("wildcard-resources", "rbac-no-wildcards", CLUSTER_ROLE, role(["get"], ["*"]), 'rules[0].resources contains "*"'),
    case("wildcard-api-groups-default", "rbac-no-wildcards", ROLE, role(["get"], ["pods"], ["*"])),
    case(
        "wildcard-api-groups-strict",
        "rbac-no-wildcards",
        ROLE,
        role(["get"], ["pods"], ["*"]),
        "apiGroups",
        config={"fields": ["verbs", "resources", "apiGroups"]},
    ),
    case("wildcard-exempt", "rbac-no-wildcards", CLUSTER_ROLE, role(["*"], ["*"], name="ops"), config={"exemptRoles": ["ops"]}),
    case("wildcard-ignore-configmap", "rbac-no-wildcards", CONFIGMAP, role(["*"], ["*"])),
    case("wildcard-unknown", "rbac-no-wildcards", ROLE, role([UNKNOWN], ["pods"])),
    case("admin-ok", "no-cluster-admin-binding", BINDING, binding("view")),
    case("admin-rolebinding", "no-cluster-admin-binding", BINDING, binding("cluster-admin"), "binds the ClusterRole cluster-admin"),
    case("admin-clusterrolebinding", "no-cluster-admin-binding", CLUSTER_BINDING, binding("cluster-admin"), "binds the ClusterRole cluster-admin"),
    # as Kyverno's restrict-binding-clusteradmin and Polaris's rolebindingClusterAdminRole: the borrowed name misleads
    case("admin-role-named-like-it", "no-cluster-admin-binding", BINDING, binding("cluster-admin", kind="Role"), "binds a Role named cluster-admin"),
    case("admin-role-other-name", "no-cluster-admin-binding", BINDING, binding("view", kind="Role")),
    case("admin-role-kind-unknown", "no-cluster-admin-binding", BINDING, binding("cluster-admin", kind=UNKNOWN)),
    case(
        "admin-forbidden-edit",
        "no-cluster-admin-binding",
        BINDING,
        binding("edit"),
        "binds the ClusterRole edit",
        config={"forbiddenRoles": ["cluster-admin", "edit"]},
    ),
    case("admin-ignore-role", "no-cluster-admin-binding", ROLE, binding("cluster-admin")),
    case("admin-unknown", "no-cluster-admin-binding", BINDING, binding(UNKNOWN)),
]


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_rule(c: Case) -> None:
    assert_case(c)


# no-admin-by-another-name (a stack rule: the binding and the role it names)
ADMIN = "no-admin-by-another-name"


def everything(name: str = "ops", groups: list | None = None) -> dict:
    return role(["*"], ["*"], groups if groups is not None else ["*"], name=name)


STACK_CASES: list[Case] = [
    case("admin-name-ok", ADMIN, "stack", [(CLUSTER_ROLE, "r", role(["get"], ["pods"], name="ops")), (CLUSTER_BINDING, "b", binding("ops"))]),
    case(
        "admin-name-cluster-role", ADMIN, "stack", [(CLUSTER_ROLE, "r", everything()), (CLUSTER_BINDING, "b", binding("ops"))], "cluster-admin by another name"
    ),
    case("admin-name-core-group", ADMIN, "stack", [(CLUSTER_ROLE, "r", everything(groups=[""])), (BINDING, "b", binding("ops"))], "ClusterRole ops"),
    case("admin-name-role-same-ns", ADMIN, "stack", [(ROLE, "r", everything()), (BINDING, "b", binding("ops", kind="Role"))], "Role ops"),
    case(
        "admin-name-role-other-ns",
        ADMIN,
        "stack",
        [(ROLE, "r", {**everything(), "metadata": {"name": "ops", "namespace": "other"}}), (BINDING, "b", binding("ops", kind="Role"))],
    ),
    case("admin-name-one-group-only", ADMIN, "stack", [(CLUSTER_ROLE, "r", everything(groups=["apps"])), (CLUSTER_BINDING, "b", binding("ops"))]),
    case("admin-name-unbound", ADMIN, "stack", [(CLUSTER_ROLE, "r", everything())]),
    case(
        "admin-name-unknown-rules",
        ADMIN,
        "stack",
        [(CLUSTER_ROLE, "r", {"metadata": {"name": "ops"}, "rules": UNKNOWN}), (CLUSTER_BINDING, "b", binding("ops"))],
    ),
    case("admin-name-role-not-in-stack", ADMIN, "stack", [(CLUSTER_BINDING, "b", binding("view"))]),
]


@pytest.mark.parametrize("c", STACK_CASES, ids=[c.id for c in STACK_CASES])
def test_admin_by_another_name(c: Case) -> None:
    assert_case(c)
