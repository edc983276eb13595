"""Rules for pod and container security: privileges, host namespaces and paths, capabilities,
the user and group, the root filesystem, seccomp, sysctls and /proc, the service account and its
token, and secrets in env vars.
Each matches a Pod Security Standards control or a common admission policy (README.md)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from .common import CRITICAL, HIGH, MANDATORY, MEDIUM, UNKNOWN, Config, declared, flag, get, number, seq, strings
from .kube import EXEMPT_NAMESPACES, SECURITY_TAGS, Workload, containers, security_context, workload_rule


@workload_rule(
    "no-privileged-containers",
    "No container runs privileged.",
    CRITICAL,
    MANDATORY,
    "Remove securityContext.privileged (or set it to false); grant a specific capability only if the workload truly needs one.",
    settings=EXEMPT_NAMESPACES,
    tags=SECURITY_TAGS,
)
def check_privileged(wl: Workload, cfg: Config) -> Iterator[str]:
    """No container runs privileged."""
    for label, c in containers(wl.pod_spec):
        if get(c, "securityContext", "privileged") is True:
            yield f"{label.capitalize()} runs privileged, with full access to the node. Set securityContext.privileged to false."


@workload_rule(
    "no-privilege-escalation",
    "Every container sets securityContext.allowPrivilegeEscalation: false.",
    HIGH,
    MANDATORY,
    "Set securityContext.allowPrivilegeEscalation: false on every container (and init container).",
    settings=EXEMPT_NAMESPACES,
    tags=SECURITY_TAGS,
)
def check_privilege_escalation(wl: Workload, cfg: Config) -> Iterator[str]:
    """Every container sets allowPrivilegeEscalation: false."""
    for label, c in containers(wl.pod_spec):
        value = get(c, "securityContext", "allowPrivilegeEscalation")
        if value is UNKNOWN or value is False:
            continue
        state = "allows privilege escalation" if value is True else "does not set allowPrivilegeEscalation, which defaults to true"
        yield f"{label.capitalize()} {state}. Set securityContext.allowPrivilegeEscalation to false."


@workload_rule(
    "no-host-namespaces",
    "Pods do not use the node's network, PID or IPC namespace (hostNetwork, hostPID, hostIPC).",
    CRITICAL,
    MANDATORY,
    "Remove hostNetwork/hostPID/hostIPC from the pod spec; expose the pod through a Service instead of the node's network.",
    settings=EXEMPT_NAMESPACES,
    tags=SECURITY_TAGS,
)
def check_host_namespaces(wl: Workload, cfg: Config) -> Iterator[str]:
    """Pods do not share the node's network, PID or IPC namespace."""
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if get(wl.pod_spec, key) is True:
            yield f"The pod spec sets {key}: true, which shares the node's namespace with the pod. Remove {key} or set it to false."


@workload_rule(
    "no-host-path-volumes",
    "Pods do not mount hostPath volumes.",
    HIGH,
    MANDATORY,
    "Replace hostPath volumes with emptyDir, ConfigMap/Secret or PersistentVolumeClaim volumes.",
    settings={**EXEMPT_NAMESPACES, "allowedPaths": strings("Node path prefixes that may be mounted.", [])},
    tags=SECURITY_TAGS,
)
def check_host_path(wl: Workload, cfg: Config) -> Iterator[str]:
    """No hostPath volumes (except allowed path prefixes)."""
    allowed = cfg.get("allowedPaths", [])
    volumes = seq(wl.pod_spec, "volumes")
    for v in [] if volumes is UNKNOWN else volumes:
        path = get(v, "hostPath", "path")
        if path is None or path is UNKNOWN:
            continue
        if isinstance(path, str) and any(path == p or path.startswith(p.rstrip("/") + "/") for p in allowed):
            continue
        yield f'Volume "{get(v, "name")}" mounts the node path {path} (hostPath). Use an emptyDir, a ConfigMap/Secret or a PersistentVolumeClaim instead.'


