"""Rules for what each container declares besides security: resource requests and limits,
probes (and that they target declared ports), ports a non-root container can bind, and env vars
defined once. `declared_ports` and
`pod_ports` are also what the Service rules match target ports against."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .common import ADVISORY, LOW, MANDATORY, MEDIUM, UNKNOWN, Config, declared, flag, get, integer, number, seq, show
from .kube import EXEMPT_NAMESPACES, LONG_RUNNING_KINDS, RELIABILITY_TAGS, Workload, containers, security_context, workload_rule


@workload_rule(
    "resource-requests-limits",
    "Containers set CPU and memory requests and limits.",
    MEDIUM,
    MANDATORY,
    "Set resources.requests.cpu/memory and resources.limits.memory (and limits.cpu) on every container.",
    settings={"requireCpuLimit": flag("Also require limits.cpu.", True)},
    tags=RELIABILITY_TAGS,
)
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


@workload_rule(
    "probes-present",
    "Long-running containers have liveness and readiness probes.",
    MEDIUM,
    MANDATORY,
    "Add readinessProbe and livenessProbe (httpGet/tcpSocket/grpc on a declared port, or exec) to every container.",
    kinds=LONG_RUNNING_KINDS,
    settings={"requireLiveness": flag("Require livenessProbe.", True), "requireReadiness": flag("Require readinessProbe.", True)},
    tags=RELIABILITY_TAGS,
)
def check_probes(wl: Workload, cfg: Config) -> Iterator[str]:
    """Long-running containers have liveness and readiness probes."""
    wanted = [p for p, on in (("livenessProbe", cfg.get("requireLiveness", True)), ("readinessProbe", cfg.get("requireReadiness", True))) if on]
    for label, c in containers(wl.pod_spec, init=False):
        missing = [p for p in wanted if get(c, p) is None]
        if missing:
            yield f"{label.capitalize()} has no {' or '.join(missing)}. Add them (httpGet, tcpSocket, grpc or exec) on a port the container declares."


def _probe_ports(c: Any) -> Iterator[tuple[str, str, Any]]:
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        for handler in ("httpGet", "tcpSocket", "grpc"):
            port = get(c, probe, handler, "port")
            if port is not None and port is not UNKNOWN:
                yield probe, handler, port


def _protocols(c: Any, port: Any) -> set[str] | None:
    """The protocols a container declares `port` (a name or a number) with; None when any of
    them cannot be known."""
    n = number(port)
    found: set[str] = set()
    for p in seq(c, "ports"):
        same = number(get(p, "containerPort")) == n if n is not None else get(p, "name") == port
        if same:
            protocol = get(p, "protocol", default="TCP")
            if protocol is UNKNOWN:
                return None
            found.add(protocol if isinstance(protocol, str) else "TCP")
    return found


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


@workload_rule(
    "probe-ports-declared",
    "Probes target a port the container declares, by name or number, with the protocol they speak (TCP).",
    MEDIUM,
    MANDATORY,
    "Declare the probe's port in the container's ports[] (with a name such as http, protocol TCP) and point the probe at that name; probe UDP services with exec.",
    tags=RELIABILITY_TAGS,
)
def check_probe_ports(wl: Workload, cfg: Config) -> Iterator[str]:
    """Probes target a port the container declares (by name or number) over TCP."""
    for label, c in containers(wl.pod_spec, init=False):
        declared = declared_ports(c)
        if declared is None:
            continue
        names, numbers = declared
        for probe, handler, port in _probe_ports(c):
            n = number(port)
            ok = (int(n) in numbers) if n is not None else (port in names)
            if not ok:
                yield f"{label.capitalize()} has a {probe} on port {show(port)}, which the container does not declare. Declare it in ports[] (e.g. name: http) or point the probe at a declared port."
                continue
            # httpGet, tcpSocket and grpc probes all connect over TCP: a port declared only as UDP (or SCTP) never answers them
            protocols = _protocols(c, port)
            if protocols and "TCP" not in protocols:
                yield (
                    f"{label.capitalize()} has a {probe} ({handler}) on port {show(port)}, but the container declares it as {'/'.join(sorted(protocols))}; "
                    "the probe connects over TCP, so it always fails. Point the probe at a TCP port or use an exec probe."
                )


def _lowest_unprivileged_port(pod_spec: Any, default: int) -> int | None:
    """net.ipv4.ip_unprivileged_port_start as the pod sets it (else `default`); None: unknown."""
    sysctls = seq(pod_spec, "securityContext", "sysctls")
    if sysctls is UNKNOWN:
        return None
    for x in sysctls:
        if get(x, "name") == "net.ipv4.ip_unprivileged_port_start":
            n = number(get(x, "value"))
            return None if n is None else int(n)
    return default


@workload_rule(
    "non-root-privileged-ports",
    "A container that runs as non-root declares no port below 1024 it could not bind (unless it adds NET_BIND_SERVICE or the pod lowers net.ipv4.ip_unprivileged_port_start).",
    MEDIUM,
    MANDATORY,
    "Listen on a port >= 1024 and map the privileged port in the Service (port: 53, targetPort: 1053), as CoreDNS does here.",
    settings={
        **EXEMPT_NAMESPACES,
        "unprivilegedPortStart": integer(
            "The lowest port a non-root process may bind on the nodes (net.ipv4.ip_unprivileged_port_start; the kernel's default 1024).", 1024, minimum=0
        ),
    },
    tags=RELIABILITY_TAGS,
)
def check_privileged_ports(wl: Workload, cfg: Config) -> Iterator[str]:
    """Non-root containers declare no privileged port they cannot bind."""
    start = _lowest_unprivileged_port(wl.pod_spec, int(cfg.get("unprivilegedPortStart", 1024)))
    if start is None:
        return
    for label, c in containers(wl.pod_spec, init=False):
        user, non_root = security_context(c, wl.pod_spec, "runAsUser"), security_context(c, wl.pod_spec, "runAsNonRoot")
        uid = number(user)
        if user is UNKNOWN or uid == 0 or (uid is None and non_root is not True):
            continue  # root, or the image decides
        adds = seq(c, "securityContext", "capabilities", "add")
        if adds is UNKNOWN or "NET_BIND_SERVICE" in [str(a).upper().removeprefix("CAP_") for a in adds]:
            continue
        ports = seq(c, "ports")
        low = sorted({int(n) for n in (number(get(p, "containerPort")) for p in ([] if ports is UNKNOWN else ports)) if n is not None and n < start})
        if low:
            yield (
                f"{label.capitalize()} runs as non-root but declares port(s) {', '.join(map(str, low))}, below {start}, which it cannot bind without NET_BIND_SERVICE. "
                "Listen on a port >= 1024 and let the Service map the well-known port to it (targetPort)."
            )


@workload_rule(
    "no-duplicate-env-vars",
    "No env var is defined twice in one container.",
    LOW,
    ADVISORY,
    "Keep a single definition of each env var per container.",
)
def check_duplicate_env(wl: Workload, cfg: Config) -> Iterator[str]:
    """No env var is defined twice in one container."""
    for label, c in containers(wl.pod_spec):
        env = seq(c, "env")
        names = [get(e, "name") for e in ([] if env is UNKNOWN else env)]
        dupes = sorted({n for n in names if isinstance(n, str) and names.count(n) > 1})
        if dupes:
            yield f"{label.capitalize()} defines the env vars {', '.join(dupes)} more than once (only the last one counts). Keep one definition of each."


RULES = declared(__name__)
