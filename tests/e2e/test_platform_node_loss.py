"""Day-2 on the lab, under load: losing a worker outright (a power cut of its nspawn machine,
no shutdown). Its pods must be running Ready on the other worker within the stack's bound
(nodeLoss: detection + eviction + start-up; goal 60 s from the loss), requests may fail only in
the detection window, and when the host boots again its node becomes Ready with no manual step.

A StatefulSet's pod (a Eureka peer) is not recreated while its node is only unreachable:
Kubernetes keeps at most one pod per identity, and a node that stops answering may still run
it. The remaining peer serves meanwhile; the lost one comes back with its host.
"""

from __future__ import annotations

import json
import time

import pytest
from pulumi import automation as auto

from components.eureka import APP as EUREKA
from lab import hosts as lab_hosts
from lab import instance as lab_instance
from lab.stackfile import EXAMPLE_SERVICE
from tests.e2e.conftest import INSTANCE, Lab, lab_up, lb_arp_mismatches, lb_urls
from tests.e2e.load import Load, loads
from tests.e2e.test_local_stack import kubeconfig_of, kubectl, node_ready
from tests.e2e.test_platform_maintenance import pods_by_node
from tools.automation import Project

pytestmark = pytest.mark.lab
GOAL_S = 60


def _ready_elsewhere(kc: str, ns: str, app: str, lost: str) -> int:
    """Ready pods of the app on nodes other than the lost one."""
    pods = json.loads(kubectl(kc, "-n", ns, "get", "pods", "-l", f"app={app}", "-o", "json").stdout)["items"]
    return sum(
        1
        for p in pods
        if p["spec"].get("nodeName") != lost
        and not p["metadata"].get("deletionTimestamp")
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    )


def _per_node(stack: auto.Stack, ns: str) -> dict[str, int]:
    return {w: sum(p.startswith(EXAMPLE_SERVICE + "-") for p in pods) for w, pods in pods_by_node(stack, ns).items()}


