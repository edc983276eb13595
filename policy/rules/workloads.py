"""Rules for workloads (Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController,
Job, CronJob, Pod) and for Kubernetes objects in general (namespace, API version).

Each check is a pure generator over one `Workload` (common.workload finds the pod spec, labels
and replicas of every kind) yielding one full sentence per problem; `_on_workloads` turns it into
a validator that names the resource in front of each sentence.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .common import (
    ADVISORY,
    CRITICAL,
    HIGH,
    LOW,
    MANDATORY,
    MEDIUM,
    UNKNOWN,
    Config,
    Rule,
    Validator,
    Workload,
    containers,
    get,
    k8s_api,
    number,
    ref,
    selector_matches,
    seq,
    show,
    workload,
)

WorkloadCheck = Callable[[Workload, Config], Iterable[str]]

REPLICATED_KINDS = frozenset({"Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"})
LONG_RUNNING_KINDS = REPLICATED_KINDS | {"DaemonSet", "Pod"}
HOSTNAME_KEY = "kubernetes.io/hostname"

EXEMPT_NAMESPACES = {
    "exemptNamespaces": {
        "type": "array",
        "items": {"type": "string"},
        "default": [],
        "description": "Namespaces where this rule does not apply (e.g. kube-system for node agents).",
    }
}


def _on_workloads(check: WorkloadCheck, kinds: frozenset[str] | None = None) -> Validator:
    def validate(args: Any, report: Callable[..., None], cfg: Config) -> None:
        wl = workload(args.resource_type, args.props)
        if wl is None or (kinds is not None and wl.kind not in kinds):
            return
        if isinstance(wl.namespace, str) and wl.namespace in cfg.get("exemptNamespaces", ()):
            return
        for problem in check(wl, cfg):
            report(f"{ref(args)}: {problem}")

    validate.__name__ = check.__name__
    validate.__doc__ = check.__doc__
    return validate


def _sc(container: Any, pod_spec: Any, key: str) -> Any:
    """A security-context field with the container's value overriding the pod's."""
    value = get(container, "securityContext", key)
    return get(pod_spec, "securityContext", key) if value is None else value


# ---------------------------------------------------------------------------------------------
# Images


def parse_image(image: str) -> tuple[str, str, str, str]:
    """(registry, repository, tag, digest) of an image reference; registry '' for Docker Hub."""
    name, _, digest = image.partition("@")
    first, sep, rest = name.partition("/")
    registry = first if sep and ("." in first or ":" in first or first == "localhost") else ""
    path = rest if registry else name
    repo, tag = path, ""
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = path.rsplit(":", 1)
    return registry, repo, tag, digest


def _images(wl: Workload) -> Iterator[tuple[str, str]]:
    for label, c in containers(wl.pod_spec):
        image = get(c, "image")
        if isinstance(image, str):
            yield label, image


def check_image_registry(wl: Workload, cfg: Config) -> Iterator[str]:
    """Images come only from the stack's private registry."""
    allowed = [r for r in [cfg.get("registry", ""), *cfg.get("additionalRegistries", [])] if r]
    if not allowed:
        yield "The rule's `registry` setting is empty, so no image can be verified. Set registry (host:port) in the policy pack config for this stack."
        return
    for label, image in _images(wl):
        registry = parse_image(image)[0]
        if registry not in allowed:
            where = f"registry {registry}" if registry else "Docker Hub (no registry host)"
            yield (
                f"{label.capitalize()} uses image {image} from {where}, but this stack pulls only from {', '.join(allowed)}. "
                f"Push the image to {allowed[0]} and reference it as {allowed[0]}/<repository>:<tag>."
            )


def _pinned(tag: str, digest: str, cfg: Config) -> bool:
    if digest:
        return True
    return bool(tag) and tag not in cfg.get("forbiddenTags", ["latest"]) and not cfg.get("requireDigest", False)


def check_image_pinned(wl: Workload, cfg: Config) -> Iterator[str]:
    """Images are pinned: a tag other than latest, or a digest."""
    for label, image in _images(wl):
        _, _, tag, digest = parse_image(image)
        if _pinned(tag, digest, cfg):
            continue
        if cfg.get("requireDigest", False):
            yield f"{label.capitalize()} uses image {image} without a digest, and this stack requires digests. Reference it as <image>@sha256:<digest>."
        elif not tag:
            yield f"{label.capitalize()} uses image {image} without a tag, which means latest. Pin it to a version tag or a digest (@sha256:...)."
        else:
            yield f"{label.capitalize()} uses image {image} with the mutable tag {tag}. Pin it to a version tag or a digest (@sha256:...)."


