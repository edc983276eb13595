"""NetworkPolicies enforced on the lab (network.policyEnforcer vmp-netpol, the lab's setting).

What a pod may do is asked of real packets: curl runs on the worker hosts, inside a pod's own
network namespace (its traffic then leaves from the pod's address, as the pod's own would), or
on a host, whose traffic to a pod on the other node is forwarded like any pod's. Compared each
time with what the same connection does where no policy applies (the node to its own pods:
the API always allows it), so a refusal is the policy's and not a closed port.
"""

from __future__ import annotations

import json
import shlex
import time
from typing import Any

import pytest
from pulumi import automation as auto

from components import dns
from tests.e2e.conftest import Lab
from tests.e2e.test_local_stack import kubeconfig_of, kubectl
from tests.e2e.test_platform import eventually

pytestmark = pytest.mark.lab


def _pods(stack: auto.Stack, namespace: str, selector: str) -> list[dict[str, Any]]:
    out = kubectl(kubeconfig_of(stack), "-n", namespace, "get", "pods", "-l", selector, "-o", "json").stdout
    return [p for p in json.loads(out)["items"] if p["status"].get("podIP") and not p["metadata"].get("deletionTimestamp")]


def _curl(url: str) -> str:
    """curl's exit code and HTTP status: '0 200', '7 000' (refused: a REJECT answers so), ..."""
    return f"curl -sk -o /dev/null -m 5 -w '%{{http_code}}' {shlex.quote(url)}; echo \" $?\""


def _from_host(lab: Lab, host: str, url: str) -> tuple[int, str]:
    out = lab.ssh(host, _curl(url), check=False, timeout=30).stdout.split()
    return int(out[-1]), out[0]


def _from_pod(lab: Lab, node: str, pod_ip: str, url: str) -> tuple[int, str]:
    """curl from inside the network namespace whose eth0 holds pod_ip, on node."""
    script = (
        "for ns in $(ip netns list | cut -d' ' -f1); do "
        f"if ip -n $ns -4 -o addr show 2>/dev/null | grep -qw {shlex.quote(pod_ip)}; then ip netns exec $ns sh -c {shlex.quote(_curl(url))}; exit 0; fi; "
        "done; echo 'no-netns 99'"
    )
    out = lab.ssh(node, script, check=False, timeout=30).stdout.split()
    assert out and out[-1] != "99", f"no network namespace holds {pod_ip} on {node}"
    return int(out[-1]), out[0]


def test_every_worker_jumps_to_the_enforcer_first_and_isolates_its_platform_pods(stack: auto.Stack, lab: Lab):
    assert lab.settings.network.policy_enforcer == "vmp-netpol"
    t0 = time.monotonic()
    for worker in (w.name for w in lab.settings.workers):

        def isolated(worker: str = worker) -> bool:
            first = lab.ssh(worker, "iptables -w 5 -S FORWARD 1").stdout.strip()
            assert first == "-A FORWARD -j VMP-NETPOL", f"{worker}: FORWARD begins with {first!r}"
            chain = lab.ssh(worker, "iptables -w 5 -S VMP-NETPOL").stdout
            local = [p for p in _pods(stack, lab.settings.eureka.namespace, "app") if p["spec"]["nodeName"] == worker]
            for p in local:
                ip = p["status"]["podIP"]
                assert f"-d {ip}/32" in chain and f"-s {ip}/32" in chain, f"{worker}: {p['metadata']['name']} ({ip}) is not isolated both ways:\n{chain}"
            return True

        # Right after a cold `up` the enforcer may still be taking its first sync (it starts
        # before the stack grants its read access): seconds, not more.
        eventually(isolated, 30, f"{worker}: the enforcer's jump first and every platform pod isolated")
    print(f"\n[e2e] network policy: both workers enforcing {time.monotonic() - t0:.1f} s after the fixture's up")


def test_ingress_outside_the_allow_rules_is_refused(stack: auto.Stack, lab: Lab):
    """CoreDNS listens on its metrics port, which its policy does not open: the node answers
    itself, the other worker is refused; its DNS port stays open from there."""
    pods = _pods(stack, "kube-system", "k8s-app=kube-dns")
    workers = [w.name for w in lab.settings.workers]
    pod = pods[0]
    node, ip = pod["spec"]["nodeName"], pod["status"]["podIP"]
    other = next(w for w in workers if w != node)
    assert _from_host(lab, node, f"http://{ip}:9153/metrics") == (0, "200"), "the pod's own node reaches its metrics port"
    code, status = _from_host(lab, other, f"http://{ip}:9153/metrics")
    assert (code, status) == (7, "000"), f"from {other}: curl exit {code}, HTTP {status} (want refused)"
    dig = lab.ssh(other, f"timeout 5 bash -c 'exec 3<>/dev/tcp/{ip}/{dns.DNS_PORT}' && echo open", check=False).stdout.strip()
    assert dig == "open", f"CoreDNS's DNS port (TCP {dns.DNS_PORT}) from {other}: {dig!r}"


def test_egress_outside_the_allow_rules_is_refused_and_a_new_policy_opens_it(stack: auto.Stack, lab: Lab):
    """The example service may reach DNS and Eureka, not the API server; a policy added with
    kubectl opens that within seconds, and its removal closes it again."""
    s = lab.settings
    ex = _pods(stack, s.eureka.namespace, "app=example-service")[0]
    node, ip = ex["spec"]["nodeName"], ex["status"]["podIP"]
    eureka_ip = _pods(stack, s.eureka.namespace, "app=eurekaserver")[0]["status"]["podIP"]
    api = f"https://{s.control_plane.address}:{s.network.api_server_port}/healthz"
    assert _from_pod(lab, node, ip, f"http://{eureka_ip}:{s.eureka.container_port}/actuator/health") == (0, "200")
    assert _from_host(lab, node, api)[0] == 0, "the API server answers the node"
    assert _from_pod(lab, node, ip, api) == (7, "000"), "the example service reaching the API server"

    kc = kubeconfig_of(stack)
    name = "e2e-allow-api"
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": s.eureka.namespace},
        "spec": {
            "podSelector": {"matchLabels": {"app": "example-service"}},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": f"{s.control_plane.address}/32"}}], "ports": [{"protocol": "TCP", "port": s.network.api_server_port}]}],
        },
    }
    t0 = time.monotonic()
    kubectl(kc, "apply", "-f", "-", stdin=json.dumps(policy))
    try:
        eventually(lambda: _from_pod(lab, node, ip, api)[0] == 0, 30, "the API server from the example service once allowed")
        opened = time.monotonic() - t0
    finally:
        kubectl(kc, "-n", s.eureka.namespace, "delete", "networkpolicy", name, "--wait=true")
    t1 = time.monotonic()
    eventually(lambda: _from_pod(lab, node, ip, api) == (7, "000"), 30, "the API server refused again once the policy is gone")
    print(f"\n[e2e] network policy: a new allow rule in force after {opened:.1f} s, its removal after {time.monotonic() - t1:.1f} s")
