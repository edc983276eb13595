"""Fakes for calling the pack's validators directly, without the engine.

The args objects are pulumi_policy's own classes, with props wrapped by pulumi_policy's
`unknown_checking_proxy` exactly as the analyzer does, so unknown values raise on access as they
do during a real preview. `Report` collects what a validator reports.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    unknown_checking_proxy,
)
from rules import ALL_RULES
from rules.common import Rule

RULES: dict[str, Rule] = {r.name: r for r in ALL_RULES}

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
NAMESPACE = "kubernetes:core/v1:Namespace"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
COMMAND = "command:remote:Command"
COPY = "command:remote:CopyToRemote"
REGISTRY = "192.168.226.131:5000"
UNKNOWN = UNKNOWN_STRING_VALUE
DELETE = object()


@dataclass
class Report:
    """A collecting report_violation."""

    messages: list[str] = field(default_factory=list)
    urns: list[str | None] = field(default_factory=list)

    def __call__(self, message: str, urn: str | None = None) -> None:
        self.messages.append(message)
        self.urns.append(urn)


def urn(resource_type: str, name: str) -> str:
    return f"urn:pulumi:test::vm-platform::{resource_type}::{name}"


def options(secret_outputs: tuple[str, ...] = ()) -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), list(secret_outputs), None)


def proxied(props: Mapping[str, Any]) -> Any:
    """The props as the analyzer hands them over. The proxy rebuilds every dict and list (a
    validator never reaches the caller's objects), so one proxy serves every rule."""
    return unknown_checking_proxy(dict(props))


def resource_args(
    resource_type: str,
    props: Mapping[str, Any],
    name: str = "res",
    config: Mapping[str, Any] | None = None,
    secret_outputs: tuple[str, ...] = (),
    *,
    wrapped: bool = False,
) -> ResourceValidationArgs:
    """`wrapped`: props is already `proxied(...)` (reused across rules)."""
    props = props if wrapped else proxied(props)
    return ResourceValidationArgs(resource_type, props, urn(resource_type, name), name, options(secret_outputs), None, dict(config or {}))


def stack_args(resources: list[tuple[str, str, Mapping[str, Any]]], config: Mapping[str, Any] | None = None, *, wrapped: bool = False) -> StackValidationArgs:
    objs = [PolicyResource(t, p if wrapped else proxied(p), urn(t, n), n, options(), None, None, [], {}) for t, n, p in resources]
    return StackValidationArgs(objs, dict(config or {}))


def run(
    rule: str, resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any] | None = None, name: str = "res", secret_outputs: tuple[str, ...] = ()
) -> list[str]:
    report = Report()
    RULES[rule].check(resource_args(resource_type, props, name, config, secret_outputs), report)
    return report.messages


def run_stack(rule: str, resources: list[tuple[str, str, Mapping[str, Any]]], config: Mapping[str, Any] | None = None) -> list[str]:
    report = Report()
    RULES[rule].check(stack_args(resources, config), report)
    return report.messages


# ---------------------------------------------------------------------------------------------
# Editing nested objects


def _split(path: str) -> list[str | int]:
    return [int(p) if p.isdigit() else p for p in path.split(".")] if path else []