def check_image_pull_policy(wl: Workload, cfg: Config) -> Iterator[str]:
    """imagePullPolicy is Always, or IfNotPresent with a pinned tag or digest (never Never)."""
    allowed = cfg.get("allowedPolicies", ["Always", "IfNotPresent"])
    for label, c in containers(wl.pod_spec):
        image = get(c, "image")
        policy = get(c, "imagePullPolicy")
        if not isinstance(image, str) or policy is UNKNOWN:
            continue
        _, _, tag, digest = parse_image(image)
        pinned = bool(digest) or (bool(tag) and tag != "latest")
        effective = policy if isinstance(policy, str) and policy else ("IfNotPresent" if pinned else "Always")
        if effective not in allowed:
            yield f"{label.capitalize()} has imagePullPolicy {effective}, which this stack does not allow. Set imagePullPolicy to one of {', '.join(allowed)}."
        elif effective == "IfNotPresent" and not pinned:
            yield (
                f"{label.capitalize()} has imagePullPolicy IfNotPresent with the unpinned image {image}, so nodes keep running whatever they cached. "
                "Pin the image to a version tag or digest, or set imagePullPolicy to Always."
            )


# ---------------------------------------------------------------------------------------------
# Security context


def check_privileged(wl: Workload, cfg: Config) -> Iterator[str]:
    """No container runs privileged."""
    for label, c in containers(wl.pod_spec):
        if get(c, "securityContext", "privileged") is True:
            yield f"{label.capitalize()} runs privileged, with full access to the node. Set securityContext.privileged to false."


def check_privilege_escalation(wl: Workload, cfg: Config) -> Iterator[str]:
    """Every container sets allowPrivilegeEscalation: false."""
    for label, c in containers(wl.pod_spec):
        value = get(c, "securityContext", "allowPrivilegeEscalation")
        if value is UNKNOWN or value is False:
            continue
        state = "allows privilege escalation" if value is True else "does not set allowPrivilegeEscalation, which defaults to true"
        yield f"{label.capitalize()} {state}. Set securityContext.allowPrivilegeEscalation to false."


def check_host_namespaces(wl: Workload, cfg: Config) -> Iterator[str]:
    """Pods do not share the node's network, PID or IPC namespace."""
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if get(wl.pod_spec, key) is True:
            yield f"The pod spec sets {key}: true, which shares the node's namespace with the pod. Remove {key} or set it to false."


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


def check_run_as_non_root(wl: Workload, cfg: Config) -> Iterator[str]:
    """Containers run as non-root: runAsNonRoot true (pod or container) and runAsUser not 0."""
    for label, c in containers(wl.pod_spec):
        non_root, user = _sc(c, wl.pod_spec, "runAsNonRoot"), _sc(c, wl.pod_spec, "runAsUser")
        if number(user) == 0:
            yield f"{label.capitalize()} runs as user 0 (root). Set securityContext.runAsUser to a non-zero UID and runAsNonRoot to true."
        elif non_root is not True and non_root is not UNKNOWN:
            yield f"{label.capitalize()} does not set runAsNonRoot: true (in its own or the pod's securityContext). Set securityContext.runAsNonRoot to true and run as a non-zero UID."


def check_read_only_root_fs(wl: Workload, cfg: Config) -> Iterator[str]:
    """Containers have a read-only root filesystem."""
    for label, c in containers(wl.pod_spec):
        value = get(c, "securityContext", "readOnlyRootFilesystem")
        if value is not True and value is not UNKNOWN:
            yield f"{label.capitalize()} has a writable root filesystem. Set securityContext.readOnlyRootFilesystem to true and mount an emptyDir where it must write."


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


def check_automount_token(wl: Workload, cfg: Config) -> Iterator[str]:
    """Pods do not mount a service-account token unless they need the API."""
    value = get(wl.pod_spec, "automountServiceAccountToken")
    if value is not False and value is not UNKNOWN:
        yield "The pod spec does not set automountServiceAccountToken: false, so every container gets an API token. Set automountServiceAccountToken to false (or document why the pod calls the API)."


