"""Workload and object rules: a passing case, each failing mode, an ignored kind, a config
override and an unknown value per rule (tests/policy/test_preview.py adds unknowns everywhere)."""

from __future__ import annotations

from typing import Any

import pytest
from rules.kube import workload

from tests.policy.cases import Case, assert_case, case
from tests.policy.fakes import CONFIGMAP, DELETE, DEPLOYMENT, NAMESPACE, REGISTRY, UNKNOWN, deployment, edit, run

D = deployment()
C0 = "spec.template.spec.containers.0"
P = "spec.template.spec"
PATCH = "kubernetes:apps/v1:DeploymentPatch"
REG = {"registry": REGISTRY}


def d(**changes: Any) -> dict[str, Any]:
    """The compliant Deployment with dotted-path changes (C0 = first container, P = pod spec)."""
    return edit(D, **{k.replace("C0", C0).replace("P.", P + "."): v for k, v in changes.items()})


def init_container(**sc: Any) -> dict[str, Any]:
    c = edit(D, **{})["spec"]["template"]["spec"]["containers"][0]
    c = {**c, "name": "init", "securityContext": {**c["securityContext"], **sc}}
    return d(**{"P.initContainers": [c]})


def anti_affinity(*, required: bool = False, replicas: int = 2, **scope: Any) -> dict[str, Any]:
    """The compliant Deployment spread only by pod anti-affinity on hostname, its term scoped by
    `scope` (namespaces=..., namespaceSelector=...)."""
    term = {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "eurekaserver"}}, **scope}
    anti = (
        {"requiredDuringSchedulingIgnoredDuringExecution": [term]}
        if required
        else {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100.0, "podAffinityTerm": term}]}
    )
    return d(**{"spec.replicas": float(replicas), "P.topologySpreadConstraints": DELETE, "P.affinity": {"podAntiAffinity": anti}})


