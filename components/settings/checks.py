"""Every rule between fields of different keys, in one place.

A rule runs on the draft settings (a field that failed its own check is None there, and the
rules that need it are skipped) and blames the key the operator most likely got wrong: the one
written rather than defaulted, the odd one out among hosts, and names the other key in its
expectation. Fix values are suggestions; fixes.py keeps only those that break no rule.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from .core import Edit, Reader
from .fields import MISSING, REMOVE, spec_of
from .hosts import Host, free_addresses
from .registry import default_archive, expand, parse_image
from .runtime import VERSION_PLACEHOLDER, PkiSettings, window_days

TYPE_CHECKING = False  # typing is not imported at run time (import cost of every preview)
if TYPE_CHECKING:
    import ipaddress

    from . import Settings
    from .workloads import EurekaSettings, ServiceSettings

    Placed = Sequence[tuple[str, Host]]
    Rule = Callable[[Reader, Settings, Placed], None]

RULES: list[Rule] = []


def rule(fn: Rule) -> Rule:
    RULES.append(fn)
    return fn


def run(r: Reader, s: Settings, hosts: Placed) -> None:
    for check in RULES:
        check(r, s, hosts)


def _net(v: str | None) -> ipaddress.IPv4Network | None:
    import ipaddress

    return ipaddress.IPv4Network(v) if v else None


# ---------------------------------------------------------------------------------------------
# Hosts and networks


@rule
def unique_hosts(r: Reader, s: Settings, hosts: Placed) -> None:
    """Node names and addresses are unique; the later host is blamed and the earlier one named."""
    names: dict[str, str] = {}
    addresses: dict[str, str] = {}
    for path, h in hosts:
        if h.name and h.name in names:
            taken = {x.name for _, x in hosts}
            others = [f"{h.name}-{k}" for k in range(2, 10) if f"{h.name}-{k}" not in taken][:2]
            r.problem(f"{path}.name", f"a node name not already used by {names[h.name]}", h.name, *others)
        elif h.name:
            names[h.name] = path
        if h.address and h.address in addresses:
            r.problem(f"{path}.address", f"an address not already used by {addresses[h.address]}", h.address, *free_addresses(r))
        elif h.address:
            addresses[h.address] = path


def _enclosing(addresses: Sequence[str]) -> list[str]:
    """The smallest network (/24 or larger) that holds every address."""
    import ipaddress

    for prefix in range(24, 7, -1):
        net = ipaddress.IPv4Network(f"{addresses[0]}/{prefix}", strict=False)
        if all(ipaddress.IPv4Address(a) in net for a in addresses):
            return [str(net)]
    return []


@rule
def hosts_inside_host_network(r: Reader, s: Settings, hosts: Placed) -> None:
    """Every host address is inside network.hostCidr. When none is, the range is what is wrong."""
    import ipaddress

    net = _net(s.network.host_cidr)
    addressed = [(p, h.address) for p, h in hosts if h.address]
    if net is None or not addressed:
        return
    outside = [(p, a) for p, a in addressed if ipaddress.IPv4Address(a) not in net]
    if outside and len(outside) == len(addressed) > 1:
        listed = ", ".join(a for _, a in addressed)
        fixes = [(Edit("network.hostCidr", c), *_pool_moved(s, c)) for c in _enclosing([a for _, a in addressed])]
        r.problem("network.hostCidr", f"a network that holds the hosts' addresses ({listed})", s.network.host_cidr, fixes=fixes)
        return
    for path, address in outside:
        r.problem(f"{path}.address", f"an address inside network.hostCidr ({s.network.host_cidr})", address, *free_addresses(r))


def _pool_moved(s: Settings, cidr: str) -> tuple[Edit, ...]:
    """The edit that moves a MetalLB pool along with hostCidr (same offsets in the new network)."""
    import ipaddress

    old, span = _net(s.network.host_cidr), s.network.pool_addresses()
    if s.network.load_balancer != "metallb" or old is None or span is None or not (span[0] in old and span[1] in old):
        return ()
    new = ipaddress.IPv4Network(cidr)
    a, b = (new.network_address + (int(x) - int(old.network_address)) for x in span)
    return (Edit("network.loadBalancerPool", f"{a}-{b}"),) if a in new and b in new else ()


_RANGES = {"network.hostCidr": "host_cidr", "network.podCidr": "pod_cidr", "network.serviceCidr": "service_cidr"}
_USUAL_RANGES = ("10.244.0.0", "172.30.0.0", "10.96.0.0", "10.254.0.0", "172.16.0.0", "10.200.0.0")


def _anchored(key: str, s: Settings, hosts: Placed) -> bool:
    """Whether other keys hold the range in place (host addresses in hostCidr, clusterDns in serviceCidr)."""
    import ipaddress

    net = _net(getattr(s.network, _RANGES[key]))
    if net is None:
        return False
    if key == "network.hostCidr":
        return any(h.address and ipaddress.IPv4Address(h.address) in net for _, h in hosts)
    if key == "network.serviceCidr":
        return bool(s.network.cluster_dns) and ipaddress.IPv4Address(s.network.cluster_dns) in net
    return False


def _range_candidates(key: str, s: Settings, written: ipaddress.IPv4Network, hosts: Placed) -> list[str]:
    """Ranges that overlap neither other range: for hostCidr the smallest one around the hosts;
    otherwise of the written size, the Service range around clusterDns first."""
    import ipaddress

    others = [n for k, n in ((k, _net(getattr(s.network, a))) for k, a in _RANGES.items()) if k != key and n is not None]
    pool = []
    if key == "network.hostCidr":
        pool = [ipaddress.IPv4Network(n) for n in _enclosing([h.address for _, h in hosts if h.address])]
    elif key == "network.serviceCidr" and s.network.cluster_dns:
        pool.append(ipaddress.IPv4Network(f"{s.network.cluster_dns}/{written.prefixlen}", strict=False))
    if key != "network.hostCidr":
        pool += [ipaddress.IPv4Network(f"{base}/{written.prefixlen}", strict=False) for base in _USUAL_RANGES]
    out: list[str] = []
    for n in pool:
        if not any(n.overlaps(o) for o in others) and str(n) not in out:
            out.append(str(n))
    return out[:3]


@rule
def ranges_do_not_overlap(r: Reader, s: Settings, hosts: Placed) -> None:
    """Host, pod and Service ranges are disjoint. The range nothing else holds in place is blamed;
    when both are held, the one that contains the other (written too wide); else the later one
    (its expectation names the other)."""
    keys = [k for k, a in _RANGES.items() if getattr(s.network, a)]
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            na, nb = _net(getattr(s.network, _RANGES[a])), _net(getattr(s.network, _RANGES[b]))
            assert na is not None and nb is not None
            if not na.overlaps(nb):
                continue
            held_a, held_b = _anchored(a, s, hosts), _anchored(b, s, hosts)
            a_wrong = (held_b and not held_a) or (held_a and held_b and na.supernet_of(nb) and na != nb)
            blame, other = (a, b) if a_wrong else (b, a)
            if r.blamed(blame):
                continue
            written = na if blame == a else nb
            r.problem(
                blame,
                f"a range that does not overlap {other} ({getattr(s.network, _RANGES[other])})",
                str(written),
                *_range_candidates(blame, s, written, hosts),
            )


@rule
def pod_subnets_fit(r: Reader, s: Settings, hosts: Placed) -> None:
    """Each node gets a podSubnetLength subnet of podCidr."""
    pod, length = _net(s.network.pod_cidr), s.network.pod_subnet_length
    if pod is None or length is None:
        return
    if length <= pod.prefixlen:
        if r.pick("network.podSubnetLength", "network.podCidr") == "network.podCidr":
            import ipaddress

            wider = ipaddress.IPv4Network(f"{pod.network_address}/{max(length - 8, 8)}", strict=False)
            r.problem("network.podCidr", f"a network larger than the per-node subnets (network.podSubnetLength is {length})", str(pod), str(wider))
        else:
            r.problem("network.podSubnetLength", f"a prefix length longer than the pod network's /{pod.prefixlen}", length, min(pod.prefixlen + 8, 28))
    elif 2 ** (length - pod.prefixlen) < len(hosts):
        needed = pod.prefixlen + max(len(hosts) - 1, 1).bit_length()
        r.problem("network.podSubnetLength", f"room for one subnet per node ({len(hosts)} nodes)", length, *sorted({min(pod.prefixlen + 8, 28), needed}))


@rule
def cluster_dns_inside_service_range(r: Reader, s: Settings, hosts: Placed) -> None:
    """clusterDns is a Service address other than the first (the kubernetes Service's).
    Not reported when serviceCidr itself is blamed: its fix must then keep clusterDns inside."""
    import ipaddress

    service, dns = _net(s.network.service_cidr), s.network.cluster_dns
    if service is None or dns is None or r.blamed("network.serviceCidr"):
        return
    address = ipaddress.IPv4Address(dns)
    if address not in service or address == next(service.hosts()):
        tenth = [str(a) for _, a in zip(range(10), service.hosts(), strict=False)][-1]
        r.problem(
            "network.clusterDns",
            f"an address inside network.serviceCidr ({s.network.service_cidr}) other than its first, which the kubernetes Service takes",
            dns,
            tenth,
        )


# ---------------------------------------------------------------------------------------------
# Binaries and registry


@rule
def binaries_have_a_source(r: Reader, s: Settings, hosts: Placed) -> None:
    """release needs a URL; local needs an existing directory on this machine."""
    b = s.binaries
    if b.source == "release" and b.release_base_url == "":
        r.problem("binaries.releaseBaseUrl", "an https:// URL when binaries.source is release", MISSING, fixes=[(Edit("binaries.releaseBaseUrl"),)])
    if b.source == "local" and b.local_dir is not None:
        cache = os.environ.get("VMP_CACHE", os.path.expanduser("~/.cache/vm-platform"))
        guesses = [d for d in (os.path.join(cache, "bin", s.kubernetes_version or ""),) if os.path.isdir(d)]
        local_dir = expand(b.local_dir.replace(VERSION_PLACEHOLDER, s.kubernetes_version or VERSION_PLACEHOLDER))
        if not b.local_dir:
            r.problem("binaries.localDir", "a directory when binaries.source is local", MISSING, *guesses, fixes=[(Edit("binaries.localDir"),)])
        elif r.check_files and not os.path.isdir(local_dir):
            built = f" for {s.kubernetes_version}" if VERSION_PLACEHOLDER in b.local_dir else ""
            r.problem("binaries.localDir", f"an existing directory with the cluster binaries{built} (python -m tools.binaries builds it)", local_dir, *guesses)


@rule
def registry_transport(r: Reader, s: Settings, hosts: Placed) -> None:
    """A plain-http registry only where the stack explicitly allows it."""
    if s.registry.tls is False and s.registry.allow_plain_http is False:
        r.problem("registry.tls", "true: this stack does not allow a plain-http registry (registry.allowPlainHttp is false)", False, True)


@rule
def registry_credentials(r: Reader, s: Settings, hosts: Placed) -> None:
    """auth needs a user name and a secret password."""
    if not s.registry.auth:
        return
    if s.registry.username == "":
        r.problem("registry.username", "a user name when registry.auth is true", MISSING, "platform")
    if s.registry.password is None:
        r.secret_problem("registryPassword", "a password stored as a secret when registry.auth is true", r.get("registryPassword"))


def _listed(s: Settings) -> list[str] | None:
    """Names registry.images provides; None when an entry is itself invalid (nothing to compare)."""
    names = [i.name for i in s.registry.images]
    return None if any(n is None for n in names) else names


def _add_image(image: str, at: int) -> tuple[Edit, ...]:
    """The edits that list `image` in registry.images, with its archive where tools.images leaves it
    (a placeholder otherwise, which fixes.py turns into `<value>`)."""
    path = f"registry.images[{at}]"
    archive = default_archive(image)
    return (Edit(f"{path}.name", image), Edit(f"{path}.archive", archive if os.path.isfile(expand(archive)) else "/path/to/image.oci.tar"))


@rule
def pause_image_is_in_the_registry(r: Reader, s: Settings, hosts: Placed) -> None:
    """Nodes never reach the internet for the pause image. When a listed image differs from
    pauseImage only in its tag and pauseImage was written, pauseImage is blamed."""
    names, pause = _listed(s), s.pause_image
    if names is None or not pause or pause in names:
        return
    parsed = parse_image(pause)
    same_repo = [n for n in names if parsed and (parse_image(n) or ("",))[0] == parsed[0]]
    if same_repo and r.written("pauseImage"):
        r.problem("pauseImage", f"an image that registry.images provides ({', '.join(names)})", pause, *same_repo, fixes=[_add_image(pause, len(names))])
        return
    r.problem(
        "registry.images",
        f"a list that includes the pause image ({pause}) so nodes never reach the internet for it",
        names,
        fixes=[_add_image(pause, len(names))],
    )


def _platform_images(s: Settings) -> list[tuple[str, str]]:
    """(key, image) of every image the platform runs besides the pause image."""
    out = [("dns.image", s.dns.image), ("eureka.image", s.eureka.image), *((f"services.{x.name}.image", x.image) for x in s.services)]
    if s.network.load_balancer == "metallb":
        out += [("metallb.controllerImage", s.metallb.controller_image), ("metallb.speakerImage", s.metallb.speaker_image)]
    return out


@rule
def platform_images_are_in_the_registry(r: Reader, s: Settings, hosts: Placed) -> None:
    """An image no registry.images entry provides would fail only at pull time. A digest
    reference is accepted when its repository is listed (which digest a tag holds is known only after the push)."""
    names = _listed(s)
    if names is None:
        return
    added = 0  # each fix lists its image at its own index, so all the printed fixes can be run
    for key, image in _platform_images(s):
        if not image or image in names:
            continue
        parsed = parse_image(image)
        if parsed and parsed[2] and any((parse_image(n) or ("",))[0] == parsed[0] for n in names):
            continue
        same_repo = [n for n in names if parsed and (parse_image(n) or ("",))[0] == parsed[0]]
        r.problem(
            key,
            "an image that registry.images provides; list it there with its archive, or the pull fails on the nodes",
            image,
            fixes=[_add_image(image, len(names) + added), *((Edit(key, n),) for n in same_repo if r.written(key))],
        )
        added += 1


# ---------------------------------------------------------------------------------------------
# Workloads


def _zero(v: str | None) -> bool:
    return v in ("0", "0%")


@rule
def rollout_can_progress(r: Reader, s: Settings, hosts: Placed) -> None:
    """maxSurge and maxUnavailable are not both zero."""
    e = s.eureka
    if not (_zero(e.max_surge) and _zero(e.max_unavailable)):
        return
    if r.pick("eureka.maxUnavailable", "eureka.maxSurge") == "eureka.maxUnavailable":
        r.problem("eureka.maxUnavailable", "a non-zero value when eureka.maxSurge is 0 (a rollout could never make progress)", e.max_unavailable, "1")
    else:
        r.problem("eureka.maxSurge", "a non-zero value when eureka.maxUnavailable is 0 (a rollout could never make progress)", e.max_surge, "1", "25%")


@rule
def disruption_budget_allows_drain(r: Reader, s: Settings, hosts: Placed) -> None:
    """minAvailable below replicas, so a node can be drained (the Eureka server and every service)."""
    workloads: list[tuple[str, EurekaSettings | ServiceSettings]] = [("eureka", s.eureka), *((f"services.{x.name}", x) for x in s.services)]
    for base, w in workloads:
        if w.replicas is not None and w.min_available is not None and w.replicas > 0 and w.min_available >= w.replicas:
            r.problem(f"{base}.minAvailable", f"fewer than {base}.replicas ({w.replicas}) so a node can be drained", w.min_available, max(w.replicas - 1, 0))


@rule
def services_fit_the_platform(r: Reader, s: Settings, hosts: Placed) -> None:
    """A service runs in a managed namespace, its secretEnv names a key of a Secret in `secrets`
    in that namespace, its calls name other services, and a LoadBalancer service has something
    that gives it an address."""
    secrets = {(x.namespace, x.name): x for x in s.secrets}
    for svc in s.services:
        base = f"services.{svc.name}"
        if svc.namespace and svc.namespace not in s.namespaces:
            r.problem(f"{base}.namespace", "a namespace the platform manages (" + ", ".join(s.namespaces) + ")", svc.namespace, *s.namespaces)
        for var, ref in sorted((svc.secret_env or {}).items()):
            sname, _, key = ref.partition("/") if isinstance(ref, str) else ("", "", "")
            sec = secrets.get((svc.namespace, sname))
            if not key:
                r.problem(f"{base}.secretEnv.{var}", "<secret>/<key>, a Secret defined under `secrets`", ref)
            elif sec is None:
                known = [f"{x.name}/{k}" for x in s.secrets if x.namespace == svc.namespace for k in x.data]
                r.problem(f"{base}.secretEnv.{var}", f"a Secret defined under `secrets` in namespace {svc.namespace} as <secret>/<key>", ref, *known)
            elif key not in sec.data:
                r.problem(
                    f"{base}.secretEnv.{var}",
                    f"a key of secrets.{sname}.data ({', '.join(sorted(sec.data)) or 'none'})",
                    ref,
                    *(f"{sname}/{k}" for k in sorted(sec.data)),
                )
        others = [x.name for x in s.services if x.name != svc.name]
        for i, called in enumerate(svc.calls or ()):
            if called not in others:
                why = " (not itself: its own pods need no rule)" if called == svc.name else ""
                r.problem(f"{base}.calls[{i}]", f"another service under `services` ({', '.join(others) or 'none'}){why}", called, *others)
        if svc.service_type == "LoadBalancer" and s.network.load_balancer == "none":
            r.problem(f"{base}.serviceType", "ClusterIP or NodePort: network.loadBalancer is none", "LoadBalancer", "ClusterIP", "NodePort")


def _cpu_millis(v: str) -> float:
    return float(v[:-1]) if v.endswith("m") else float(v) * 1000


_MEM_FACTORS = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def _mem_bytes(v: str) -> float:
    digits = v.rstrip("KMGTik")
    return int(digits) * _MEM_FACTORS[v[len(digits) :]]


@rule
def limits_cover_requests(r: Reader, s: Settings, hosts: Placed) -> None:
    """Each limit is at least its request; the written one of the two is blamed (the limit when both are)."""
    res = s.eureka.resources
    for what, request, limit, measure in (
        ("cpu", res.cpu_request, res.cpu_limit, _cpu_millis),
        ("memory", res.memory_request, res.memory_limit, _mem_bytes),
    ):
        if not (request and limit) or measure(request) <= measure(limit):
            continue
        lpath, rpath = f"eureka.resources.limits.{what}", f"eureka.resources.requests.{what}"
        if r.pick(lpath, rpath) == lpath:
            r.problem(lpath, f"at least the request ({request})", limit, request)
        else:
            r.problem(rpath, f"at most the limit ({limit})", request, limit)


@rule
def load_balancer_service_gets_an_address(r: Reader, s: Settings, hosts: Placed) -> None:
    """A LoadBalancer Service needs something that assigns addresses."""
    if s.eureka.service_type == "LoadBalancer" and s.network.load_balancer == "none":
        r.problem(
            "eureka.serviceType",
            "ClusterIP or NodePort: network.loadBalancer is none, so a LoadBalancer Service would never get an address (or set network.loadBalancer to metallb)",
            "LoadBalancer",
            "NodePort",
            "ClusterIP",
        )


@rule
def policy_enforcer_has_its_binary(r: Reader, s: Settings, hosts: Placed) -> None:
    """vmp-netpol is the project's own program: it is built on this machine (python -m
    tools.binaries) and copied from binaries.localDir; there is no release to download."""
    if s.network.policy_enforcer == "vmp-netpol" and s.binaries.source != "local":
        r.problem(
            "network.policyEnforcer",
            "none while binaries.source is release: vmp-netpol is built here and copied from binaries.localDir (set binaries.source to local to use it)",
            "vmp-netpol",
            "none",
        )


def _free_pool(s: Settings, hosts: Placed) -> list[str]:
    """A pool suggestion: the highest run of up to 21 addresses of hostCidr that no host uses."""
    import ipaddress

    net = _net(s.network.host_cidr)
    if net is None or net.num_addresses < 8:
        return []
    used = {ipaddress.IPv4Address(h.address) for _, h in hosts if h.address}
    last = net.broadcast_address - 1 - min(34, net.num_addresses // 8)
    first = max(net.network_address + 1, last - 20)
    while first <= last and any(first <= u <= last for u in used):
        last = min(u for u in used if first <= u <= last) - 1
        first = max(net.network_address + 1, last - 20)
    return [f"{first}-{last}"] if first <= last else []


@rule
def load_balancer_pool_fits(r: Reader, s: Settings, hosts: Placed) -> None:
    """MetalLB answers ARP for its pool on the hosts' segment: the pool lies inside hostCidr and
    holds no host's address (MetalLB would steal it), and the manifests tools.images took exist."""
    n = s.network
    if n.load_balancer != "metallb":
        return
    key = "network.loadBalancerPool"
    net = _net(n.host_cidr)
    if not n.load_balancer_pool:
        r.problem(key, "an address range for MetalLB inside network.hostCidr, used by no host", "", *_free_pool(s, hosts))
    elif (span := n.pool_addresses()) is None:
        r.problem(key, "a range whose first address is not after its last", n.load_balancer_pool, *_free_pool(s, hosts))
    elif net is not None and not (span[0] in net and span[1] in net):
        r.problem(
            key, f"a range inside network.hostCidr ({n.host_cidr}): MetalLB announces it on the hosts' segment", n.load_balancer_pool, *_free_pool(s, hosts)
        )
    else:
        import ipaddress

        taken = [f"{h.name} ({h.address})" for _, h in hosts if h.address and span[0] <= ipaddress.IPv4Address(h.address) <= span[1]]
        if taken:
            r.problem(key, f"a range that holds no host's address (it holds {', '.join(taken)})", n.load_balancer_pool, *_free_pool(s, hosts))
    m = s.metallb.manifests
    if m and r.check_files and not os.path.isfile(expand(m)):
        r.problem("metallb.manifests", "MetalLB's CRDs and RBAC as python3 -m tools.images writes them (run it)", m)