# ---------------------------------------------------------------------------------------------
# Resources, probes, env


def check_resources(wl: Workload, cfg: Config) -> Iterator[str]:
    """Containers set CPU and memory requests and limits."""
    wanted = [("requests", "cpu"), ("requests", "memory"), ("limits", "memory")]
    if cfg.get("requireCpuLimit", True):
        wanted.append(("limits", "cpu"))
    for label, c in containers(wl.pod_spec, init=False):
        resources = get(c, "resources")
        if resources is UNKNOWN:
            continue
        missing = [f"{kind}.{res}" for kind, res in wanted if get(resources, kind, res) is None]
        if missing:
            yield f"{label.capitalize()} does not set resources {', '.join(missing)}. Set them so the scheduler can place the pod and the node can protect itself."


def check_probes(wl: Workload, cfg: Config) -> Iterator[str]:
    """Long-running containers have liveness and readiness probes."""
    wanted = [p for p, on in (("livenessProbe", cfg.get("requireLiveness", True)), ("readinessProbe", cfg.get("requireReadiness", True))) if on]
    for label, c in containers(wl.pod_spec, init=False):
        missing = [p for p in wanted if get(c, p) is None]
        if missing:
            yield f"{label.capitalize()} has no {' or '.join(missing)}. Add them (httpGet, tcpSocket, grpc or exec) on a port the container declares."


def _probe_ports(c: Any) -> Iterator[tuple[str, Any]]:
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        for handler in ("httpGet", "tcpSocket", "grpc"):
            port = get(c, probe, handler, "port")
            if port is not None and port is not UNKNOWN:
                yield probe, port


def declared_ports(c: Any) -> tuple[set[str], set[int]] | None:
    """(names, numbers) of a container's ports; None when they cannot be known."""
    ports = seq(c, "ports")
    if ports is UNKNOWN or UNKNOWN in ports:
        return None
    raw_names, raw_numbers = [get(x, "name") for x in ports], [get(x, "containerPort") for x in ports]
    if UNKNOWN in raw_names or UNKNOWN in raw_numbers:
        return None
    names = {p for p in raw_names if isinstance(p, str)}
    numbers = {int(n) for n in map(number, raw_numbers) if n is not None}
    return names, numbers


def pod_ports(pod_spec: Any) -> tuple[set[str], set[int]] | None:
    """(names, numbers) declared by all regular containers of a pod; None when not all known."""
    items = seq(pod_spec, "containers")
    if items is UNKNOWN or UNKNOWN in items:
        return None
    names: set[str] = set()
    numbers: set[int] = set()
    for _, c in containers(pod_spec, init=False):
        declared = declared_ports(c)
        if declared is None:
            return None
        names |= declared[0]
        numbers |= declared[1]
    return names, numbers


def check_probe_ports(wl: Workload, cfg: Config) -> Iterator[str]:
    """Probes target a port the container declares (by name or number)."""
    for label, c in containers(wl.pod_spec, init=False):
        declared = declared_ports(c)
        if declared is None:
            continue
        names, numbers = declared
        for probe, port in _probe_ports(c):
            n = number(port)
            ok = (int(n) in numbers) if n is not None else (port in names)
            if not ok:
                yield f"{label.capitalize()} has a {probe} on port {show(port)}, which the container does not declare. Declare it in ports[] (e.g. name: http) or point the probe at a declared port."


_SECRET_NAME = r"(?i)(pass(word|wd)?|secret|token|api[_-]?key|private[_-]?key|credential)"
_HARMLESS_VALUE = re.compile(r"^(true|false|yes|no|\d+|\$\(.*\))?$", re.IGNORECASE)


