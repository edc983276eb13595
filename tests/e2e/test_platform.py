"""The platform on the lab, after the cluster suite: cluster DNS, MetalLB, Eureka peers and the
example microservice, with the real engine on the real hosts (two workers).

Everything is asked of the running system: DNS answers from inside a pod (the example service's
/resolve does the lookup in its own pod), the LoadBalancer addresses answer from this machine,
Eureka's own registry lists its peers and the example's instances, and the nodes' containerd
holds images from the private registry only.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from typing import Any

import pytest
from pulumi import automation as auto

from components.settings.platform import example_image
from tests.e2e.conftest import Lab
from tests.e2e.test_local_stack import changes, kubeconfig_of, kubectl
from tools.automation import Project

pytestmark = pytest.mark.lab


def get_json(url: str, timeout: float = 10) -> Any:
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def eventually(check, timeout: float, what: str, every: float = 1.0) -> Any:
    """check() until it returns something truthy (exceptions count as not yet)."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            v = check()
            if v:
                return v
            last = v
        except Exception as e:  # not ready yet
            last = e
        time.sleep(every)
    raise AssertionError(f"{what} not within {timeout:.0f} s (last: {last!r})")


def _up(local: tuple[Project, auto.Stack]) -> auto.Stack:
    _, stack = local
    stack.up(color="never", on_output=lambda line: None)
    return stack


@pytest.fixture(scope="module")
def platform(local: tuple[Project, auto.Stack]) -> auto.Stack:
    """The stack as the cluster suite left it, brought up to date (it may have changed it)."""
    return _up(local)


def _apps(eureka: str) -> dict[str, list[dict]]:
    apps = get_json(f"{eureka}/eureka/apps")["applications"]["application"]
    return {a["name"]: a["instance"] for a in apps}


def test_cluster_dns_answers_service_and_headless_peer_names_from_inside_a_pod(platform: auto.Stack, lab: Lab):
    s = lab.settings
    example = platform.outputs()["serviceEndpoints"].value["example-service"]
    domain, ns = s.network.cluster_domain, s.eureka.namespace
    kc = kubeconfig_of(platform)
    svc_ip = json.loads(kubectl(kc, "-n", ns, "get", "service", "eurekaserver", "-o", "json").stdout)["spec"]["clusterIP"]
    answer = get_json(f"{example}/resolve?name=eurekaserver.{ns}.svc.{domain}")
    assert answer.get("addresses") == [svc_ip], answer
    pod_ip = json.loads(kubectl(kc, "-n", ns, "get", "pod", "eurekaserver-0", "-o", "json").stdout)["status"]["podIP"]
    answer = get_json(f"{example}/resolve?name=eurekaserver-0.eurekaserver-peers.{ns}.svc.{domain}")
    assert answer.get("addresses") == [pod_ip], answer
    # The kube-dns Service is at network.clusterDns and CoreDNS runs its replicas from the registry.
    dns = json.loads(kubectl(kc, "-n", "kube-system", "get", "service", "kube-dns", "-o", "json").stdout)
    assert dns["spec"]["clusterIP"] == s.network.cluster_dns
    deploy = json.loads(kubectl(kc, "-n", "kube-system", "get", "deployment", "coredns", "-o", "json").stdout)
    assert deploy["status"].get("readyReplicas") == s.dns.replicas
    assert get_json(f"{example}/resolve?name=no-such-service.{ns}.svc.{domain}").get("error") == "unknown host"


def test_the_load_balancer_answers_eureka_on_port_80_from_this_machine(platform: auto.Stack, lab: Lab):
    import ipaddress

    endpoint = platform.outputs()["eurekaEndpoint"].value
    host = endpoint.removeprefix("http://").rsplit(":", 1)[0]
    first, last = lab.settings.network.pool_addresses() or (None, None)
    assert first is not None and first <= ipaddress.IPv4Address(host) <= last, (endpoint, lab.settings.network.load_balancer_pool)
    page = urllib.request.urlopen(f"http://{host}/", timeout=10).read().decode()
    assert "Eureka" in page and "Instances currently registered" in page
    print(f"\n[e2e] eureka through MetalLB: {endpoint}")