@workload_rule(
    "container-capabilities",
    "Containers drop ALL Linux capabilities and add none beyond the allowed list.",
    HIGH,
    MANDATORY,
    'Set securityContext.capabilities.drop: ["ALL"] and remove capabilities.add (NET_BIND_SERVICE is the only one PSS restricted allows).',
    settings={
        **EXEMPT_NAMESPACES,
        "allowedCapabilities": strings("Capabilities containers may add (without the CAP_ prefix).", []),
        "requireDropAll": flag("Require capabilities.drop to contain ALL.", True),
    },
    tags=SECURITY_TAGS,
)
def check_capabilities(wl: Workload, cfg: Config) -> Iterator[str]:
    """Containers drop ALL capabilities and add none beyond the allowed list."""
    allowed = set(cfg.get("allowedCapabilities", []))
    for label, c in containers(wl.pod_spec):
        add, drop = seq(c, "securityContext", "capabilities", "add"), seq(c, "securityContext", "capabilities", "drop")
        if add is not UNKNOWN:
            extra = sorted(str(a) for a in add if a is not UNKNOWN and str(a).upper().removeprefix("CAP_") not in allowed)
            if extra:
                yield f"{label.capitalize()} adds the capabilities {', '.join(extra)}. Remove them from securityContext.capabilities.add."
        if cfg.get("requireDropAll", True) and drop is not UNKNOWN and UNKNOWN not in drop and "ALL" not in [str(d).upper() for d in drop]:
            yield f'{label.capitalize()} does not drop all capabilities. Set securityContext.capabilities.drop to ["ALL"].'


@workload_rule(
    "run-as-non-root",
    "Containers run as a non-root user (runAsNonRoot: true, runAsUser not 0).",
    HIGH,
    MANDATORY,
    "Set securityContext.runAsNonRoot: true and runAsUser/runAsGroup to a non-zero UID/GID on the pod (or every container); build the image with a numeric USER.",
    settings=EXEMPT_NAMESPACES,
    tags=SECURITY_TAGS,
)
def check_run_as_non_root(wl: Workload, cfg: Config) -> Iterator[str]:
    """Containers run as non-root: runAsNonRoot true (pod or container) and runAsUser not 0."""
    for label, c in containers(wl.pod_spec):
        non_root, user = security_context(c, wl.pod_spec, "runAsNonRoot"), security_context(c, wl.pod_spec, "runAsUser")
        if number(user) == 0:
            yield f"{label.capitalize()} runs as user 0 (root). Set securityContext.runAsUser to a non-zero UID and runAsNonRoot to true."
        elif non_root is not True and non_root is not UNKNOWN:
            yield f"{label.capitalize()} does not set runAsNonRoot: true (in its own or the pod's securityContext). Set securityContext.runAsNonRoot to true and run as a non-zero UID."


@workload_rule(
    "read-only-root-filesystem",
    "Containers have a read-only root filesystem.",
    MEDIUM,
    MANDATORY,
    "Set securityContext.readOnlyRootFilesystem: true and mount emptyDir volumes at the paths the app writes (e.g. /tmp).",
    settings=EXEMPT_NAMESPACES,
    tags=SECURITY_TAGS,
)
def check_read_only_root_fs(wl: Workload, cfg: Config) -> Iterator[str]:
    """Containers have a read-only root filesystem."""
    for label, c in containers(wl.pod_spec):
        value = get(c, "securityContext", "readOnlyRootFilesystem")
        if value is not True and value is not UNKNOWN:
            yield f"{label.capitalize()} has a writable root filesystem. Set securityContext.readOnlyRootFilesystem to true and mount an emptyDir where it must write."


@workload_rule(
    "seccomp-profile",
    "A seccomp profile (RuntimeDefault or Localhost) applies to every container, set on the pod or the container.",
    MEDIUM,
    MANDATORY,
    "Set spec.securityContext.seccompProfile.type: RuntimeDefault on the pod (or on each container).",
    settings={**EXEMPT_NAMESPACES, "allowedProfiles": strings("Accepted seccompProfile types.", ["RuntimeDefault", "Localhost"])},
    tags=SECURITY_TAGS,
)
def check_seccomp(wl: Workload, cfg: Config) -> Iterator[str]:
    """A seccomp profile (RuntimeDefault or Localhost) applies to every container."""
    allowed = cfg.get("allowedProfiles", ["RuntimeDefault", "Localhost"])
    for label, c in containers(wl.pod_spec):
        profile = get(c, "securityContext", "seccompProfile", "type")
        if profile is None:
            profile = get(wl.pod_spec, "securityContext", "seccompProfile", "type")
        if profile is UNKNOWN or profile in allowed:
            continue
        state = f"runs with the seccomp profile {profile}" if profile else "runs without a seccomp profile (Unconfined)"
        yield f"{label.capitalize()} {state}. Set securityContext.seccompProfile.type to RuntimeDefault on the pod or the container."