CASES: list[Case] = [
    # image-registry-allowed
    case("registry-ok", "image-registry-allowed", DEPLOYMENT, D, config=REG),
    case("registry-docker-hub", "image-registry-allowed", DEPLOYMENT, d(**{"C0.image": "nginx:1.25"}), "from Docker Hub", config=REG),
    case(
        "registry-other",
        "image-registry-allowed",
        DEPLOYMENT,
        d(**{"C0.image": "registry.example.org/org/app:1.0"}),
        "from registry registry.example.org",
        config=REG,
    ),
    case("registry-other-port", "image-registry-allowed", DEPLOYMENT, d(**{"C0.image": "192.168.226.131:5001/app:1.0"}), "192.168.226.131:5001", config=REG),
    case("registry-not-configured", "image-registry-allowed", DEPLOYMENT, D, "`registry` setting is empty"),
    case(
        "registry-additional",
        "image-registry-allowed",
        DEPLOYMENT,
        d(**{"C0.image": "registry.example.org/org/app:1.0"}),
        config={**REG, "additionalRegistries": ["registry.example.org"]},
    ),
    case("registry-ignores-patch", "image-registry-allowed", PATCH, d(**{"C0.image": "nginx"}), config=REG),
    case("registry-unknown", "image-registry-allowed", DEPLOYMENT, d(**{"C0.image": UNKNOWN}), config=REG),
    # image-pinned
    case("pinned-ok", "image-pinned", DEPLOYMENT, D),
    case("pinned-no-tag", "image-pinned", DEPLOYMENT, d(**{"C0.image": f"{REGISTRY}/eureka-server"}), "without a tag"),
    case("pinned-latest", "image-pinned", DEPLOYMENT, d(**{"C0.image": f"{REGISTRY}/eureka-server:latest"}), "mutable tag latest"),
    case("pinned-digest", "image-pinned", DEPLOYMENT, d(**{"C0.image": f"{REGISTRY}/eureka-server@sha256:" + "a" * 64})),
    case("pinned-require-digest", "image-pinned", DEPLOYMENT, D, "without a digest", config={"requireDigest": True}),
    case(
        "pinned-forbidden-tag",
        "image-pinned",
        DEPLOYMENT,
        d(**{"C0.image": f"{REGISTRY}/eureka-server:stable"}),
        "mutable tag stable",
        config={"forbiddenTags": ["stable"]},
    ),
    case("pinned-ignores-configmap", "image-pinned", CONFIGMAP, {"data": {"image": "nginx:latest"}}),
    # image-pull-policy
    case("pull-ok", "image-pull-policy", DEPLOYMENT, D),
    case("pull-never", "image-pull-policy", DEPLOYMENT, d(**{"C0.imagePullPolicy": "Never"}), "imagePullPolicy Never"),
    case("pull-ifnotpresent-latest", "image-pull-policy", DEPLOYMENT, d(**{"C0.image": f"{REGISTRY}/e:latest"}), "IfNotPresent with the unpinned"),
    case("pull-default-pinned", "image-pull-policy", DEPLOYMENT, d(**{"C0.imagePullPolicy": DELETE})),
    case("pull-only-always", "image-pull-policy", DEPLOYMENT, D, "imagePullPolicy IfNotPresent", config={"allowedPolicies": ["Always"]}),
    case("pull-unknown", "image-pull-policy", DEPLOYMENT, d(**{"C0.imagePullPolicy": UNKNOWN})),
    # no-privileged-containers
    case("privileged-ok", "no-privileged-containers", DEPLOYMENT, D),
    case("privileged", "no-privileged-containers", DEPLOYMENT, d(**{"C0.securityContext.privileged": True}), 'Container "eurekaserver" runs privileged'),
    case("privileged-init", "no-privileged-containers", DEPLOYMENT, init_container(privileged=True), 'Init container "init" runs privileged'),
    case(
        "privileged-exempt",
        "no-privileged-containers",
        DEPLOYMENT,
        d(**{"C0.securityContext.privileged": True, "metadata.namespace": "kube-system"}),
        config={"exemptNamespaces": ["kube-system"]},
    ),
    case("privileged-ignores-patch", "no-privileged-containers", PATCH, d(**{"C0.securityContext.privileged": True})),
    case("privileged-unknown", "no-privileged-containers", DEPLOYMENT, d(**{"C0.securityContext": UNKNOWN})),
    # no-privilege-escalation
    case("escalation-ok", "no-privilege-escalation", DEPLOYMENT, D),
    case("escalation-true", "no-privilege-escalation", DEPLOYMENT, d(**{"C0.securityContext.allowPrivilegeEscalation": True}), "allows privilege escalation"),
    case("escalation-missing", "no-privilege-escalation", DEPLOYMENT, d(**{"C0.securityContext.allowPrivilegeEscalation": DELETE}), "defaults to true"),
    case(
        "escalation-exempt",
        "no-privilege-escalation",
        DEPLOYMENT,
        d(**{"C0.securityContext.allowPrivilegeEscalation": True}),
        config={"exemptNamespaces": ["platform"]},
    ),
    case("escalation-unknown", "no-privilege-escalation", DEPLOYMENT, d(**{"C0.securityContext.allowPrivilegeEscalation": UNKNOWN})),
    # no-host-namespaces
    case("hostns-ok", "no-host-namespaces", DEPLOYMENT, D),
    case(
        "hostns-all",
        "no-host-namespaces",
        DEPLOYMENT,
        d(**{"P.hostNetwork": True, "P.hostPID": True, "P.hostIPC": True}),
        "hostNetwork: true",
        "hostPID: true",
        "hostIPC: true",
    ),
    case("hostns-false", "no-host-namespaces", DEPLOYMENT, d(**{"P.hostNetwork": False})),
    case("hostns-exempt", "no-host-namespaces", DEPLOYMENT, d(**{"P.hostNetwork": True}), config={"exemptNamespaces": ["platform"]}),
    # no-host-path-volumes
    case("hostpath-ok", "no-host-path-volumes", DEPLOYMENT, D),
    case(
        "hostpath",
        "no-host-path-volumes",
        DEPLOYMENT,
        d(**{"P.volumes": [{"name": "sock", "hostPath": {"path": "/run/containerd/containerd.sock"}}]}),
        "node path /run/containerd/containerd.sock",
    ),
    case(
        "hostpath-allowed",
        "no-host-path-volumes",
        DEPLOYMENT,
        d(**{"P.volumes": [{"name": "log", "hostPath": {"path": "/var/log/app"}}]}),
        config={"allowedPaths": ["/var/log"]},
    ),
    # container-capabilities
    case("caps-ok", "container-capabilities", DEPLOYMENT, D),
    case(
        "caps-add",
        "container-capabilities",
        DEPLOYMENT,
        d(**{"C0.securityContext.capabilities.add": ["NET_ADMIN", "SYS_ADMIN"]}),
        "adds the capabilities NET_ADMIN, SYS_ADMIN",
    ),
    case("caps-no-drop", "container-capabilities", DEPLOYMENT, d(**{"C0.securityContext.capabilities": {}}), "does not drop all capabilities"),
    case(
        "caps-allowed",
        "container-capabilities",
        DEPLOYMENT,
        d(**{"C0.securityContext.capabilities.add": ["NET_BIND_SERVICE"]}),
        config={"allowedCapabilities": ["NET_BIND_SERVICE"]},
    ),
    case(
        "caps-no-drop-all-ok",
        "container-capabilities",
        DEPLOYMENT,
        d(**{"C0.securityContext.capabilities": {"drop": ["NET_RAW"]}}),
        config={"requireDropAll": False},
    ),
    case("caps-unknown-drop", "container-capabilities", DEPLOYMENT, d(**{"C0.securityContext.capabilities.drop": UNKNOWN})),
    # run-as-non-root
    case("nonroot-ok", "run-as-non-root", DEPLOYMENT, D),
    case("nonroot-uid0", "run-as-non-root", DEPLOYMENT, d(**{"C0.securityContext.runAsUser": 0.0}), "runs as user 0"),
    case(
        "nonroot-missing",
        "run-as-non-root",
        DEPLOYMENT,
        d(**{"C0.securityContext.runAsNonRoot": DELETE, "P.securityContext.runAsNonRoot": DELETE}),
        "does not set runAsNonRoot",
    ),
    case("nonroot-container-overrides", "run-as-non-root", DEPLOYMENT, d(**{"C0.securityContext.runAsNonRoot": False}), "does not set runAsNonRoot"),
    case("nonroot-pod-level-only", "run-as-non-root", DEPLOYMENT, d(**{"C0.securityContext.runAsNonRoot": DELETE})),
    case("nonroot-exempt", "run-as-non-root", DEPLOYMENT, d(**{"C0.securityContext.runAsUser": 0.0}), config={"exemptNamespaces": ["platform"]}),
    # read-only-root-filesystem
    case("rofs-ok", "read-only-root-filesystem", DEPLOYMENT, D),
    case("rofs-false", "read-only-root-filesystem", DEPLOYMENT, d(**{"C0.securityContext.readOnlyRootFilesystem": False}), "writable root filesystem"),
    case("rofs-missing", "read-only-root-filesystem", DEPLOYMENT, d(**{"C0.securityContext": {}}), "writable root filesystem"),
    case(
        "rofs-exempt",
        "read-only-root-filesystem",
        DEPLOYMENT,
        d(**{"C0.securityContext.readOnlyRootFilesystem": False}),
        config={"exemptNamespaces": ["platform"]},
    ),
    # seccomp-profile
    case("seccomp-ok", "seccomp-profile", DEPLOYMENT, D),
    case("seccomp-missing", "seccomp-profile", DEPLOYMENT, d(**{"P.securityContext.seccompProfile": DELETE}), "without a seccomp profile"),
    case("seccomp-unconfined", "seccomp-profile", DEPLOYMENT, d(**{"C0.securityContext.seccompProfile": {"type": "Unconfined"}}), "seccomp profile Unconfined"),
    case(
        "seccomp-container-level",
        "seccomp-profile",
        DEPLOYMENT,
        d(**{"P.securityContext.seccompProfile": DELETE, "C0.securityContext.seccompProfile": {"type": "Localhost"}}),
    ),
    case(
        "seccomp-only-runtime-default",
        "seccomp-profile",
        DEPLOYMENT,
        d(**{"C0.securityContext.seccompProfile": {"type": "Localhost"}}),
        "seccomp profile Localhost",
        config={"allowedProfiles": ["RuntimeDefault"]},
    ),
    case("seccomp-unknown", "seccomp-profile", DEPLOYMENT, d(**{"P.securityContext.seccompProfile.type": UNKNOWN})),
    # service-account-token-automount
    case("automount-ok", "service-account-token-automount", DEPLOYMENT, D),
    case(
        "automount-missing",
        "service-account-token-automount",
        DEPLOYMENT,
        d(**{"P.automountServiceAccountToken": DELETE}),
        "automountServiceAccountToken: false",
    ),
    # true is an explicit choice only with the pod's own ServiceAccount (its RBAC says what it may do)
    case(
        "automount-true-default-sa",
        "service-account-token-automount",
        DEPLOYMENT,
        d(**{"P.automountServiceAccountToken": True, "P.serviceAccountName": DELETE}),
        "(automountServiceAccountToken: true) for the default ServiceAccount",
    ),
    case(
        "automount-true-named-default-sa",
        "service-account-token-automount",
        DEPLOYMENT,
        d(**{"P.automountServiceAccountToken": True, "P.serviceAccountName": "default"}),
        "for the default ServiceAccount",
    ),
    case(
        "automount-true-empty-sa",
        "service-account-token-automount",
        DEPLOYMENT,
        d(**{"P.automountServiceAccountToken": True, "P.serviceAccountName": ""}),
        "for the default ServiceAccount",
    ),
    case(
        "automount-true-own-sa",
        "service-account-token-automount",
        DEPLOYMENT,
        d(**{"P.automountServiceAccountToken": True, "P.serviceAccountName": "eurekaserver"}),
    ),
    case(
        "automount-true-sa-unknown",
        "service-account-token-automount",
        DEPLOYMENT,
        d(**{"P.automountServiceAccountToken": True, "P.serviceAccountName": UNKNOWN}),
    ),
    case(
        "automount-missing-own-sa",
        "service-account-token-automount",
        DEPLOYMENT,
        d(**{"P.automountServiceAccountToken": DELETE, "P.serviceAccountName": "eurekaserver"}),
        "does not set automountServiceAccountToken: false",
    ),
    case(
        "automount-exempt",
        "service-account-token-automount",
        DEPLOYMENT,
        d(**{"P.automountServiceAccountToken": True, "P.serviceAccountName": DELETE}),
        config={"exemptNamespaces": ["platform"]},
    ),
    # no-unsafe-sysctls
    case("sysctls-ok", "no-unsafe-sysctls", DEPLOYMENT, D),
    case("sysctls-safe", "no-unsafe-sysctls", DEPLOYMENT, d(**{"P.securityContext.sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}]})),
    case(
        "sysctls-unsafe",
        "no-unsafe-sysctls",
        DEPLOYMENT,
        d(**{"P.securityContext.sysctls": [{"name": "kernel.msgmax", "value": "65536"}, {"name": "net.core.somaxconn", "value": "1024"}]}),
        "sysctls kernel.msgmax, net.core.somaxconn",
    ),
    case(
        "sysctls-allowed",
        "no-unsafe-sysctls",
        DEPLOYMENT,
        d(**{"P.securityContext.sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]}),
        config={"allowedSysctls": ["net.core.somaxconn"]},
    ),
    case("sysctls-ignores-patch", "no-unsafe-sysctls", PATCH, d(**{"P.securityContext.sysctls": [{"name": "kernel.msgmax", "value": "1"}]})),
    case("sysctls-unknown-name", "no-unsafe-sysctls", DEPLOYMENT, d(**{"P.securityContext.sysctls": [{"name": UNKNOWN, "value": "1"}]})),
    # no-unmasked-proc-mount
    case("procmount-ok", "no-unmasked-proc-mount", DEPLOYMENT, D),
    case("procmount-default", "no-unmasked-proc-mount", DEPLOYMENT, d(**{"C0.securityContext.procMount": "Default"})),
    case("procmount-unmasked", "no-unmasked-proc-mount", DEPLOYMENT, d(**{"C0.securityContext.procMount": "Unmasked"}), "sets procMount Unmasked"),
    case("procmount-unmasked-init", "no-unmasked-proc-mount", DEPLOYMENT, init_container(procMount="Unmasked"), 'Init container "init" sets procMount'),
    case("procmount-ignores-configmap", "no-unmasked-proc-mount", CONFIGMAP, {"data": {"procMount": "Unmasked"}}),
    case("procmount-unknown", "no-unmasked-proc-mount", DEPLOYMENT, d(**{"C0.securityContext.procMount": UNKNOWN})),
    # run-as-non-root-group
    case("group-ok", "run-as-non-root-group", DEPLOYMENT, D),
    case("group-zero", "run-as-non-root-group", DEPLOYMENT, d(**{"C0.securityContext.runAsGroup": 0.0}), "runs with group 0"),
    case("group-zero-pod", "run-as-non-root-group", DEPLOYMENT, d(**{"P.securityContext.runAsGroup": 0.0}), "runs with group 0"),
    case("group-missing", "run-as-non-root-group", DEPLOYMENT, d(**{"P.securityContext.runAsGroup": DELETE}), "does not set runAsGroup"),
    case("group-missing-optional", "run-as-non-root-group", DEPLOYMENT, d(**{"P.securityContext.runAsGroup": DELETE}), config={"requireRunAsGroup": False}),
    case("group-container-level", "run-as-non-root-group", DEPLOYMENT, d(**{"P.securityContext.runAsGroup": DELETE, "C0.securityContext.runAsGroup": 3000.0})),
    case("group-fs-zero", "run-as-non-root-group", DEPLOYMENT, d(**{"P.securityContext.fsGroup": 0.0}), "fsGroup includes group 0"),
    case(
        "group-supplemental-zero",
        "run-as-non-root-group",
        DEPLOYMENT,
        d(**{"P.securityContext.supplementalGroups": [3000.0, 0.0]}),
        "supplementalGroups includes group 0",
    ),
    case("group-exempt", "run-as-non-root-group", DEPLOYMENT, d(**{"C0.securityContext.runAsGroup": 0.0}), config={"exemptNamespaces": ["platform"]}),
    case("group-ignores-patch", "run-as-non-root-group", PATCH, d(**{"C0.securityContext.runAsGroup": 0.0})),
    case("group-unknown", "run-as-non-root-group", DEPLOYMENT, d(**{"P.securityContext.runAsGroup": UNKNOWN})),
    case("group-unknown-supplemental", "run-as-non-root-group", DEPLOYMENT, d(**{"P.securityContext.supplementalGroups": [UNKNOWN]})),
    # no-default-service-account
    case("sa-ok", "no-default-service-account", DEPLOYMENT, D),
    case("sa-unset", "no-default-service-account", DEPLOYMENT, d(**{"P.serviceAccountName": DELETE}), "sets no serviceAccountName"),
    case("sa-default", "no-default-service-account", DEPLOYMENT, d(**{"P.serviceAccountName": "default"}), "names serviceAccountName default"),
    case("sa-deprecated-field", "no-default-service-account", DEPLOYMENT, d(**{"P.serviceAccountName": DELETE, "P.serviceAccount": "eurekaserver"})),
    case("sa-exempt", "no-default-service-account", DEPLOYMENT, d(**{"P.serviceAccountName": DELETE}), config={"exemptNamespaces": ["platform"]}),
    case("sa-ignores-configmap", "no-default-service-account", CONFIGMAP, {"metadata": {"namespace": "platform"}, "data": {}}),
    case("sa-unknown", "no-default-service-account", DEPLOYMENT, d(**{"P.serviceAccountName": UNKNOWN})),
    # no-secrets-in-env
    case("env-ok", "no-secrets-in-env", DEPLOYMENT, D),
    case("env-literal", "no-secrets-in-env", DEPLOYMENT, d(**{"C0.env": [{"name": "DB_PASSWORD", "value": "hunter2"}]}), "DB_PASSWORD to a literal value"),
    case(
        "env-key-material",
        "no-secrets-in-env",
        DEPLOYMENT,
        d(**{"C0.env": [{"name": "the_good_stuff", "value": "---BEGIN OPENSSH PRIVATE KEY---\nxxxx\n---END OPENSSH PRIVATE KEY---\n"}]}),
        "the_good_stuff to a literal value",
    ),
    case("env-public-key", "no-secrets-in-env", DEPLOYMENT, d(**{"C0.env": [{"name": "CERT", "value": "-----BEGIN CERTIFICATE-----\nxxxx\n"}]})),
    case("env-harmless", "no-secrets-in-env", DEPLOYMENT, d(**{"C0.env": [{"name": "TOKEN_TTL_SECONDS", "value": "3600"}]})),
    case(
        "env-secretkeyref-allowed",
        "no-secrets-in-env",
        DEPLOYMENT,
        d(**{"C0.env": [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}]}),
    ),
    case(
        "env-secretkeyref-forbidden",
        "no-secrets-in-env",
        DEPLOYMENT,
        d(**{"C0.env": [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}]}),
        "through secretKeyRef",
        config={"allowSecretKeyRef": False},
    ),
    case(
        "env-envfrom-forbidden",
        "no-secrets-in-env",
        DEPLOYMENT,
        d(**{"C0.envFrom": [{"secretRef": {"name": "db"}}]}),
        "envFrom.secretRef",
        config={"allowSecretKeyRef": False},
    ),
    case(
        "env-pattern",
        "no-secrets-in-env",
        DEPLOYMENT,
        d(**{"C0.env": [{"name": "DSN", "value": "postgres://u:p@db"}]}),
        "DSN to a literal",
        config={"secretNamePattern": "^DSN$"},
    ),
    case("env-unknown-value", "no-secrets-in-env", DEPLOYMENT, d(**{"C0.env": [{"name": "DB_PASSWORD", "value": UNKNOWN}]})),
    # resource-requests-limits
    case("resources-ok", "resource-requests-limits", DEPLOYMENT, D),
    case("resources-no-cpu-limit", "resource-requests-limits", DEPLOYMENT, d(**{"C0.resources.limits.cpu": DELETE}), "resources limits.cpu"),
    case("resources-none", "resource-requests-limits", DEPLOYMENT, d(**{"C0.resources": DELETE}), "requests.cpu, requests.memory, limits.memory, limits.cpu"),
    case("resources-cpu-limit-optional", "resource-requests-limits", DEPLOYMENT, d(**{"C0.resources.limits.cpu": DELETE}), config={"requireCpuLimit": False}),
    # probes-present
    case("probes-ok", "probes-present", DEPLOYMENT, D),
    case("probes-no-liveness", "probes-present", DEPLOYMENT, d(**{"C0.livenessProbe": DELETE}), "has no livenessProbe"),
    case("probes-none", "probes-present", DEPLOYMENT, d(**{"C0.livenessProbe": DELETE, "C0.readinessProbe": DELETE}), "livenessProbe or readinessProbe"),
    case("probes-liveness-optional", "probes-present", DEPLOYMENT, d(**{"C0.livenessProbe": DELETE}), config={"requireLiveness": False}),
    case(
        "probes-ignore-job",
        "probes-present",
        "kubernetes:batch/v1:Job",
        {"metadata": {"namespace": "platform"}, "spec": {"template": d(**{"C0.livenessProbe": DELETE})["spec"]["template"]}},
    ),
    # probe-ports-declared
    case("probe-port-ok", "probe-ports-declared", DEPLOYMENT, D),
    case("probe-port-name", "probe-ports-declared", DEPLOYMENT, d(**{"C0.livenessProbe.httpGet.port": "metrics"}), "livenessProbe on port 'metrics'"),
    case("probe-port-number-ok", "probe-ports-declared", DEPLOYMENT, d(**{"C0.readinessProbe.httpGet.port": 8761.0})),
    case("probe-port-number", "probe-ports-declared", DEPLOYMENT, d(**{"C0.readinessProbe": {"tcpSocket": {"port": 9090.0}}}), "readinessProbe on port 9090"),
    case("probe-port-unknown-ports", "probe-ports-declared", DEPLOYMENT, d(**{"C0.ports.0.name": UNKNOWN})),
    case(
        "probe-protocol-udp-name",
        "probe-ports-declared",
        DEPLOYMENT,
        d(**{"C0.ports.0.protocol": "UDP"}),
        "livenessProbe (httpGet) on port 'http'",
        "declares it as UDP",
    ),
    case(
        "probe-protocol-udp-number",
        "probe-ports-declared",
        DEPLOYMENT,
        d(
            **{
                "C0.ports": [{"name": "dns", "containerPort": 53.0, "protocol": "UDP"}],
                "C0.readinessProbe": {"tcpSocket": {"port": 53.0}},
                "C0.livenessProbe": DELETE,
            }
        ),
        "readinessProbe (tcpSocket) on port 53",
    ),
    case(
        "probe-protocol-tcp-and-udp",
        "probe-ports-declared",
        DEPLOYMENT,
        d(
            **{
                "C0.ports": [{"name": "dns", "containerPort": 53.0, "protocol": "UDP"}, {"name": "dns-tcp", "containerPort": 53.0, "protocol": "TCP"}],
                "C0.readinessProbe": {"tcpSocket": {"port": 53.0}},
                "C0.livenessProbe": DELETE,
            }
        ),
    ),
    case("probe-protocol-default-tcp", "probe-ports-declared", DEPLOYMENT, d(**{"C0.ports.0.protocol": DELETE})),
    case(
        "probe-protocol-exec-ignored",
        "probe-ports-declared",
        DEPLOYMENT,
        d(**{"C0.ports.0.protocol": "UDP", "C0.livenessProbe": {"exec": {"command": ["true"]}}, "C0.readinessProbe": DELETE}),
    ),
    case("probe-protocol-ignores-patch", "probe-ports-declared", PATCH, d(**{"C0.ports.0.protocol": "UDP"})),
    case("probe-protocol-unknown", "probe-ports-declared", DEPLOYMENT, d(**{"C0.ports.0.protocol": UNKNOWN})),
    # non-root-privileged-ports
    case("lowport-ok", "non-root-privileged-ports", DEPLOYMENT, D),
    case("lowport-non-root", "non-root-privileged-ports", DEPLOYMENT, d(**{"C0.ports.0.containerPort": 80.0}), "declares port(s) 80, below 1024"),
    case(
        "lowport-run-as-non-root-only",
        "non-root-privileged-ports",
        DEPLOYMENT,
        d(**{"C0.ports.0.containerPort": 443.0, "P.securityContext.runAsUser": DELETE}),
        "declares port(s) 443",
    ),
    case(
        "lowport-root",
        "non-root-privileged-ports",
        DEPLOYMENT,
        d(
            **{
                "C0.ports.0.containerPort": 80.0,
                "P.securityContext.runAsUser": 0.0,
                "P.securityContext.runAsNonRoot": DELETE,
                "C0.securityContext.runAsNonRoot": DELETE,
            }
        ),
    ),
    case(
        "lowport-image-decides",
        "non-root-privileged-ports",
        DEPLOYMENT,
        d(
            **{
                "C0.ports.0.containerPort": 80.0,
                "P.securityContext.runAsUser": DELETE,
                "P.securityContext.runAsNonRoot": DELETE,
                "C0.securityContext.runAsNonRoot": DELETE,
            }
        ),
    ),
    case(
        "lowport-net-bind-service",
        "non-root-privileged-ports",
        DEPLOYMENT,
        d(**{"C0.ports.0.containerPort": 80.0, "C0.securityContext.capabilities.add": ["NET_BIND_SERVICE"]}),
    ),
    case(
        "lowport-sysctl",
        "non-root-privileged-ports",
        DEPLOYMENT,
        d(**{"C0.ports.0.containerPort": 80.0, "P.securityContext.sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]}),
    ),
    case("lowport-runtime-allows", "non-root-privileged-ports", DEPLOYMENT, d(**{"C0.ports.0.containerPort": 80.0}), config={"unprivilegedPortStart": 0.0}),
    case("lowport-ignores-patch", "non-root-privileged-ports", PATCH, d(**{"C0.ports.0.containerPort": 80.0})),
    case("lowport-unknown-user", "non-root-privileged-ports", DEPLOYMENT, d(**{"C0.ports.0.containerPort": 80.0, "P.securityContext.runAsUser": UNKNOWN})),
    case("lowport-unknown-port", "non-root-privileged-ports", DEPLOYMENT, d(**{"C0.ports.0.containerPort": UNKNOWN})),
    # no-duplicate-env-vars
    case("dup-env-ok", "no-duplicate-env-vars", DEPLOYMENT, D),
    case(
        "dup-env", "no-duplicate-env-vars", DEPLOYMENT, d(**{"C0.env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}), "env vars A more than once"
    ),
    # min-replicas
    case("replicas-ok", "min-replicas", DEPLOYMENT, D),
    case("replicas-one", "min-replicas", DEPLOYMENT, d(**{"spec.replicas": 1.0}), "runs 1 replica(s)"),
    case("replicas-missing", "min-replicas", DEPLOYMENT, d(**{"spec.replicas": DELETE}), "runs 1 replica(s)"),
    case("replicas-min-three", "min-replicas", DEPLOYMENT, D, "minimum of 3", config={"minReplicas": 3.0}),
    case("replicas-ignore-daemonset", "min-replicas", "kubernetes:apps/v1:DaemonSet", d(**{"spec.replicas": DELETE})),
    case("replicas-unknown", "min-replicas", DEPLOYMENT, d(**{"spec.replicas": UNKNOWN})),
    # replica-spread
    case("spread-ok", "replica-spread", DEPLOYMENT, D),
    case("spread-none", "replica-spread", DEPLOYMENT, d(**{"P.topologySpreadConstraints": DELETE}), "may all land on one node"),
    case(
        "spread-other-labels",
        "replica-spread",
        DEPLOYMENT,
        d(**{"P.topologySpreadConstraints.0.labelSelector.matchLabels": {"app": "other"}}),
        "may all land on one node",
    ),
    case(
        "spread-anti-affinity",
        "replica-spread",
        DEPLOYMENT,
        d(
            **{
                "P.topologySpreadConstraints": DELETE,
                "P.affinity": {
                    "podAntiAffinity": {
                        "preferredDuringSchedulingIgnoredDuringExecution": [
                            {
                                "weight": 100.0,
                                "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "eurekaserver"}}},
                            }
                        ]
                    }
                },
            }
        ),
    ),
    case("spread-anti-affinity-own-namespace", "replica-spread", DEPLOYMENT, anti_affinity(namespaces=["platform"])),
    case("spread-anti-affinity-other-namespaces", "replica-spread", DEPLOYMENT, anti_affinity(namespaces=["services"]), "may all land on one node"),
    case(
        "spread-anti-affinity-other-namespace-selector",
        "replica-spread",
        DEPLOYMENT,
        anti_affinity(namespaceSelector={"matchLabels": {"kubernetes.io/metadata.name": "services"}}),
        "may all land on one node",
    ),
    case(
        "spread-anti-affinity-own-namespace-selector",
        "replica-spread",
        DEPLOYMENT,
        anti_affinity(namespaceSelector={"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["platform", "services"]}]}),
    ),
    case("spread-anti-affinity-all-namespaces", "replica-spread", DEPLOYMENT, anti_affinity(namespaceSelector={})),
    case(
        "spread-anti-affinity-namespace-labels-unknowable", "replica-spread", DEPLOYMENT, anti_affinity(namespaceSelector={"matchLabels": {"team": "platform"}})
    ),
    case("spread-anti-affinity-unknown-namespaces", "replica-spread", DEPLOYMENT, anti_affinity(namespaces=[UNKNOWN])),
    case(
        "spread-anti-affinity-unknown-workload-namespace",
        "replica-spread",
        DEPLOYMENT,
        edit(anti_affinity(namespaces=["services"]), **{"metadata.namespace": UNKNOWN}),
    ),
    case("spread-anti-affinity-ignores-daemonset", "replica-spread", "kubernetes:apps/v1:DaemonSet", anti_affinity(namespaces=["services"])),
    case("spread-single-replica", "replica-spread", DEPLOYMENT, d(**{"spec.replicas": 1.0, "P.topologySpreadConstraints": DELETE})),
    case("spread-zone-only", "replica-spread", DEPLOYMENT, D, "topology.kubernetes.io/zone", config={"topologyKeys": ["topology.kubernetes.io/zone"]}),
    case("spread-unknown-labels", "replica-spread", DEPLOYMENT, d(**{"spec.template.metadata.labels.app": UNKNOWN})),
    # selector-matches-template
    case("selector-ok", "selector-matches-template", DEPLOYMENT, D),
    case("selector-mismatch", "selector-matches-template", DEPLOYMENT, d(**{"spec.selector.matchLabels.app": "other"}), "does not match the pod template"),
    case("selector-missing", "selector-matches-template", DEPLOYMENT, d(**{"spec.selector": DELETE}), "has no spec.selector"),
    case(
        "selector-expressions",
        "selector-matches-template",
        DEPLOYMENT,
        d(**{"spec.selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["eurekaserver"]}]}}),
    ),
    case(
        "selector-expressions-mismatch",
        "selector-matches-template",
        DEPLOYMENT,
        d(**{"spec.selector": {"matchExpressions": [{"key": "tier", "operator": "Exists"}]}}),
        "does not match",
    ),
    case("selector-ignore-job", "selector-matches-template", "kubernetes:batch/v1:Job", {"spec": {"template": D["spec"]["template"]}}),
    # rolling-update-strategy
    case("rollout-ok", "rolling-update-strategy", DEPLOYMENT, D),
    case("rollout-recreate", "rolling-update-strategy", DEPLOYMENT, d(**{"spec.strategy": {"type": "Recreate"}}), "Recreate strategy"),
    case("rollout-missing", "rolling-update-strategy", DEPLOYMENT, d(**{"spec.strategy": DELETE}), "declares no spec.strategy"),
    case(
        "rollout-statefulset-ondelete",
        "rolling-update-strategy",
        "kubernetes:apps/v1:StatefulSet",
        d(**{"spec.strategy": DELETE, "spec.updateStrategy": {"type": "OnDelete"}}),
        "OnDelete",
    ),
    case("rollout-daemonset-default", "rolling-update-strategy", "kubernetes:apps/v1:DaemonSet", d(**{"spec.strategy": DELETE})),
    # no-host-ports
    case("hostport-ok", "no-host-ports", DEPLOYMENT, D),
    case("hostport", "no-host-ports", DEPLOYMENT, d(**{"C0.ports.0.hostPort": 8761.0}), "binds hostPort 8761"),
    case("hostport-allowed", "no-host-ports", DEPLOYMENT, d(**{"C0.ports.0.hostPort": 8761.0}), config={"allowedHostPorts": [8761.0]}),
    # host-port-capacity
    case("capacity-ok", "host-port-capacity", DEPLOYMENT, D),
    case(
        "capacity-pending", "host-port-capacity", DEPLOYMENT, d(**{"C0.ports.0.hostPort": 8761.0}), "1 pod(s) stay Pending", config={"schedulableWorkers": 1.0}
    ),
    case(
        "capacity-rollout-stuck",
        "host-port-capacity",
        DEPLOYMENT,
        d(**{"C0.ports.0.hostPort": 8761.0}),
        "rollout never finishes",
        config={"schedulableWorkers": 2.0},
    ),
    case(
        "capacity-rollout-ok",
        "host-port-capacity",
        DEPLOYMENT,
        d(**{"C0.ports.0.hostPort": 8761.0, "spec.strategy.rollingUpdate": {"maxSurge": 0.0, "maxUnavailable": 1.0}}),
        config={"schedulableWorkers": 2.0},
    ),
    case(
        "capacity-required-anti-affinity",
        "host-port-capacity",
        DEPLOYMENT,
        d(
            **{
                "spec.replicas": 3.0,
                "P.affinity": {
                    "podAntiAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": [
                            {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "eurekaserver"}}}
                        ]
                    }
                },
            }
        ),
        "required podAntiAffinity",
        config={"schedulableWorkers": 2.0},
    ),
    case(
        "capacity-anti-affinity-other-namespaces",
        "host-port-capacity",
        DEPLOYMENT,
        anti_affinity(required=True, replicas=3, namespaces=["services"]),
        config={"schedulableWorkers": 2.0},
    ),
    case(
        "capacity-anti-affinity-other-namespace-selector",
        "host-port-capacity",
        DEPLOYMENT,
        anti_affinity(required=True, replicas=3, namespaceSelector={"matchLabels": {"kubernetes.io/metadata.name": "services"}}),
        config={"schedulableWorkers": 2.0},
    ),
    case(
        "capacity-anti-affinity-own-namespace",
        "host-port-capacity",
        DEPLOYMENT,
        anti_affinity(required=True, replicas=3, namespaces=["services", "platform"]),
        "required podAntiAffinity",
        config={"schedulableWorkers": 2.0},
    ),
    case(
        "capacity-anti-affinity-unknown-namespaces",
        "host-port-capacity",
        DEPLOYMENT,
        anti_affinity(required=True, replicas=3, namespaces=UNKNOWN),
        config={"schedulableWorkers": 2.0},
    ),
    case(
        "capacity-ignore-daemonset",
        "host-port-capacity",
        "kubernetes:apps/v1:DaemonSet",
        d(**{"C0.ports.0.hostPort": 8761.0}),
        config={"schedulableWorkers": 1.0},
    ),
    case(
        "capacity-unknown-replicas",
        "host-port-capacity",
        DEPLOYMENT,
        d(**{"C0.ports.0.hostPort": 8761.0, "spec.replicas": UNKNOWN}),
        config={"schedulableWorkers": 1.0},
    ),
    # no-bare-pods
    case("bare-pod", "no-bare-pods", "kubernetes:core/v1:Pod", {"metadata": {"namespace": "platform"}, "spec": D["spec"]["template"]["spec"]}, "is a bare Pod"),
    case("bare-pod-deployment-ok", "no-bare-pods", DEPLOYMENT, D),
    case(
        "bare-pod-owned",
        "no-bare-pods",
        "kubernetes:core/v1:Pod",
        {"metadata": {"namespace": "platform", "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u"}]}, "spec": {}},
    ),
    case(
        "bare-pod-owners-empty",
        "no-bare-pods",
        "kubernetes:core/v1:Pod",
        {"metadata": {"namespace": "platform", "ownerReferences": []}, "spec": {}},
        "bare Pod",
    ),
    case("bare-pod-owner-unknown", "no-bare-pods", "kubernetes:core/v1:Pod", {"metadata": {"namespace": "platform", "ownerReferences": [UNKNOWN]}, "spec": {}}),
    # no-default-namespace
    case("ns-ok", "no-default-namespace", DEPLOYMENT, D),
    case("ns-missing", "no-default-namespace", DEPLOYMENT, d(**{"metadata.namespace": DELETE}), "sets no metadata.namespace"),
    case("ns-default", "no-default-namespace", "kubernetes:core/v1:ConfigMap", {"metadata": {"namespace": "default"}}, "namespace default"),
    case("ns-ignore-namespace-kind", "no-default-namespace", NAMESPACE, {"metadata": {"name": "platform"}}),
    case("ns-ignore-clusterrole", "no-default-namespace", "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", {"metadata": {"name": "x"}}),
    case("ns-ignore-crd-instance", "no-default-namespace", "kubernetes:example.com/v1:Widget", {"metadata": {"name": "x"}}),
    case("ns-forbidden", "no-default-namespace", DEPLOYMENT, D, "namespace platform", config={"forbiddenNamespaces": ["default", "platform"]}),
    case("ns-unknown", "no-default-namespace", DEPLOYMENT, d(**{"metadata.namespace": UNKNOWN})),
    # deprecated-api-version
    case("api-ok", "deprecated-api-version", DEPLOYMENT, D),
    case("api-extensions", "deprecated-api-version", "kubernetes:extensions/v1beta1:Deployment", D, "extensions/v1beta1"),
    case("api-apps-v1beta2", "deprecated-api-version", "kubernetes:apps/v1beta2:StatefulSet", D, "apps/v1beta2"),
    case("api-policy-v1beta1", "deprecated-api-version", "kubernetes:policy/v1beta1:PodDisruptionBudget", {}, "policy/v1beta1"),
    case("api-batch-v1beta1", "deprecated-api-version", "kubernetes:batch/v1beta1:CronJob", {}, "batch/v1beta1"),
    case("api-alpha-not-flagged", "deprecated-api-version", "kubernetes:storage.k8s.io/v1alpha1:VolumeAttributesClass", {}),
    case(
        "api-alpha-flagged",
        "deprecated-api-version",
        "kubernetes:storage.k8s.io/v1alpha1:VolumeAttributesClass",
        {},
        "pre-release API version",
        config={"flagAlphaBeta": True},
    ),
    case("api-ignore-command", "deprecated-api-version", "command:remote:Command", {"create": "kubectl apply -f extensions-v1beta1.yaml"}),
]


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_rule(c: Case) -> None:
    assert_case(c)


# Every workload kind: where its pod spec, labels and replicas live.
TEMPLATE = D["spec"]["template"]
KINDS: dict[str, tuple[str, dict[str, Any], Any]] = {
    "Deployment": (DEPLOYMENT, {"spec": {"replicas": 3.0, "template": TEMPLATE}}, 3),
    "StatefulSet": ("kubernetes:apps/v1:StatefulSet", {"spec": {"replicas": 2.0, "template": TEMPLATE}}, 2),
    "ReplicaSet": ("kubernetes:apps/v1:ReplicaSet", {"spec": {"template": TEMPLATE}}, 1),
    "DaemonSet": ("kubernetes:apps/v1:DaemonSet", {"spec": {"template": TEMPLATE}}, None),
    "Job": ("kubernetes:batch/v1:Job", {"spec": {"parallelism": 4.0, "template": TEMPLATE}}, 4),
    "CronJob": ("kubernetes:batch/v1:CronJob", {"spec": {"jobTemplate": {"spec": {"template": TEMPLATE}}}}, 1),
    "Pod": ("kubernetes:core/v1:Pod", {"metadata": TEMPLATE["metadata"], "spec": TEMPLATE["spec"]}, 1),
}


@pytest.mark.parametrize("kind", KINDS)
def test_every_workload_kind_is_found_and_checked(kind: str) -> None:
    resource_type, props, replicas = KINDS[kind]
    wl = workload(resource_type, props)
    assert wl is not None and wl.kind == kind and wl.replicas == replicas and wl.pod_labels == {"app": "eurekaserver"}
    bad = edit(props, **{"metadata.namespace": "platform"})
    spec = bad["spec"] if kind == "Pod" else (bad["spec"]["jobTemplate"]["spec"]["template"]["spec"] if kind == "CronJob" else bad["spec"]["template"]["spec"])
    spec["containers"][0]["securityContext"]["privileged"] = True
    assert run("no-privileged-containers", resource_type, bad) == [
        f'{kind} platform/res ({resource_type} "res"): Container "eurekaserver" runs privileged, with full access to the node. Set securityContext.privileged to false.'
    ]


def test_non_workloads_are_not_workloads() -> None:
    assert workload(CONFIGMAP, {"spec": {"template": TEMPLATE}}) is None
    assert workload(PATCH, D) is None
    assert workload("command:remote:Command", {}) is None