def _eureka_servers_state(stack: auto.Stack, lab: Lab) -> str:
    """For a failure message: each server pod (node, address, readiness, restarts), the
    EUREKA-SERVER entries its own registry holds (asked on its node, whose traffic to its own
    pods no policy judges) and the last lines of its log."""
    ns, port = lab.settings.eureka.namespace, lab.settings.eureka.container_port
    kc = kubeconfig_of(stack)
    lines = []
    try:
        pods = json.loads(kubectl(kc, "-n", ns, "get", "pods", "-l", "app=eurekaserver", "-o", "json").stdout)["items"]
    except Exception as e:
        return f"(pods not listed: {e})"
    for p in pods:
        name, node, ip = p["metadata"]["name"], p["spec"].get("nodeName", "?"), p["status"].get("podIP", "?")
        cs = (p["status"].get("containerStatuses") or [{}])[0]
        lines.append(f"{name} on {node} at {ip}: ready={cs.get('ready')} restarts={cs.get('restartCount')}")
        if node != "?" and ip != "?":
            own = lab.ssh(node, f"curl -s -m 5 -H 'Accept: application/json' http://{ip}:{port}/eureka/apps/EUREKA-SERVER", check=False).stdout
            try:
                held = [(i["hostName"], i["instanceId"], i["status"]) for i in json.loads(own)["application"]["instance"]]
            except Exception:
                held = own[:300]
            lines.append(f"  its registry: {held}")
        log = kubectl(kc, "-n", ns, "logs", name, "--tail=12", check=False).stdout
        lines.extend(f"  | {line}" for line in log.splitlines())
    return "\n".join(lines)


def test_eureka_replicas_list_each_other_as_available(platform: auto.Stack, lab: Lab):
    endpoint = platform.outputs()["eurekaEndpoint"].value
    replicas = lab.settings.eureka.replicas
    assert replicas >= 2

    def cell(page: str, row: str) -> str:
        """The value cell of the status page's row <td>row</td><td>...</td>."""
        m = re.search(rf"<td>{row}</td>\s*<td>(.*?)</td>", page, re.S)
        return m.group(1) if m else ""

    seen: list[tuple[str, str, str]] = []  # (available, unavailable, registered) per answer, for the failure message

    def peers_available() -> bool:
        # Through the LoadBalancer: any replica answers; each must list the other(s) as available.
        page = urllib.request.urlopen(f"{endpoint}/", timeout=10).read().decode()
        available, unavailable = cell(page, "available-replicas"), cell(page, "unavailable-replicas")
        seen.append((available, unavailable, cell(page, "registered-replicas")))
        return available.count("http://eurekaserver-") == replicas - 1 and "eurekaserver-" not in unavailable

    for _ in range(4):  # the LoadBalancer spreads connections: ask several times
        try:
            eventually(peers_available, 240, "every Eureka replica listing the others as available-replicas")
        except AssertionError as e:
            raise AssertionError(f"{e}; last answers (available, unavailable, registered): {seen[-3:]}\n{_eureka_servers_state(platform, lab)}") from None
    # Each server registered itself under its own id (the pod's stable name: Spring's default id
    # falls back to "localhost" when a slow start times out the reverse lookup, and two replicas
    # then share one entry); the registry (replicated) holds every replica.
    port = lab.settings.eureka.container_port
    want = [f"eurekaserver-{n}" for n in range(replicas)]
    registered: list[list[tuple[str, str]]] = []  # (host, id) each answer listed, for the failure message

    def all_registered() -> bool:
        found = sorted((i["hostName"], i["instanceId"]) for i in _apps(endpoint).get("EUREKA-SERVER", []))
        registered.append(found)
        return [h.split(".")[0] for h, _ in found] == want and all(i == f"{h}:{port}" for h, i in found)

    try:
        eventually(all_registered, 300, "every server in the registry, each under its own id")
    except AssertionError as e:
        raise AssertionError(f"{e}; the last answers listed (host, id): {registered[-5:]}\n{_eureka_servers_state(platform, lab)}") from None