def edit(obj: Mapping[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy with dotted paths set (keys use __ for dots: spec__replicas=3); DELETE removes."""
    out = copy.deepcopy(dict(obj))
    for dotted, value in changes.items():
        keys = _split(dotted.replace("__", "."))
        cur: Any = out
        for k in keys[:-1]:
            if isinstance(cur, dict) and k not in cur:
                cur[k] = {}
            cur = cur[k]
        if value is DELETE:
            if isinstance(cur, dict):
                cur.pop(keys[-1], None)
            else:
                del cur[keys[-1]]
        else:
            cur[keys[-1]] = value
    return out


def unknown_for(value: Any) -> str:
    if isinstance(value, bool):
        return UNKNOWN_BOOLEAN_VALUE
    if isinstance(value, (int, float)):
        return UNKNOWN_NUMBER_VALUE
    if isinstance(value, dict):
        return UNKNOWN_OBJECT_VALUE
    if isinstance(value, list):
        return UNKNOWN_ARRAY_VALUE
    return UNKNOWN_STRING_VALUE


def paths(obj: Any, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Every path into obj (objects, lists and leaves)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield (*prefix, k)
            yield from paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield (*prefix, i)
            yield from paths(v, (*prefix, i))


def with_unknown(obj: Mapping[str, Any], path: tuple[str | int, ...]) -> dict[str, Any]:
    """A copy with the value at path replaced by the engine's unknown sentinel of its type. Only
    the containers on the path are copied: the rest is shared with `obj`, which stays as it was."""
    out = dict(obj)
    cur: Any = out
    for k in path[:-1]:
        child = cur[k]
        cur[k] = dict(child) if isinstance(child, dict) else list(child)
        cur = cur[k]
    cur[path[-1]] = unknown_for(cur[path[-1]])
    return out


# ---------------------------------------------------------------------------------------------
# Compliant resources (the shapes components/ produces), each rule's starting point


def deployment(name: str = "eurekaserver", replicas: int = 2, namespace: str = "platform") -> dict[str, Any]:
    labels = {"app": name}
    probe = {"httpGet": {"path": "/actuator/health", "port": "http"}, "periodSeconds": 10}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "replicas": float(replicas),
            "selector": {"matchLabels": dict(labels)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1.0, "maxUnavailable": 0.0}},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "serviceAccountName": name,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001.0,
                        "runAsGroup": 10001.0,
                        "fsGroup": 10001.0,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": name,
                            "image": f"{REGISTRY}/eureka-server:1.0.0",
                            "imagePullPolicy": "IfNotPresent",
                            "ports": [{"name": "http", "containerPort": 8761.0, "protocol": "TCP"}],
                            "env": [{"name": "SERVER_PORT", "value": "8761"}],
                            "readinessProbe": copy.deepcopy(probe),
                            "livenessProbe": copy.deepcopy(probe),
                            "resources": {"requests": {"cpu": "250m", "memory": "384Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "privileged": False,
                                "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                        }
                    ],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1.0,
                            "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": dict(labels)},
                        }
                    ],
                },
            },
        },
    }


def service(name: str = "eurekaserver", type_: str = "ClusterIP", namespace: str = "platform", target: Any = "http") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {"type": type_, "selector": {"app": name}, "ports": [{"name": "http", "port": 80.0, "targetPort": target, "protocol": "TCP"}]},
    }


def pdb(name: str = "eurekaserver", namespace: str = "platform", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"matchLabels": {"app": name}}, **(spec or {"minAvailable": 1.0})},
    }


PRIVATE_KEY = (Path(__file__).parent / "fixtures" / "fake_openssh_key.txt").read_text()  # truncated, not a usable key
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIOlf5ARWbu9EOPh0S6vfbenSAiiVS4jYEwD+lr1thu+"


def command(
    create: str = "VMP_SCRIPT=abc123 /usr/local/lib/vm-platform/prereqs.sh", stdin: str | None = None, logging: str | None = "stdoutAndStderr"
) -> dict[str, Any]:
    props: dict[str, Any] = {
        "connection": {"host": "192.168.226.131", "port": 22.0, "user": "root", "privateKey": PRIVATE_KEY, "hostKey": HOST_KEY, "dialErrorLimit": 10.0},
        "create": create,
        "addPreviousOutputInEnv": False,
    }
    if stdin is not None:
        props["stdin"] = stdin
    if logging is not None:
        props["logging"] = logging
    return props


def service_account(name: str = "eurekaserver", namespace: str = "platform") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}, "automountServiceAccountToken": False}


def default_deny(namespace: str = "platform", types: tuple[str, ...] = ("Ingress", "Egress")) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny", "namespace": namespace},
        "spec": {"podSelector": {}, "policyTypes": list(types)},
    }


def stack(*extra: tuple[str, str, Mapping[str, Any]], replicas: int = 2) -> list[tuple[str, str, Mapping[str, Any]]]:
    """The Eureka stack's Kubernetes objects: a Namespace with its default-deny NetworkPolicy, the
    Deployment, its ServiceAccount, Service and PDB."""
    return [
        (NAMESPACE, "platform-platform", {"metadata": {"name": "platform", "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}),
        (NETWORK_POLICY, "platform-default-deny", default_deny()),
        (SERVICE_ACCOUNT, "eureka-app-account", service_account()),
        (DEPLOYMENT, "eureka-app-deployment", deployment(replicas=replicas)),
        (SERVICE, "eureka-app-service", service()),
        (PDB, "eureka-app-pdb", pdb()),
        *extra,
    ]


Check = Callable[..., list[str]]