def test_losing_a_worker_moves_its_pods_within_the_bound_and_it_rejoins(local: tuple[Project, auto.Stack], stack: auto.Stack, lab: Lab):
    s = lab.settings
    ns = s.eureka.namespace
    kc = kubeconfig_of(stack)
    example = next(svc for svc in s.services if svc.name == EXAMPLE_SERVICE)
    # One replica per worker, as a fresh rollout places them (after a drain they all run on the
    # other worker: Kubernetes does not move running pods back by itself).
    if sorted(v for v in _per_node(stack, ns).values() if v) != [1] * example.replicas:
        kubectl(kc, "-n", ns, "rollout", "restart", f"deployment/{EXAMPLE_SERVICE}")
        kubectl(kc, "-n", ns, "rollout", "status", f"deployment/{EXAMPLE_SERVICE}", "--timeout=110s")
    per_node = _per_node(stack, ns)
    assert sorted(v for v in per_node.values() if v) == [1] * example.replicas, f"{EXAMPLE_SERVICE} not spread one per worker: {per_node}"
    victim = next(w for w in lab.instance.hosts(len(s.workers))[1:] if per_node.get(w.name))
    url = stack.outputs()["serviceEndpoints"].value[EXAMPLE_SERVICE] + "/"
    bound = s.node_loss.detect_seconds + s.node_loss.evict_seconds
    with Load(url, lab.instance.network, threads=4, max_seconds=600, max_requests=100_000, timeout=3.0) as load:
        time.sleep(3)
        lost_at = time.monotonic() - load._t0
        t0 = time.monotonic()
        lab_hosts.power_off(victim)
        not_ready_s = moved_s = None
        while time.monotonic() - t0 < 300:
            if not_ready_s is None and not node_ready(kc, victim.name):
                not_ready_s = time.monotonic() - t0
            if _ready_elsewhere(kc, ns, EXAMPLE_SERVICE, victim.name) == example.replicas:
                moved_s = time.monotonic() - t0
                break
            time.sleep(1)
        eureka_serving = _ready_elsewhere(kc, ns, EUREKA, victim.name)
        time.sleep(5)  # keep the load on a little after recovery: nothing fails any more
    window = [round(f.at - lost_at, 1) for f in load.failures]
    detection = [w for w in window if w <= bound + 10]
    late = [(round(f.at - lost_at, 1), f.reason) for f in load.failures if f.at - lost_at > bound + 10]
    print(f"[e2e] failures: {len(detection)} in the detection window (to {bound + 10} s), {len(late)} while the replacement started: {late[:10]}")
    print(
        f"\n[e2e] node loss {victim.name} (replicas per node before: {per_node}): NotReady after {not_ready_s} s, {EXAMPLE_SERVICE} {example.replicas}/{example.replicas} Ready elsewhere"
        f" {moved_s} s after the loss (nodeLoss {s.node_loss.detect_seconds}+{s.node_loss.evict_seconds} s); {load.report()};"
        f" failures from {window[:1]} to {window[-1:]} s after the loss; Eureka peers serving meanwhile: {eureka_serving}"
    )
    # The host comes back (the same disk): its services start by themselves, the node is Ready.
    t1 = time.monotonic()
    lab_up(len(s.workers))
    while time.monotonic() - t1 < 300 and not node_ready(kc, victim.name):
        time.sleep(2)
    back_s = time.monotonic() - t1
    assert node_ready(kc, victim.name), f"{victim.name} not Ready {back_s:.0f} s after it booted again"
    t2 = time.monotonic()
    while time.monotonic() - t2 < 300:
        sts = json.loads(kubectl(kc, "-n", ns, "get", "statefulset", EUREKA, "-o", "json").stdout)
        if sts["status"].get("readyReplicas", 0) == s.eureka.replicas:
            break
        time.sleep(2)
    eureka_s = time.monotonic() - t2
    print(f"[e2e] {victim.name} back: node Ready {back_s:.1f} s after boot; Eureka {s.eureka.replicas}/{s.eureka.replicas} Ready {eureka_s:.1f} s later")
    assert sts["status"].get("readyReplicas", 0) == s.eureka.replicas, sts["status"]
    # The returning node's MetalLB speaker may take a Service address back (L2 picks the
    # announcing node by hash): let it settle before the next test puts load on it.
    t3 = time.monotonic()
    while time.monotonic() - t3 < 120:
        ds = json.loads(kubectl(kc, "-n", "metallb-system", "get", "daemonset", "speaker", "-o", "json").stdout)["status"]
        if ds.get("numberReady") == ds.get("desiredNumberScheduled"):
            break
        time.sleep(2)
    # Settled means: no LoadBalancer address has two announcing nodes, this machine's ARP entry
    # names the announcing node, and three 10 s runs in a row through both addresses have no
    # failure (within 240 s), so the next test's load does not meet the aftermath. (Single
    # "no route to host" failures, with a REACHABLE ARP entry, so a node's ICMP answer, were seen
    # for up to a minute after the node came back; their cause is not proven.)
    settled, t4, seen, clean = None, time.monotonic(), [], 0
    while settled is None and time.monotonic() - t4 < 240:
        with loads(lb_urls(stack), lab.instance.network, threads=1, max_seconds=10, max_requests=5_000) as probe:
            time.sleep(10)
        mismatches = lb_arp_mismatches(kc, lab.instance.hosts(len(s.workers)))
        seen += [f"{time.monotonic() - t4:.0f} s: {m}" for m in mismatches]
        seen += [f"{time.monotonic() - t4:.0f} s: {k} {p.report()}" for k, p in probe.items() if p.failures]
        clean = 0 if mismatches or any(p.failures for p in probe.values()) else clean + 1
        if clean == 3:
            settled = time.monotonic() - t3
    print(f"[e2e] {victim.name} back: the LoadBalancer addresses settled {settled} s after the speakers were Ready; on the way: {seen[:8]}")
    assert settled is not None, seen
    assert lab_instance.get(INSTANCE).current_workers() == len(s.workers)

    # The loss itself, asserted once the host is back (a failure above leaves no host down).
    assert moved_s is not None and moved_s <= GOAL_S, f"{EXAMPLE_SERVICE} not Ready elsewhere within {GOAL_S} s (took {moved_s})"
    assert eureka_serving >= 1
    # Requests fail only while the cluster is degraded: mostly in the detection window (the
    # endpoints still hold the lost pod), a few after it while the one remaining replica shares
    # its node with the replacement's start-up (time-outs); none once the replacement is Ready.
    assert all(0 <= w <= moved_s + 5 for w in window), window
    assert load.sent - len(load.failures) > 0
