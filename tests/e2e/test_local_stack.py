"""`pulumi up -s local` against the lab hosts, with the real engine, over real SSH.

In order: a cold up makes a Ready cluster (TLS, RBAC, network config in etcd, everything pulled
from the private registry); a second up changes nothing; one kubelet setting restarts kubelet
alone; an image-tag change previews as an update of the Deployment only; an up killed mid-way
converges after its pending operations are cleared; destroy removes what the bootstrap wrote
and up works again. Times are printed for the notes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from pulumi import automation as auto

from components.control_plane import ETCD_PREFIX
from lab import hosts as lab_hosts
from lab import instance as lab_instance
from tests.e2e.conftest import INSTANCE, REGISTRY_PASSWORD, Lab
from tools import engine, recover
from tools.automation import ROOT, Project

pytestmark = pytest.mark.lab

MASTER, WORKER = "lab-master", "lab-worker-1"
WORKER_UNITS = ("containerd", "flanneld", "kubelet", "kube-proxy")
MASTER_UNITS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "vm-platform-registry")


# etcdctl on the control-plane host, as its etcd admin (for: ETCDCTL + " get ...").
ETCDCTL = (
    "/usr/local/bin/etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/vm-platform/pki/etcd-ca.crt"
    " --cert=/etc/vm-platform/pki/etcd-admin.crt --key=/etc/vm-platform/pki/etcd-admin.key"
)


def kubectl(kubeconfig: Path, *args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    from lab.binaries import out_dir, versions  # the suite's version (conftest), built before the suite

    return subprocess.run(
        [str(out_dir(versions()[0]) / "kubectl"), f"--kubeconfig={kubeconfig}", *args], input=stdin, capture_output=True, text=True, check=check, timeout=120
    )


def kubeconfig_of(stack: auto.Stack) -> Path:
    """The stack's admin kubeconfig in a file for kubectl: in this process's private directory
    (tools/engine.py run_tmp, 0700, removed when the suite exits), never left in /tmp."""
    fd, name = tempfile.mkstemp(prefix="kubeconfig-", dir=engine.run_tmp())
    with os.fdopen(fd, "w") as f:
        f.write(stack.outputs()["kubeconfig"].value)
    return Path(name)


def node_ready(kubeconfig: Path, node: str) -> bool:
    out = kubectl(kubeconfig, "get", "node", node, "-o", "json", check=False)
    if out.returncode:
        return False
    conds = {c["type"]: c["status"] for c in json.loads(out.stdout)["status"]["conditions"]}
    return conds.get("Ready") == "True"


def start_times(lab: Lab, host: str, units: tuple[str, ...]) -> dict[str, str]:
    cmd = "; ".join(f"echo {u}=$(systemctl show -p ActiveEnterTimestampMonotonic --value {u})" for u in units)
    return dict(line.split("=", 1) for line in lab.ssh(host, cmd).stdout.split())


def changes(summary: auto.UpdateSummary) -> dict[str, int]:
    # "read": the program's reference to the stack's own last deployment, read on every run.
    return {k: v for k, v in (summary.resource_changes or {}).items() if k not in ("same", "read") and v}


def test_cold_up_bootstraps_a_ready_cluster(local: tuple[Project, auto.Stack], lab: Lab):
    project, stack = local
    t0 = time.monotonic()
    result = stack.up(color="never", on_output=lambda line: None)
    elapsed = time.monotonic() - t0
    print(f"\n[e2e] cold up (bootstrap to Ready + Eureka rolled out): {elapsed:.1f} s; {result.summary.resource_changes}")
    kc = kubeconfig_of(stack)

    # The worker is Ready, made so by a real kubelet of the pinned version.
    nodes = json.loads(kubectl(kc, "get", "nodes", "-o", "json").stdout)["items"]
    worker = next(n for n in nodes if n["metadata"]["name"] == WORKER)
    assert {c["type"]: c["status"] for c in worker["status"]["conditions"]}["Ready"] == "True"
    assert worker["status"]["nodeInfo"]["kubeletVersion"] == lab.settings.kubernetes_version
    assert worker["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")

    # The API server answers over TLS only, with anonymous auth off and RBAC on.
    api = stack.outputs()["apiServerEndpoint"].value
    anon = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", f"{api}/api"], capture_output=True, text=True)
    assert anon.stdout == "401"
    assert kubectl(kc, "auth", "can-i", "list", "secrets", "--as=system:serviceaccount:default:default", check=False).stdout.strip() == "no"
    assert kubectl(kc, "auth", "can-i", "list", "secrets").stdout.strip() == "yes"

    # The pod-network config is in etcd.
    net = json.loads(lab.ssh(MASTER, f"{ETCDCTL} get --print-value-only /coreos.com/network/config").stdout)
    assert net["Network"] == lab.settings.network.pod_cidr

    # Eureka (the smoke workload) runs from the private registry; so does the pause image.
    dep = json.loads(kubectl(kc, "-n", "platform", "get", "statefulset", "eurekaserver", "-o", "json").stdout)
    assert dep["status"].get("readyReplicas") == dep["spec"]["replicas"] == lab.settings.eureka.replicas
    registry = stack.outputs()["registryEndpoint"].value
    images = lab.ssh(WORKER, "ctr -n k8s.io images ls -q | grep -v '^sha256:'").stdout.split()
    assert images and all(i.startswith(f"{registry}/") for i in images), images
    pods = json.loads(kubectl(kc, "-n", "platform", "get", "pods", "-l", "app=eurekaserver", "-o", "json").stdout)["items"]
    assert all(p["status"]["phase"] == "Running" for p in pods) and len(pods) == dep["spec"]["replicas"]
    # ...and answers as a Eureka server on port 80 of its LoadBalancer address (MetalLB), which
    # is the stack's eurekaEndpoint output.
    endpoint = stack.outputs()["eurekaEndpoint"].value
    assert endpoint.startswith("http://") and endpoint.endswith(":80"), endpoint
    apps = subprocess.run(["curl", "-sf", "-H", "Accept: application/json", f"{endpoint}/eureka/apps"], capture_output=True, text=True, timeout=30)
    assert apps.returncode == 0 and "applications" in apps.stdout


def test_second_up_changes_nothing_and_runs_no_command(local: tuple[Project, auto.Stack]):
    _, stack = local
    t0 = time.monotonic()
    result = stack.up(color="never", expect_no_changes=True)
    print(f"\n[e2e] no-op up: {time.monotonic() - t0:.1f} s")
    assert changes(result.summary) == {}


def test_one_kubelet_setting_restarts_kubelet_alone(local: tuple[Project, auto.Stack], lab: Lab):
    project, stack = local
    workers = [w.name for w in lab.settings.workers]

    def started() -> dict[str, str]:
        out = {f"{MASTER}/{u}": t for u, t in start_times(lab, MASTER, MASTER_UNITS).items()}
        for w in workers:
            out.update({f"{w}/{u}": t for u, t in start_times(lab, w, WORKER_UNITS).items()})
        return out

    before = started()
    project.set_path(stack, "kubelet.maxPods", 60)
    preview = project.preview(stack)
    expected = {}
    for w in workers:  # the setting is every worker's: each gets the file and a kubelet restart
        expected[f"{w}-kubelet-config"] = ("update", ["stdin"])
        expected[f"{w}-kubelet-restart"] = ("replace", ["triggers"])
    assert preview.changed() == expected, preview.changed()
    result = stack.up(color="never")
    assert changes(result.summary) == {"update": len(workers), "replace": len(workers)}
    after = started()
    assert all(after[f"{w}/kubelet"] != before[f"{w}/kubelet"] for w in workers)
    assert {u: t for u, t in after.items() if not u.endswith("/kubelet")} == {u: t for u, t in before.items() if not u.endswith("/kubelet")}
    for w in workers:
        assert "maxPods: 60" in lab.ssh(w, "cat /etc/vm-platform/kubelet.yaml").stdout


def test_image_tag_change_previews_as_a_rolling_update_of_the_statefulset_only(local: tuple[Project, auto.Stack], lab: Lab):
    project, stack = local
    # The new tag must be one the registry provides (here: pushed by other means, no archive).
    images = len(lab.settings.registry.images)
    project.set_path(stack, f"registry.images[{images}].name", "eureka-server:1.1.1")
    project.set_path(stack, "eureka.image", "eureka-server:1.1.1")
    try:
        preview = project.preview(stack)
        assert list(preview.changed()) == ["eureka-app-statefulset"] and preview.changed()["eureka-app-statefulset"][0] == "update", preview.changed()
        assert preview.detailed("eureka-app-statefulset") == ["spec.template.spec.containers[0].image"], preview.detailed("eureka-app-statefulset")
        assert not any(op in preview.ops() for op in ("replace", "create-replacement", "delete"))
        assert "eureka-server:1.1.1" in preview.stdout
    finally:
        project.set_path(stack, "eureka.image", "eureka-server:1.1.0")
        project.pulumi("config", "rm", "--path", "-s", stack.name, f"registry.images[{images}]")


def test_up_killed_mid_bootstrap_converges(local: tuple[Project, auto.Stack], lab: Lab):
    """SIGKILL the engine alone while it restarts kubelet (a crash: its plugins and program
    outlive it, holding their SSH sessions): the stack stays locked and the state keeps a pending
    operation. Recovery is one command, as the README says: `python3 -m tools.recover` ends the
    dead run's orphans, cancels the lock, drops the pending operations and runs `up`, which
    converges; no process of the dead run is left."""
    project, stack = local
    project.set_path(stack, "kubelet.maxPods", 70)
    proc = subprocess.Popen(
        [str(project.engine_dir / "pulumi"), "up", "--yes", "--skip-preview", "-s", "local", "--color", "never"],
        cwd=project.dir, env={**os.environ, **project.env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    killed_at = None
    assert proc.stdout is not None
    for line in proc.stdout:
        if f"{WORKER}-kubelet-restart" in line and "creating" in line:
            proc.kill()  # the engine only
            killed_at = line.strip()
            break
    proc.wait(timeout=120)
    assert killed_at, "the kubelet restart step never started"
    left = recover.orphans(recover.processes(), project.dir.resolve())
    print(f"\n[e2e] killed pulumi at: {killed_at}; its orphans: {sorted(p.name for p in left)}")
    t0 = time.monotonic()
    p = subprocess.run(
        [sys.executable, "-m", "tools.recover", "--stack", "local", "--cwd", str(project.dir)],
        cwd=ROOT, env={**os.environ, **project.env}, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr[-3000:]
    print(f"[e2e] converge after kill (python3 -m tools.recover): {time.monotonic() - t0:.1f} s;", " / ".join(p.stdout.split("\n")))
    assert recover.orphans(recover.processes(), project.dir.resolve()) == []
    assert node_ready(kubeconfig_of(stack), WORKER)
    assert "maxPods: 70" in lab.ssh(WORKER, "cat /etc/vm-platform/kubelet.yaml").stdout
    assert changes(stack.up(color="never", expect_no_changes=True).summary) == {}

    # The worker's SSH server stops mid-run (after the run's first step on it began): the run
    # fails naming the host once its dials give up; the server starts again (from inside the
    # host, without SSH); the same one command converges.
    project.set_path(stack, "kubelet.maxPods", 80)
    proc = subprocess.Popen(
        [str(project.engine_dir / "pulumi"), "up", "--yes", "--skip-preview", "-s", "local", "--color", "never"],
        cwd=project.dir, env={**os.environ, **project.env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    output, stopped = [], False
    worker = next(h for h in lab_instance.get(INSTANCE).existing_hosts() if h.name == WORKER)
    try:
        for line in proc.stdout:
            output.append(line)
            if not stopped and f"{WORKER}-" in line and ("updating" in line or "creating" in line):
                lab.ssh(WORKER, "systemctl stop ssh.socket 2>/dev/null; systemctl stop ssh.service")
                stopped = True
        code = proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)
        started = lab_hosts.inside(worker, "systemctl", "start", "ssh.service")
    assert stopped and code != 0 and started.returncode == 0, (stopped, code, started.stderr, "".join(output[-40:]))
    assert worker.address in "".join(output), "".join(output[-40:])
    t0 = time.monotonic()
    p = subprocess.run(
        [sys.executable, "-m", "tools.recover", "--stack", "local", "--cwd", str(project.dir)],
        cwd=ROOT, env={**os.environ, **project.env}, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr[-3000:]
    print(f"[e2e] SSH server stopped mid-run: up failed naming {worker.address}; tools.recover converged in {time.monotonic() - t0:.1f} s")
    assert "maxPods: 80" in lab.ssh(WORKER, "cat /etc/vm-platform/kubelet.yaml").stdout
    assert node_ready(kubeconfig_of(stack), WORKER)
    assert changes(stack.up(color="never", expect_no_changes=True).summary) == {}


def test_destroy_removes_what_bootstrap_wrote_and_up_works_again(local: tuple[Project, auto.Stack], lab: Lab):
    project, stack = local
    t0 = time.monotonic()
    stack.destroy(color="never")
    print(f"\n[e2e] destroy: {time.monotonic() - t0:.1f} s")
    for host, units in ((WORKER, WORKER_UNITS), (MASTER, MASTER_UNITS)):
        states = lab.ssh(host, "systemctl is-active " + " ".join(units), check=False).stdout.split()
        assert all(s in ("inactive", "unknown", "failed") for s in states), (host, states)
        left = lab.ssh(host, "ls /usr/local/lib/vm-platform /etc/vm-platform/pki /etc/systemd/system/kubelet.service 2>/dev/null; true").stdout
        assert left.strip() == "", (host, left)
    bootstrap_killed_at_every_step(project, stack, lab)
    assert node_ready(kubeconfig_of(stack), WORKER)


def test_registry_auth_turns_on_in_place(local: tuple[Project, auto.Stack], lab: Lab):
    """prod's registry mode on the lab: htpasswd auth, containerd credentials, pull secrets."""
    project, stack = local
    project.set_path(stack, "registry.auth", "true")
    project.set_path(stack, "registry.username", "platform")
    project.set_secret(stack, "registryPassword", REGISTRY_PASSWORD)
    t0 = time.monotonic()
    result = stack.up(color="never")
    print(f"\n[e2e] registry auth on: {time.monotonic() - t0:.1f} s; {result.summary.resource_changes}")
    registry = stack.outputs()["registryEndpoint"].value
    anon = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", f"https://{registry}/v2/_catalog"], capture_output=True, text=True)
    assert anon.stdout == "401"
    authed = subprocess.run(
        ["curl", "-sk", "-K", "-", f"https://{registry}/v2/_catalog"], input=f'user = "platform:{REGISTRY_PASSWORD}"\n', capture_output=True, text=True
    )
    assert "eureka-server" in authed.stdout and "pause" in authed.stdout
    kc = kubeconfig_of(stack)
    dep = json.loads(kubectl(kc, "-n", "platform", "get", "statefulset", "eurekaserver", "-o", "json").stdout)
    assert dep["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "vm-platform-registry"}]
    # Every replica runs again from the authenticated registry (a replica the containerd restart
    # caught mid-probe may take a few seconds more than the rollout `up` waited for).
    deadline = time.monotonic() + 90
    while dep["status"].get("readyReplicas") != dep["spec"]["replicas"] and time.monotonic() < deadline:
        time.sleep(3)
        dep = json.loads(kubectl(kc, "-n", "platform", "get", "statefulset", "eurekaserver", "-o", "json").stdout)
    assert dep["status"].get("readyReplicas") == dep["spec"]["replicas"], dep["status"]
    assert REGISTRY_PASSWORD not in lab.ssh(WORKER, "journalctl -u containerd -u kubelet --no-pager | tail -200").stdout


# Where the bootstrap after destroy is interrupted (issue 12 item 3): the first line of the
# engine's output that shows one of these resources being created, in whatever order they come.
KILL_POINTS = {
    "PKI": f"{MASTER}-pki",
    "etcd": f"{MASTER}-etcd-restart",
    "flannel config in etcd": f"{MASTER}-pod-network",
    "API server": f"{MASTER}-kube-apiserver-restart",
    "controller manager": f"{MASTER}-kube-controller-manager-restart",
    "worker certificates": f"{WORKER}-sign",
    "registry": f"{MASTER}-registry-restart",
    "image loading": f"{MASTER}-registry-push-",
    "containerd": f"{WORKER}-containerd-restart",
    "flannel": f"{WORKER}-flanneld-restart",
    "kubelet": f"{WORKER}-kubelet-restart",
    "kube-proxy": f"{WORKER}-kube-proxy-restart",
    "Kubernetes objects": "kubernetes:apps/v1:",
    "LoadBalancer": "IPAddressPool",
}


def _killable_up(project: Project, remaining: dict[str, str]) -> tuple[str | None, str, int]:
    """`pulumi up` in its own process group; SIGKILL to the whole group (the engine, its plugins
    and the program at once) at the first line matching a remaining kill point. Returns (the
    point, its line, exit code)."""
    proc = subprocess.Popen(
        [str(project.engine_dir / "pulumi"), "up", "--yes", "--skip-preview", "-s", "local", "--color", "never"],
        cwd=project.dir, env={**os.environ, **project.env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        hit = next((name for name, pattern in remaining.items() if pattern in line and " creating" in line), None)
        if hit:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
            return hit, line.strip(), proc.returncode
    return None, "", proc.wait(timeout=60)


def _recover(project: Project, *, up: bool) -> float:
    t0 = time.monotonic()
    p = subprocess.run(
        [sys.executable, "-m", "tools.recover", "--stack", "local", "--cwd", str(project.dir), *([] if up else ["--no-up"])],
        cwd=ROOT, env={**os.environ, **project.env}, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr[-3000:]
    return time.monotonic() - t0


def _ca_fingerprints(lab: Lab) -> set[str]:
    cmd = "for f in /etc/vm-platform/pki/ca.crt /etc/vm-platform/pki/etcd-ca.crt; do [ -s $f ] && openssl x509 -in $f -noout -fingerprint -sha256; done; true"
    return {line for host in (MASTER, WORKER) for line in lab.ssh(host, cmd).stdout.splitlines() if line}


def bootstrap_killed_at_every_step(project: Project, stack: auto.Stack, lab: Lab) -> None:
    """The bootstrap after destroy, SIGKILLed at each kill point in turn (each recovery's `up` is
    the next one killed). Each time `tools.recover` (without its `up`) clears the dead run; the
    last one converges. Then: one CA each (the same from its first appearance on), one flannel
    lease per worker, no failed unit, no process of a dead run, and nothing left to change."""
    remaining = dict(KILL_POINTS)
    table: list[tuple[str, float]] = []
    cas: set[str] = set()
    t_all = time.monotonic()
    while remaining:
        t0 = time.monotonic()
        point, line, _ = _killable_up(project, remaining)
        if point is None:
            break  # the run finished: the points left were passed by earlier runs
        del remaining[point]
        cas |= _ca_fingerprints(lab)
        recovery = _recover(project, up=False)
        table.append((point, time.monotonic() - t0))
        print(f"\n[e2e] killed at {point} ({line[:120]}): recover (no up) {recovery:.1f} s")
    t0 = time.monotonic()
    _recover(project, up=True)
    table.append(("final recover (with up)", time.monotonic() - t0))
    print(
        f"[e2e] bootstrap killed {len(table) - 1} times: {time.monotonic() - t_all:.1f} s; per point (run + recovery, s): "
        + ", ".join(f"{p} {t:.0f}" for p, t in table)
    )
    print(f"[e2e] kill points passed without a kill (done by an earlier run): {sorted(remaining)}")
    assert len(table) - 1 >= 10, table
    # Nothing duplicated, nothing orphaned, nothing left to do.
    assert len(cas | _ca_fingerprints(lab)) == 2, cas  # the cluster CA and the etcd CA, one each, the same on both hosts
    leases = lab.ssh(MASTER, ETCDCTL + f" get --prefix --keys-only {ETCD_PREFIX}/subnets").stdout.split()
    assert len(leases) == len(lab.settings.workers), leases
    for host in (MASTER, WORKER):
        failed = lab.ssh(host, "systemctl --failed --no-legend --plain").stdout.strip()
        assert failed == "", (host, failed)
    assert recover.orphans(recover.processes(), project.dir.resolve()) == []
    assert changes(stack.up(color="never", expect_no_changes=True).summary) == {}