def check_env_secrets(wl: Workload, cfg: Config) -> Iterator[str]:
    """No secret literals in env; secretKeyRef only where the stack allows it."""
    pattern = re.compile(cfg.get("secretNamePattern", _SECRET_NAME))
    for label, c in containers(wl.pod_spec):
        env = seq(c, "env")
        for e in [] if env is UNKNOWN else env:
            name, value = get(e, "name"), get(e, "value")
            if not isinstance(name, str):
                continue
            if isinstance(value, str) and pattern.search(name) and not _HARMLESS_VALUE.match(value.strip()):
                yield f"{label.capitalize()} sets the env var {name} to a literal value that looks like a secret. Store it in a Secret and mount it as a file (or use valueFrom.secretKeyRef where allowed)."
            if get(e, "valueFrom", "secretKeyRef") is not None and not cfg.get("allowSecretKeyRef", True):
                yield f"{label.capitalize()} reads the secret for env var {name} through secretKeyRef, which this stack does not allow. Mount the Secret as a file instead."
        if not cfg.get("allowSecretKeyRef", True):
            env_from = seq(c, "envFrom")
            for e in [] if env_from is UNKNOWN else env_from:
                if get(e, "secretRef") is not None:
                    yield f"{label.capitalize()} imports a whole Secret through envFrom.secretRef, which this stack does not allow. Mount the Secret as a file instead."


def check_duplicate_env(wl: Workload, cfg: Config) -> Iterator[str]:
    """No env var is defined twice in one container."""
    for label, c in containers(wl.pod_spec):
        env = seq(c, "env")
        names = [get(e, "name") for e in ([] if env is UNKNOWN else env)]
        dupes = sorted({n for n in names if isinstance(n, str) and names.count(n) > 1})
        if dupes:
            yield f"{label.capitalize()} defines the env vars {', '.join(dupes)} more than once (only the last one counts). Keep one definition of each."


# ---------------------------------------------------------------------------------------------
# Replicas, scheduling, rollout


def check_min_replicas(wl: Workload, cfg: Config) -> Iterator[str]:
    """Replicated workloads run at least minReplicas replicas."""
    want = int(cfg.get("minReplicas", 2))
    if wl.replicas is not UNKNOWN and wl.replicas is not None and wl.replicas < want:
        yield f"It runs {wl.replicas} replica(s), fewer than this stack's minimum of {want}. Set spec.replicas to at least {want}."


def _spreads_over_hosts(wl: Workload, keys: list[str]) -> bool | None:
    """Whether topology spread or pod anti-affinity on one of `keys` selects the pods themselves."""
    result: bool | None = False
    tsc = seq(wl.pod_spec, "topologySpreadConstraints")
    anti = get(wl.pod_spec, "affinity", "podAntiAffinity")
    if tsc is UNKNOWN or anti is UNKNOWN:
        return None
    terms = [*seq(anti, "requiredDuringSchedulingIgnoredDuringExecution")]
    terms += [get(t, "podAffinityTerm") for t in seq(anti, "preferredDuringSchedulingIgnoredDuringExecution")]
    for term in [*tsc, *terms]:
        key = get(term, "topologyKey")
        if key is UNKNOWN:
            result = None
        if key not in keys:
            continue
        matches = selector_matches(get(term, "labelSelector", default={}), wl.pod_labels)
        if matches:
            return True
        if matches is None:
            result = None
    return result


def check_replica_spread(wl: Workload, cfg: Config) -> Iterator[str]:
    """Replicated workloads spread their pods over nodes (anti-affinity or topology spread)."""
    if wl.replicas is UNKNOWN or wl.replicas is None or wl.replicas < 2:
        return
    keys = cfg.get("topologyKeys", [HOSTNAME_KEY, "topology.kubernetes.io/zone"])
    if _spreads_over_hosts(wl, keys) is False:
        yield (
            f"Its {wl.replicas} replicas may all land on one node: no podAntiAffinity or topologySpreadConstraints on {' or '.join(keys)} selects its pods. "
            f"Add a topologySpreadConstraint (topologyKey {HOSTNAME_KEY}, labelSelector = the pod labels) or a preferred podAntiAffinity."
        )


def check_selector_matches_template(wl: Workload, cfg: Config) -> Iterator[str]:
    """spec.selector selects the pod template's labels."""
    if wl.selector is None:
        yield "It has no spec.selector. Set spec.selector.matchLabels to the pod template's labels."
        return
    if selector_matches(wl.selector, wl.pod_labels) is False:
        yield "Its spec.selector does not match the pod template's labels, so it would never own its own pods. Make spec.selector.matchLabels a subset of spec.template.metadata.labels."