def test_the_example_service_registers_by_name_with_both_instances(platform: auto.Stack, lab: Lab):
    svc = next(x for x in lab.settings.services if x.name == "example-service")
    eureka = platform.outputs()["eurekaEndpoint"].value
    t0 = time.monotonic()
    kc = kubeconfig_of(platform)

    def pods(field: str) -> list[str]:
        """status.podIP or metadata.name of each running example pod, sorted."""
        items = json.loads(kubectl(kc, "-n", svc.namespace, "get", "pods", "-l", "app=example-service", "-o", "json").stdout)["items"]
        part, key = field.split(".")
        return sorted(p[part].get(key, "") for p in items if not p["metadata"].get("deletionTimestamp"))

    # The instances UP are exactly the running pods (a pod replaced earlier may linger as a
    # stale registration until the server evicts it: it is not UP-and-current).
    instances = eventually(
        lambda: (
            (i := [x for x in _apps(eureka).get("EXAMPLE-SERVICE", []) if x["status"] == "UP"])
            and len(i) == svc.replicas
            and sorted(x["ipAddr"] for x in i) == pods("status.podIP")
            and sorted(x["instanceId"] for x in i) == [f"{n}:{svc.port}" for n in pods("metadata.name")]
            and i
        ),
        120,
        "both example-service pods UP in Eureka",
    )
    print(f"\n[e2e] example-service: {len(instances)} instances UP in Eureka ({time.monotonic() - t0:.1f} s after up)")
    # A registration on one replica is on the other: ask each server pod directly (port-forward-free:
    # through the example service, which fetches from the peers; and the servers' own apps lists).
    example = platform.outputs()["serviceEndpoints"].value["example-service"]
    seen = eventually(lambda: (p := get_json(f"{example}/peers")["apps"]) and len(p.get("EXAMPLE-SERVICE", [])) == svc.replicas and p, 60, "peers")
    assert "EUREKA-SERVER" in seen
    # The example's answer carries its version and the greeting from its Secret.
    info = get_json(f"{example}/")
    from tests.e2e.conftest import GREETING

    assert info["service"] == "example-service" and info["version"] == example_image().split(":")[1] and info["greeting"] == GREETING


def test_a_registration_on_one_replica_shows_on_the_other_within_seconds(platform: auto.Stack, lab: Lab):
    """Register a made-up instance on eurekaserver-0 only (through its pod IP, from a node) and read
    it back from eurekaserver-1."""
    s = lab.settings
    kc = kubeconfig_of(platform)
    ips = {
        p["metadata"]["name"]: p["status"]["podIP"]
        for p in json.loads(kubectl(kc, "-n", s.eureka.namespace, "get", "pods", "-l", "app=eurekaserver", "-o", "json").stdout)["items"]
    }
    worker = s.workers[0].name
    body = json.dumps(
        {
            "instance": {
                "instanceId": "e2e-probe-1",
                "hostName": "e2e-probe",
                "app": "E2E-PROBE",
                "ipAddr": "10.0.0.1",
                "status": "UP",
                "port": {"$": 8080, "@enabled": "true"},
                "dataCenterInfo": {"@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo", "name": "MyOwn"},
                "leaseInfo": {"durationInSecs": 60},
            }
        }
    )
    port = s.eureka.container_port
    post = f"curl -sf -o /dev/null -w '%{{http_code}}' -X POST -H 'Content-Type: application/json' -d '{body}' http://{ips['eurekaserver-0']}:{port}/eureka/apps/E2E-PROBE"
    assert lab.ssh(worker, post).stdout.strip() == "204"
    t0 = time.monotonic()
    read = f"curl -sf -H 'Accept: application/json' http://{ips['eurekaserver-1']}:{port}/eureka/apps/E2E-PROBE"
    eventually(lambda: lab.ssh(worker, read, check=False).returncode == 0, 30, "the probe registration on eurekaserver-1", every=0.5)
    print(f"\n[e2e] a registration on eurekaserver-0 visible on eurekaserver-1 after {time.monotonic() - t0:.1f} s")
    lab.ssh(worker, f"curl -sf -X DELETE http://{ips['eurekaserver-0']}:{port}/eureka/apps/E2E-PROBE/e2e-probe-1", check=False)