@workload_rule(
    "service-account-token-automount",
    "Pods set automountServiceAccountToken: false unless they call the Kubernetes API (then: true, with their own ServiceAccount).",
    MEDIUM,
    MANDATORY,
    "Set spec.automountServiceAccountToken: false in the pod template; give pods that need the API their own ServiceAccount with minimal RBAC.",
    settings=EXEMPT_NAMESPACES,
    tags=SECURITY_TAGS,
)
def check_automount_token(wl: Workload, cfg: Config) -> Iterator[str]:
    """Pods do not mount a service-account token unless they need the API."""
    value = get(wl.pod_spec, "automountServiceAccountToken")
    account = get(wl.pod_spec, "serviceAccountName")
    if value is True and (account is UNKNOWN or (isinstance(account, str) and account not in ("", "default"))):
        return  # an explicit choice, with the pod's own ServiceAccount (whose RBAC says what it may do)
    if value is True:
        yield "The pod spec mounts an API token (automountServiceAccountToken: true) for the default ServiceAccount. Give the pod its own ServiceAccount (serviceAccountName) with minimal RBAC, or set automountServiceAccountToken to false."
    elif value is not False and value is not UNKNOWN and account is not UNKNOWN:
        yield "The pod spec does not set automountServiceAccountToken: false, so every container gets an API token. Set automountServiceAccountToken to false, or to true with the pod's own ServiceAccount when it calls the API."


# Pod Security Standards baseline: the sysctls namespaced to the pod and isolated from the node
# (the list as of Kubernetes 1.29; kubelets allow exactly these without --allowed-unsafe-sysctls).
SAFE_SYSCTLS = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
]


@workload_rule(
    "no-unsafe-sysctls",
    "Pods set only the safe, namespaced sysctls (Pod Security baseline list).",
    HIGH,
    MANDATORY,
    "Remove spec.securityContext.sysctls entries outside the safe set; tune the node itself (not from a pod) if the value really must change.",
    settings={**EXEMPT_NAMESPACES, "allowedSysctls": strings("Sysctls pods may set.", SAFE_SYSCTLS)},
    tags=SECURITY_TAGS,
)
def check_sysctls(wl: Workload, cfg: Config) -> Iterator[str]:
    """Pods set only safe sysctls."""
    allowed = set(cfg.get("allowedSysctls", SAFE_SYSCTLS))
    sysctls = seq(wl.pod_spec, "securityContext", "sysctls")
    names = [get(x, "name") for x in ([] if sysctls is UNKNOWN else sysctls)]
    unsafe = sorted(n for n in names if isinstance(n, str) and n not in allowed)
    if unsafe:
        yield (
            f"The pod sets the sysctls {', '.join(unsafe)}, which are not in the safe set: they reach beyond the pod or are not isolated from the node. "
            "Remove them from spec.securityContext.sysctls."
        )


@workload_rule(
    "no-unmasked-proc-mount",
    "Containers keep the default /proc masks (procMount unset or Default, never Unmasked).",
    HIGH,
    MANDATORY,
    "Remove securityContext.procMount (or set it to Default).",
    settings=EXEMPT_NAMESPACES,
    tags=SECURITY_TAGS,
)
def check_proc_mount(wl: Workload, cfg: Config) -> Iterator[str]:
    """No container mounts /proc without the default masks."""
    for label, c in containers(wl.pod_spec):
        value = get(c, "securityContext", "procMount")
        if value is not None and value is not UNKNOWN and value != "Default":
            yield f"{label.capitalize()} sets procMount {value}, which exposes /proc paths the runtime masks by default. Remove securityContext.procMount or set it to Default."


def _ids(pod_spec: Any, key: str) -> list[float] | None:
    """The group IDs of the pod's securityContext.fsGroup or .supplementalGroups; None: unknown."""
    items = seq(pod_spec, "securityContext", key) if key == "supplementalGroups" else [get(pod_spec, "securityContext", key)]
    if items is UNKNOWN or UNKNOWN in items:
        return None
    return [n for n in map(number, items) if n is not None]


@workload_rule(
    "run-as-non-root-group",
    "Containers run with a non-root primary group (runAsGroup set and not 0), and the pod adds no group 0 (fsGroup, supplementalGroups).",
    HIGH,
    MANDATORY,
    "Set securityContext.runAsGroup (and fsGroup) to a non-zero GID on the pod; leave 0 out of supplementalGroups.",
    settings={**EXEMPT_NAMESPACES, "requireRunAsGroup": flag("Require runAsGroup to be set (unset, the image decides, usually group 0).", True)},
    tags=SECURITY_TAGS,
)
def check_run_as_group(wl: Workload, cfg: Config) -> Iterator[str]:
    """Containers run with a non-root group; the pod adds no group 0."""
    for key in ("fsGroup", "supplementalGroups"):
        ids = _ids(wl.pod_spec, key)
        if ids and 0 in ids:
            yield f"The pod's securityContext.{key} includes group 0 (root), which every container then belongs to. Use a non-zero GID."
    for label, c in containers(wl.pod_spec):
        group = security_context(c, wl.pod_spec, "runAsGroup")
        if group is UNKNOWN:
            continue
        if number(group) == 0:
            yield f"{label.capitalize()} runs with group 0 (runAsGroup: 0), so files owned by group root are its own. Set securityContext.runAsGroup to a non-zero GID."
        elif group is None and cfg.get("requireRunAsGroup", True):
            yield f"{label.capitalize()} does not set runAsGroup (in its own or the pod's securityContext), so the image decides, usually group 0. Set securityContext.runAsGroup to a non-zero GID."