def check_rolling_update(wl: Workload, cfg: Config) -> Iterator[str]:
    """Deployments declare a RollingUpdate strategy; StatefulSets and DaemonSets do not use OnDelete."""
    if wl.kind == "Deployment":
        stype = get(wl.props, "spec", "strategy", "type")
        if stype is UNKNOWN or stype == "RollingUpdate":
            return
        state = f"uses the {stype} strategy, which stops every pod before starting new ones" if stype else "declares no spec.strategy"
        yield f"It {state}. Set spec.strategy.type to RollingUpdate with explicit maxSurge and maxUnavailable."
    elif get(wl.props, "spec", "updateStrategy", "type") == "OnDelete":
        yield "It uses the OnDelete update strategy, so changes roll out only when someone deletes pods. Set spec.updateStrategy.type to RollingUpdate."


def check_host_ports(wl: Workload, cfg: Config) -> Iterator[str]:
    """No hostPort (except allowed ports)."""
    allowed = {int(p) for p in cfg.get("allowedHostPorts", []) if number(p) is not None}
    for label, c in containers(wl.pod_spec):
        for port in host_ports(c):
            if port not in allowed:
                yield f"{label.capitalize()} binds hostPort {port} on the node. Remove hostPort and reach the pod through a Service."


def host_ports(c: Any) -> list[int]:
    ports = seq(c, "ports")
    return [int(n) for n in (number(get(p, "hostPort")) for p in ([] if ports is UNKNOWN else ports)) if n]


def _required_host_anti_affinity(wl: Workload) -> bool:
    for term in seq(get(wl.pod_spec, "affinity", "podAntiAffinity", default={}), "requiredDuringSchedulingIgnoredDuringExecution") or []:
        if get(term, "topologyKey") == HOSTNAME_KEY and selector_matches(get(term, "labelSelector", default={}), wl.pod_labels):
            return True
    return False