@rule
def maintenance_names_workers(r: Reader, s: Settings, hosts: Placed) -> None:
    """Cordoned nodes are workers, and at least one worker stays schedulable."""
    nodes = s.maintenance.nodes
    if nodes is None:
        return
    workers = [h.name for p, h in hosts if p != "controlPlane" and h.name]
    for i, n in enumerate(nodes):
        if n not in workers:
            import difflib

            path = f"maintenance.nodes[{i}]"
            near = difflib.get_close_matches(n, workers, n=1) if isinstance(n, str) else []
            r.problem(path, "the name of a worker (one of " + ", ".join(workers) + ")", n, *near, fixes=[(Edit(path, REMOVE),)])
    schedulable = [w for w in workers if w not in nodes]
    if s.workers and not schedulable and s.eureka.replicas:
        r.problem(
            "maintenance.nodes",
            "a list that leaves at least one worker schedulable",
            list(nodes),
            fixes=[(Edit(f"maintenance.nodes[{len(nodes) - 1}]", REMOVE),)],
        )


@rule
def host_port_fits_the_workers(r: Reader, s: Settings, hosts: Placed) -> None:
    """With a hostPort each node runs at most one replica."""
    e = s.eureka
    if not (e.host_port and e.replicas is not None and s.workers and s.maintenance.nodes is not None):
        return
    schedulable = [w for w in s.workers if w.name not in s.maintenance.nodes]
    if e.replicas > len(schedulable):
        r.problem(
            "eureka.hostPort",
            f"0 (off): with hostPort each node runs one replica, and {e.replicas} replicas > {len(schedulable)} schedulable worker(s) leaves pods Pending",
            e.host_port,
            0,
        )