def service_account(pod_spec: Any) -> Any:
    """The pod's ServiceAccount name ('' when unset, UNKNOWN when unknown); the deprecated
    serviceAccount field counts when serviceAccountName is unset."""
    name = get(pod_spec, "serviceAccountName")
    if name is None:
        name = get(pod_spec, "serviceAccount")
    return name if name is UNKNOWN or isinstance(name, str) else ""


@workload_rule(
    "no-default-service-account",
    "Pods run under their own ServiceAccount, not their namespace's default one.",
    MEDIUM,
    MANDATORY,
    "Create a ServiceAccount for the workload (automountServiceAccountToken: false unless it calls the API) and set spec.serviceAccountName to it.",
    settings=EXEMPT_NAMESPACES,
    tags=SECURITY_TAGS,
)
def check_default_service_account(wl: Workload, cfg: Config) -> Iterator[str]:
    """Pods do not use the default ServiceAccount."""
    name = service_account(wl.pod_spec)
    if name in ("", "default"):
        state = "sets no serviceAccountName" if name == "" else "names serviceAccountName default"
        yield (
            f"The pod spec {state}, so it runs as its namespace's default ServiceAccount, shared with every other such pod and with whatever RBAC is granted to it. "
            "Create a ServiceAccount for this workload and set spec.serviceAccountName."
        )


_SECRET_NAME = r"(?i)(pass(word|wd)?|secret|token|api[_-]?key|private[_-]?key|credential)"
_KEY_MATERIAL = re.compile(r"-{3,}\s*BEGIN [A-Z ]*PRIVATE KEY\s*-{3,}")  # whatever the name: PEM / OpenSSH private keys
_HARMLESS_VALUE = re.compile(r"^(true|false|yes|no|\d+|\$\(.*\))?$", re.IGNORECASE)


@workload_rule(
    "no-secrets-in-env",
    "Env vars carry no secret literals (by name, or private key material under any name) and no secretKeyRef where the stack forbids it.",
    HIGH,
    MANDATORY,
    "Put secrets in a Kubernetes Secret (from secret config) and mount it as a file; env secretKeyRef is acceptable where allowSecretKeyRef is true.",
    settings={
        "secretNamePattern": {"type": "string", "default": _SECRET_NAME, "description": "Regex for env var names that hold secrets."},
        "allowSecretKeyRef": flag("Allow env valueFrom.secretKeyRef and envFrom.secretRef.", True),
    },
    tags=SECURITY_TAGS,
)
def check_env_secrets(wl: Workload, cfg: Config) -> Iterator[str]:
    """No secret literals in env; secretKeyRef only where the stack allows it."""
    pattern = re.compile(cfg.get("secretNamePattern", _SECRET_NAME))
    for label, c in containers(wl.pod_spec):
        env = seq(c, "env")
        for e in [] if env is UNKNOWN else env:
            name, value = get(e, "name"), get(e, "value")
            if not isinstance(name, str):
                continue
            if isinstance(value, str) and ((pattern.search(name) and not _HARMLESS_VALUE.match(value.strip())) or _KEY_MATERIAL.search(value)):
                yield f"{label.capitalize()} sets the env var {name} to a literal value that looks like a secret. Store it in a Secret and mount it as a file (or use valueFrom.secretKeyRef where allowed)."
            if get(e, "valueFrom", "secretKeyRef") is not None and not cfg.get("allowSecretKeyRef", True):
                yield f"{label.capitalize()} reads the secret for env var {name} through secretKeyRef, which this stack does not allow. Mount the Secret as a file instead."
        if not cfg.get("allowSecretKeyRef", True):
            env_from = seq(c, "envFrom")
            for e in [] if env_from is UNKNOWN else env_from:
                if get(e, "secretRef") is not None:
                    yield f"{label.capitalize()} imports a whole Secret through envFrom.secretRef, which this stack does not allow. Mount the Secret as a file instead."


RULES = declared(__name__)