def _int_or_percent(value: Any, total: int, round_up: bool) -> int | None:
    if isinstance(value, str) and value.endswith("%") and number(value[:-1]) is not None:
        share = float(value[:-1]) * total / 100
        return int(-(-share // 1)) if round_up else int(share)
    n = number(value)
    return None if n is None else int(n)


def check_host_port_capacity(wl: Workload, cfg: Config) -> Iterator[str]:
    """With hostPort (or required anti-affinity on hostname) at most one replica fits per node."""
    if wl.replicas is UNKNOWN or wl.replicas is None:
        return
    one_per_node = [f"hostPort {p}" for _, c in containers(wl.pod_spec) for p in host_ports(c)]
    if _required_host_anti_affinity(wl):
        one_per_node.append(f"required podAntiAffinity on {HOSTNAME_KEY}")
    if not one_per_node:
        return
    workers = int(cfg.get("schedulableWorkers", 1))
    why = " and ".join(one_per_node)
    if wl.replicas > workers:
        yield (
            f"It asks for {wl.replicas} replicas with {why}, which allows one pod per node, but this stack has {workers} schedulable worker(s), "
            f"so {wl.replicas - workers} pod(s) stay Pending. Remove the hostPort/anti-affinity (use a Service) or lower spec.replicas to {workers}."
        )
    elif wl.kind == "Deployment" and wl.replicas == workers and get(wl.props, "spec", "strategy", "type") in (None, "RollingUpdate"):
        max_unavailable = _int_or_percent(get(wl.props, "spec", "strategy", "rollingUpdate", "maxUnavailable", default="25%"), workers, round_up=False)
        if max_unavailable == 0:
            yield (
                f"It runs {wl.replicas} replicas with {why} on {workers} schedulable worker(s) and a rolling update with maxUnavailable 0, "
                "so the surge pod of every rollout finds no free node and the rollout never finishes. Set maxUnavailable to 1 (and maxSurge to 0) or remove the hostPort."
            )


# ---------------------------------------------------------------------------------------------
# Any Kubernetes object

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


def validate_namespace(args: Any, report: Callable[..., None], cfg: Config) -> None:
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


def validate_api_version(args: Any, report: Callable[..., None], cfg: Config) -> None:
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


def validate_bare_pod(args: Any, report: Callable[..., None], cfg: Config) -> None:
    """Pods are owned by a controller, not created bare."""
    if k8s_api(args.resource_type) == ("core", "v1", "Pod"):
        report(f"{ref(args)}: It is a bare Pod, which nothing recreates when its node fails or is drained. Run it from a Deployment, StatefulSet or Job.")


# ---------------------------------------------------------------------------------------------
# The rules

_K8S = ("kubernetes",)
_SEC = ("kubernetes", "security")
_REL = ("kubernetes", "reliability")


def _bool(description: str, default: bool) -> dict[str, Any]:
    return {"type": "boolean", "default": default, "description": description}


def _strings(description: str, default: list[str]) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string"}, "default": default, "description": description}


RULES: list[Rule] = [
    Rule(
        "image-registry-allowed",
        "Container images come only from the stack's private registry.",
        HIGH,
        MANDATORY,
        "Push the image to the stack's private registry (registry.images in the stack config) and reference it as <registry>/<repository>:<tag>.",
        _on_workloads(check_image_registry),
        settings={
            "registry": {"type": "string", "default": "", "description": "host:port of the stack's private registry, e.g. 192.168.226.131:5000."},
            "additionalRegistries": _strings("Other registries (host[:port]) this stack may pull from.", []),
        },
        required=("registry",),
        tags=_SEC,
    ),
    Rule(
        "image-pinned",
        "Container images are pinned: a version tag other than latest, or a digest.",
        HIGH,
        MANDATORY,
        "Reference images as <registry>/<repository>:<version> or <registry>/<repository>@sha256:<digest>; never :latest or no tag.",
        _on_workloads(check_image_pinned),
        settings={
            "requireDigest": _bool("Require a digest (@sha256:...) rather than a tag.", False),
            "forbiddenTags": _strings("Tags that are mutable by convention.", ["latest"]),
        },
        tags=_REL,
    ),
    Rule(
        "image-pull-policy",
        "imagePullPolicy is Always, or IfNotPresent with a pinned tag or digest (never Never).",
        LOW,
        ADVISORY,
        "Keep imagePullPolicy: IfNotPresent with immutable, pinned tags (the platform's choice: pods restart without a registry round trip), or use Always.",
        _on_workloads(check_image_pull_policy),
        settings={"allowedPolicies": _strings("Pull policies this stack accepts.", ["Always", "IfNotPresent"])},
        tags=_REL,
    ),
    Rule(
        "no-privileged-containers",
        "No container runs privileged.",
        CRITICAL,
        MANDATORY,
        "Remove securityContext.privileged (or set it to false); grant a specific capability only if the workload truly needs one.",
        _on_workloads(check_privileged),
        settings=EXEMPT_NAMESPACES,
        tags=_SEC,
    ),
    Rule(
        "no-privilege-escalation",
        "Every container sets securityContext.allowPrivilegeEscalation: false.",
        HIGH,
        MANDATORY,
        "Set securityContext.allowPrivilegeEscalation: false on every container (and init container).",
        _on_workloads(check_privilege_escalation),
        settings=EXEMPT_NAMESPACES,
        tags=_SEC,
    ),
    Rule(
        "no-host-namespaces",
        "Pods do not use the node's network, PID or IPC namespace (hostNetwork, hostPID, hostIPC).",
        CRITICAL,
        MANDATORY,
        "Remove hostNetwork/hostPID/hostIPC from the pod spec; expose the pod through a Service instead of the node's network.",
        _on_workloads(check_host_namespaces),
        settings=EXEMPT_NAMESPACES,
        tags=_SEC,
    ),
    Rule(
        "no-host-path-volumes",
        "Pods do not mount hostPath volumes.",
        HIGH,
        MANDATORY,
        "Replace hostPath volumes with emptyDir, ConfigMap/Secret or PersistentVolumeClaim volumes.",
        _on_workloads(check_host_path),
        settings={**EXEMPT_NAMESPACES, "allowedPaths": _strings("Node path prefixes that may be mounted.", [])},
        tags=_SEC,
    ),
    Rule(
        "container-capabilities",
        "Containers drop ALL Linux capabilities and add none beyond the allowed list.",
        HIGH,
        MANDATORY,
        'Set securityContext.capabilities.drop: ["ALL"] and remove capabilities.add (NET_BIND_SERVICE is the only one PSS restricted allows).',
        _on_workloads(check_capabilities),
        settings={
            **EXEMPT_NAMESPACES,
            "allowedCapabilities": _strings("Capabilities containers may add (without the CAP_ prefix).", []),
            "requireDropAll": _bool("Require capabilities.drop to contain ALL.", True),
        },
        tags=_SEC,
    ),
    Rule(
        "run-as-non-root",
        "Containers run as a non-root user (runAsNonRoot: true, runAsUser not 0).",
        HIGH,
        MANDATORY,
        "Set securityContext.runAsNonRoot: true and runAsUser/runAsGroup to a non-zero UID/GID on the pod (or every container); build the image with a numeric USER.",
        _on_workloads(check_run_as_non_root),
        settings=EXEMPT_NAMESPACES,
        tags=_SEC,
    ),
    Rule(
        "read-only-root-filesystem",
        "Containers have a read-only root filesystem.",
        MEDIUM,
        MANDATORY,
        "Set securityContext.readOnlyRootFilesystem: true and mount emptyDir volumes at the paths the app writes (e.g. /tmp).",
        _on_workloads(check_read_only_root_fs),
        settings=EXEMPT_NAMESPACES,
        tags=_SEC,
    ),
    Rule(
        "seccomp-profile",
        "A seccomp profile (RuntimeDefault or Localhost) applies to every container, set on the pod or the container.",
        MEDIUM,
        MANDATORY,
        "Set spec.securityContext.seccompProfile.type: RuntimeDefault on the pod (or on each container).",
        _on_workloads(check_seccomp),
        settings={**EXEMPT_NAMESPACES, "allowedProfiles": _strings("Accepted seccompProfile types.", ["RuntimeDefault", "Localhost"])},
        tags=_SEC,
    ),
    Rule(
        "service-account-token-automount",
        "Pods set automountServiceAccountToken: false unless they call the Kubernetes API.",
        MEDIUM,
        MANDATORY,
        "Set spec.automountServiceAccountToken: false in the pod template; give pods that need the API their own ServiceAccount with minimal RBAC.",
        _on_workloads(check_automount_token),
        settings=EXEMPT_NAMESPACES,
        tags=_SEC,
    ),
    Rule(
        "no-secrets-in-env",
        "Env vars carry no secret literals (and no secretKeyRef where the stack forbids it).",
        HIGH,
        MANDATORY,
        "Put secrets in a Kubernetes Secret (from secret config) and mount it as a file; env secretKeyRef is acceptable where allowSecretKeyRef is true.",
        _on_workloads(check_env_secrets),
        settings={
            "secretNamePattern": {"type": "string", "default": _SECRET_NAME, "description": "Regex for env var names that hold secrets."},
            "allowSecretKeyRef": _bool("Allow env valueFrom.secretKeyRef and envFrom.secretRef.", True),
        },
        tags=_SEC,
    ),
    Rule(
        "resource-requests-limits",
        "Containers set CPU and memory requests and limits.",
        MEDIUM,
        MANDATORY,
        "Set resources.requests.cpu/memory and resources.limits.memory (and limits.cpu) on every container.",
        _on_workloads(check_resources),
        settings={"requireCpuLimit": _bool("Also require limits.cpu.", True)},
        tags=_REL,
    ),
    Rule(
        "probes-present",
        "Long-running containers have liveness and readiness probes.",
        MEDIUM,
        MANDATORY,
        "Add readinessProbe and livenessProbe (httpGet/tcpSocket/grpc on a declared port, or exec) to every container.",
        _on_workloads(check_probes, LONG_RUNNING_KINDS),
        settings={"requireLiveness": _bool("Require livenessProbe.", True), "requireReadiness": _bool("Require readinessProbe.", True)},
        tags=_REL,
    ),
    Rule(
        "probe-ports-declared",
        "Probes target a port the container declares, by name or number.",
        MEDIUM,
        MANDATORY,
        "Declare the probe's port in the container's ports[] (with a name such as http) and point the probe at that name.",
        _on_workloads(check_probe_ports),
        tags=_REL,
    ),
    Rule(
        "no-duplicate-env-vars",
        "No env var is defined twice in one container.",
        LOW,
        ADVISORY,
        "Keep a single definition of each env var per container.",
        _on_workloads(check_duplicate_env),
        tags=_K8S,
    ),
    Rule(
        "min-replicas",
        "Replicated workloads (Deployment, StatefulSet, ReplicaSet) run at least minReplicas replicas.",
        MEDIUM,
        MANDATORY,
        "Set spec.replicas to at least the stack's minReplicas (eureka.replicas in the stack config).",
        _on_workloads(check_min_replicas, REPLICATED_KINDS),
        settings={"minReplicas": {"type": "integer", "minimum": 1, "default": 2, "description": "Minimum replicas of a replicated workload."}},
        tags=_REL,
    ),
    Rule(
        "replica-spread",
        "Workloads with more than one replica spread them over nodes (pod anti-affinity or topology spread on the pod labels).",
        MEDIUM,
        MANDATORY,
        "Add a topologySpreadConstraint with topologyKey kubernetes.io/hostname and labelSelector = the pod labels (ScheduleAnyway on small clusters), or a preferred podAntiAffinity.",
        _on_workloads(check_replica_spread, REPLICATED_KINDS),
        settings={"topologyKeys": _strings("Topology keys that count as spreading.", [HOSTNAME_KEY, "topology.kubernetes.io/zone"])},
        tags=_REL,
    ),
    Rule(
        "selector-matches-template",
        "A workload's spec.selector selects its own pod template labels.",
        HIGH,
        MANDATORY,
        "Make spec.selector.matchLabels a subset of spec.template.metadata.labels.",
        _on_workloads(check_selector_matches_template, frozenset({"Deployment", "StatefulSet", "ReplicaSet", "DaemonSet"})),
        tags=_K8S,
    ),
    Rule(
        "rolling-update-strategy",
        "Deployments declare a RollingUpdate strategy; StatefulSets and DaemonSets do not use OnDelete.",
        LOW,
        ADVISORY,
        "Set spec.strategy: {type: RollingUpdate, rollingUpdate: {maxSurge, maxUnavailable}} on Deployments.",
        _on_workloads(check_rolling_update, frozenset({"Deployment", "StatefulSet", "DaemonSet"})),
        tags=_REL,
    ),
    Rule(
        "no-host-ports",
        "Containers do not bind hostPorts (except allowed ones).",
        MEDIUM,
        MANDATORY,
        "Remove ports[].hostPort and reach the pods through a Service (ClusterIP, NodePort or LoadBalancer).",
        _on_workloads(check_host_ports),
        settings={
            **EXEMPT_NAMESPACES,
            "allowedHostPorts": {"type": "array", "items": {"type": "integer"}, "default": [], "description": "hostPorts that are allowed."},
        },
        tags=_SEC,
    ),
    Rule(
        "host-port-capacity",
        "A workload with hostPort (or required pod anti-affinity on hostname) asks for no more replicas than the stack has schedulable workers, and can still roll out.",
        HIGH,
        MANDATORY,
        "Drop the hostPort and use a Service (the platform's default, eureka.hostPort: 0), or keep replicas <= schedulable workers with maxUnavailable >= 1.",
        _on_workloads(check_host_port_capacity),
        settings={"schedulableWorkers": {"type": "integer", "minimum": 0, "default": 1, "description": "Workers that accept pods (not cordoned)."}},
        tags=_REL,
    ),
    Rule(
        "no-bare-pods",
        "Pods are created by a controller (Deployment, StatefulSet, Job...), not bare.",
        MEDIUM,
        MANDATORY,
        "Wrap the pod spec in a Deployment (long-running) or a Job (run to completion).",
        validate_bare_pod,
        tags=_REL,
    ),
    Rule(
        "no-default-namespace",
        "Namespaced Kubernetes objects name a namespace, and not default.",
        MEDIUM,
        MANDATORY,
        "Set metadata.namespace to a namespace the platform creates (the namespaces list in the stack config).",
        validate_namespace,
        settings={"forbiddenNamespaces": _strings("Namespaces objects must not use.", ["default"])},
        tags=_K8S,
    ),
    Rule(
        "deprecated-api-version",
        "Kubernetes objects use current API versions (no extensions/v1beta1, apps/v1beta1/2, policy/v1beta1, batch/v1beta1...).",
        HIGH,
        MANDATORY,
        "Switch the resource to the stable API version (e.g. k8s.apps.v1.Deployment, k8s.policy.v1.PodDisruptionBudget, k8s.batch.v1.CronJob).",
        validate_api_version,
        settings={"flagAlphaBeta": _bool("Also flag every other alpha/beta version of a built-in group.", False)},
        tags=_K8S,
    ),
]
