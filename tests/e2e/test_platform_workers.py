"""Day-2 on the lab, under load: adding a worker (append to `workers`) and removing it again.

Adding: the preview creates only the new host's steps (its own, and its certificate signing and
readiness check on the control plane) and changes nothing else; `up` joins it; no service on
the other hosts restarts. Removing: the preview deletes exactly those; `up` drains the node,
deletes its Node object and flannel lease, then stops and cleans the host, with the other hosts
untouched. The example service answers through its LoadBalancer address throughout.
"""

from __future__ import annotations

import json
import time

import pytest
from pulumi import automation as auto

from lab import instance as lab_instance
from lab import stackfile
from lab.stackfile import EXAMPLE_SERVICE
from tests.e2e.conftest import INSTANCE, Lab, lab_up
from tests.e2e.load import Load
from tests.e2e.test_local_stack import ETCDCTL, kubeconfig_of, kubectl
from tools.automation import Project

pytestmark = pytest.mark.lab


def at_most_one_handover(load: Load) -> bool:
    """No failure, or one burst of connection resets within 2 s: MetalLB (L2) picks the node
    that announces a Service address by hashing the nodes' names, so a node joining or leaving
    may take the announcement over; requests in flight through the old node are then reset."""
    bursts = load.bursts()
    return not bursts or (len(bursts) == 1 and bursts[0][1] - bursts[0][0] <= 2 and all("ConnectionReset" in f.reason for f in load.failures))


UNITS = {
    "control": ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "vm-platform-registry"],
    "worker": ["containerd", "flanneld", "kubelet", "kube-proxy"],
}


def _started(lab: Lab) -> dict[str, str]:
    """host/unit -> the unit's start time (monotonic): any restart changes it."""
    out = {}
    for host in lab.hosts:
        units = UNITS["control" if host == lab.settings.control_plane.name else "worker"]
        got = lab.ssh(host, "systemctl show -p ActiveEnterTimestampMonotonic --value " + " ".join(units)).stdout.split()
        out.update({f"{host}/{u}": t for u, t in zip(units, got, strict=True)})
    return out


def _ops(project: Project, stack: auto.Stack) -> dict[str, str]:
    return {name: op for name, (op, _) in project.preview(stack).changed().items()}


def test_adding_and_removing_a_worker_touches_no_other_host(local: tuple[Project, auto.Stack], stack: auto.Stack, lab: Lab):
    project, _ = local
    n = len(lab.settings.workers)
    kc = kubeconfig_of(stack)
    url = stack.outputs()["serviceEndpoints"].value[EXAMPLE_SERVICE] + "/"
    lab_up(n + 1)
    new = stackfile.stack_config(lab_instance.get(INSTANCE), n + 1)[0]["vm-platform:workers"][n]
    name, address = new["name"], new["address"]
    before = _started(lab)
    try:
        for key in ("name", "address", "hostKey"):
            project.set_path(stack, f"workers[{n}].{key}", new[key])
        ops = _ops(project, stack)
        assert ops and set(ops.values()) == {"create"}, {k: v for k, v in ops.items() if v != "create"}
        assert all(name in r for r in ops), sorted(r for r in ops if name not in r)
        with Load(url, lab.instance.network, threads=2, max_seconds=900, max_requests=100_000) as load:
            t0 = time.monotonic()
            stack.up(color="never", on_output=lambda line: None)
            join_s = time.monotonic() - t0
        node = json.loads(kubectl(kc, "get", "node", name, "-o", "json").stdout)
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
        print(f"\n[e2e] add worker {name}: {len(ops)} creates, up (joined, Ready) {join_s:.1f} s; {load.report()}")
        assert ready == "True"
        assert _started(lab) == before, "a service on another host restarted"
        assert at_most_one_handover(load), load.report()

        # Removing it: exactly its steps are deleted; its node, lease and files go.
        project.pulumi("config", "rm", "--path", f"workers[{n}]", "-s", stack.name)
        ops = _ops(project, stack)
        assert ops and set(ops.values()) == {"delete"} and all(name in r for r in ops), ops
        with Load(url, lab.instance.network, threads=2, max_seconds=900, max_requests=100_000) as load:
            t0 = time.monotonic()
            stack.up(color="never", on_output=lambda line: None)
            remove_s = time.monotonic() - t0
        print(f"[e2e] remove worker {name}: {len(ops)} deletes, up (drained, deleted, cleaned) {remove_s:.1f} s; {load.report()}")
        assert kubectl(kc, "get", "node", name, check=False).returncode != 0, f"node {name} still registered"
        leases = lab.ssh(lab.settings.control_plane.name, f"{ETCDCTL} get --prefix /coreos.com/network/subnets/ --print-value-only").stdout
        assert f'"PublicIP":"{address}"' not in leases, leases
        leftovers = lab.ssh(
            name,
            "systemctl is-active kubelet kube-proxy containerd flanneld vmp-netpol; ls -d /etc/vm-platform /var/lib/vm-platform /var/lib/kubelet /usr/local/bin/kubelet 2>/dev/null;"
            " iptables -w 5 -S VMP-NETPOL > /dev/null 2>&1 && echo netpol-chains-left",
            check=False,
        ).stdout.split()
        assert set(leftovers) <= {"inactive", "unknown", "failed"}, leftovers
        assert _started(lab) == before, "a service on another host restarted"
        assert at_most_one_handover(load), load.report()
    finally:
        project.pulumi("config", "rm", "--path", f"workers[{n}]", "-s", stack.name, check=False)
        stack.up(color="never", on_output=lambda line: None)
        lab_up(n)