@rule
def secrets_live_in_managed_namespaces(r: Reader, s: Settings, hosts: Placed) -> None:
    """A Secret's namespace is one the platform creates."""
    for secret in s.secrets:
        if secret.namespace not in s.namespaces:
            r.problem(
                f"secrets.{secret.name}.namespace",
                "a namespace the platform manages (" + ", ".join(s.namespaces) + ")",
                secret.namespace,
                *([s.eureka.namespace] if s.eureka.namespace else []),
                "platform",
            )


@rule
def certificates_expire_before_the_ca(r: Reader, s: Settings, hosts: Placed) -> None:
    """A certificate outliving its CA would be rejected after the CA expires."""
    ca, cert = s.pki.ca_validity_days, s.pki.cert_validity_days
    if ca is None or cert is None or cert <= ca:
        return
    if r.pick("pki.certValidityDays", "pki.caValidityDays") == "pki.certValidityDays":
        r.problem("pki.certValidityDays", f"at most pki.caValidityDays ({ca}): a certificate must not outlive its CA", cert, ca, 365)
    else:
        r.problem("pki.caValidityDays", f"at least pki.certValidityDays ({cert}): a certificate must not outlive its CA", ca, cert, 3650)


@rule
def renewal_window_inside_the_validity(r: Reader, s: Settings, hosts: Placed) -> None:
    """A renewal window as long as a certificate's life would renew it on every `up`."""
    days, cert = s.pki.renew_days, s.pki.cert_validity_days
    if days is None or cert is None or days < cert or not r.written("pki.renewDays"):
        return  # the default shrinks to fit (PkiSettings.renewal_window_days)
    default = spec_of(PkiSettings, "renew_days").default
    r.problem(
        "pki.renewDays",
        f"less than pki.certValidityDays ({cert}): a window that long would renew every certificate on every up",
        days,
        window_days(default, cert),
    )