def test_every_image_on_the_nodes_came_from_the_private_registry(platform: auto.Stack, lab: Lab):
    registry = platform.outputs()["registryEndpoint"].value
    wanted = {"coredns", "metallb-controller", "metallb-speaker", "eureka-server", "example-service", "pause"}
    seen: set[str] = set()
    for w in lab.settings.workers:
        images = lab.ssh(w.name, "ctr -n k8s.io images ls -q | grep -v '^sha256:'").stdout.split()
        assert images and all(i.startswith(f"{registry}/") for i in images), (w.name, images)
        seen |= {i.removeprefix(f"{registry}/").split(":", 1)[0].split("@", 1)[0] for i in images}
    assert wanted <= seen, wanted - seen


def test_replicas_spread_over_both_workers(platform: auto.Stack, lab: Lab):
    """Pods scheduled while both workers accept pods land on both. Earlier tests restart kubelets
    (a NotReady node is not counted, by design, and Kubernetes never moves running pods back), so
    each workload's pods are first deleted and rescheduled by their controllers."""
    kc = kubeconfig_of(platform)

    def pods(ns: str, label: str) -> list[dict]:
        return json.loads(kubectl(kc, "-n", ns, "get", "pods", "-l", label, "-o", "json").stdout)["items"]

    def ready(p: dict) -> bool:
        return not p["metadata"].get("deletionTimestamp") and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))

    for ns, label, want in (
        ("platform", "app=example-service", 2),
        ("kube-system", "k8s-app=kube-dns", lab.settings.dns.replicas),
        ("platform", "app=eurekaserver", lab.settings.eureka.replicas),
    ):
        kubectl(kc, "-n", ns, "delete", "pods", "-l", label, "--wait=false")
        now = eventually(
            lambda ns=ns, label=label, want=want: (p := pods(ns, label)) and len(p) == want and all(ready(x) for x in p) and p,
            240,
            f"{label} rescheduled and ready",
            every=2,
        )
        nodes = {p["spec"].get("nodeName") for p in now}
        assert len(nodes) == min(want, len(lab.settings.workers)), (label, nodes)


def test_a_second_up_changes_nothing(local: tuple[Project, auto.Stack], platform: auto.Stack):
    t0 = time.monotonic()
    result = platform.up(color="never", expect_no_changes=True)
    print(f"\n[e2e] platform no-op up: {time.monotonic() - t0:.1f} s")
    assert changes(result.summary) == {}


def test_every_object_applies_again_under_another_field_manager(platform: auto.Stack):
    """What the run after one killed mid-create does: the object exists, the state does not know
    it, and the provider creates it again as a server-side apply under a new field manager. Every
    object the stack manages must take that without a conflict (a value the API server defaulted
    inside an atomic struct, e.g. a fieldRef's apiVersion, conflicts). Server-side dry run: nothing
    changes. Secrets are left out (their inputs are encrypted in the state)."""
    resources = platform.export_stack().deployment["resources"]
    items = []
    for r in resources:
        inputs = r.get("inputs") or {}
        if not r["type"].startswith("kubernetes:") or r["type"].startswith("pulumi:providers") or "kind" not in inputs:
            continue
        if inputs["kind"] in ("Secret", "Node") or "4dabf18193072939515e22adb298388d" in json.dumps(inputs):
            continue
        items.append({k: v for k, v in inputs.items() if v is not None})
    assert len(items) > 50, len(items)
    kc = kubeconfig_of(platform)
    p = kubectl(
        kc, "apply", "--server-side", "--dry-run=server", "--field-manager=vmp-upsert-check", "-f", "-",
        check=False, stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
    )  # fmt: skip
    print(f"\n[e2e] {len(items)} objects applied again under a second field manager (server-side dry run)")
    assert p.returncode == 0 and "conflict" not in p.stderr.lower(), p.stderr[-3000:]
