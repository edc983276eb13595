"""etcd snapshots and the one-command restore, on the lab.

A namespace with a Secret, a ConfigMap and a Deployment is created by hand; `python3 -m tools.etcd
save` snapshots etcd (and `fetch` copies it off the host, checked); then etcd's data is wiped on the control plane (the disaster: the API
server comes back empty and the namespace is gone). `python3 -m tools.etcd restore --yes` brings
it back: every object, the Secret's value, the workload Ready, the nodes Ready, Eureka and the
example service answering, and `pulumi preview` shows nothing to do. The scheduled snapshot
timer is checked too. Prints the snapshot's size, the save and restore times, and what a load
through the LoadBalancer saw (the data plane goes down with the wipe: with an empty API server
the kubelets stop their pods).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from pulumi import automation as auto

from lab import binaries
from lab.stackfile import EXAMPLE_SERVICE, PAUSE_IMAGE
from tests.e2e.conftest import Lab
from tests.e2e.load import Load
from tests.e2e.test_local_stack import kubeconfig_of, kubectl, node_ready
from tools.automation import ROOT, Project

pytestmark = pytest.mark.lab

NS = "restore-check"


def etcd_tool(project: Project, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.monotonic()
    p = subprocess.run(
        [sys.executable, "-m", "tools.etcd", *args, "--stack", "local", "--cwd", str(project.dir)],
        cwd=ROOT, env={**os.environ, **project.env}, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    return p, time.monotonic() - t0


def manifest(image: str, value: str) -> str:
    docs = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kept", "namespace": NS}, "stringData": {"value": value}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kept", "namespace": NS}, "data": {"note": "made before the snapshot"}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "kept", "namespace": NS},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "kept"}},
                "template": {
                    "metadata": {"labels": {"app": "kept"}},
                    "spec": {"automountServiceAccountToken": False, "containers": [{"name": "pause", "image": image}]},
                },
            },
        },
    ]
    return "\n---\n".join(json.dumps(d) for d in docs)


def wait(what: str, check, timeout: float = 240) -> float:
    t0 = time.monotonic()
    while not check():
        assert time.monotonic() - t0 < timeout, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(2)
    return time.monotonic() - t0


def test_snapshot_wipe_and_restore_with_one_command(local: tuple[Project, auto.Stack], stack: auto.Stack, lab: Lab):
    project, _ = local
    s = lab.settings
    cp = s.control_plane.name
    kc = kubeconfig_of(stack)
    value = secrets.token_urlsafe(12)
    subprocess.run(
        [str(binaries.out_dir(binaries.versions()[0]) / "kubectl"), f"--kubeconfig={kc}", "apply", "-f", "-"],
        input=manifest(s.image_ref(PAUSE_IMAGE), value), text=True, check=True, capture_output=True, timeout=120,
    )  # fmt: skip

    def kept_ready() -> bool:
        out = kubectl(kc, "-n", NS, "get", "deployment", "kept", "-o", "jsonpath={.status.readyReplicas}", check=False)
        return out.returncode == 0 and out.stdout.strip() == "1"

    wait("the Deployment made by hand", kept_ready)
    timer = lab.ssh(cp, "systemctl is-active etcd-snapshot.timer; systemctl show -p TimersMonotonic --value etcd-snapshot.timer").stdout
    assert timer.startswith("active"), timer

    # 1. A snapshot now.
    saved, save_s = etcd_tool(project, "save")
    assert saved.returncode == 0, saved.stderr
    path = saved.stdout.splitlines()[0].strip()
    size = int(lab.ssh(cp, f"stat -c %s {path}").stdout)
    listed, _ = etcd_tool(project, "list")
    assert listed.returncode == 0 and listed.stdout.splitlines()[0].split()[0] == path.rsplit("/", 1)[1], listed.stdout
    print(f"\n[e2e] etcd snapshot {path}: {size / 1e6:.1f} MB, saved in {save_s:.1f} s (tool, SSH and state export included)")
    copy = Path(tempfile.mkdtemp(prefix="vmp-snapshot-")) / "copy.db"
    fetched, fetch_s = etcd_tool(project, "fetch", "--out", str(copy))
    assert fetched.returncode == 0, fetched.stderr
    remote_sha = lab.ssh(cp, f"sha256sum {path}").stdout.split()[0]
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == remote_sha and copy.stat().st_mode & 0o777 == 0o600
    print(f"[e2e] fetched off the host in {fetch_s:.1f} s: {fetched.stdout.strip()}")
    copy.unlink()

    # 2. The disaster: etcd's data wiped; the API server comes back empty.
    url = stack.outputs()["serviceEndpoints"].value[EXAMPLE_SERVICE] + "/"
    with Load(url, lab.instance.network, threads=2, max_seconds=600, max_requests=60_000) as load:
        lab.ssh(cp, "systemctl stop etcd && rm -rf /var/lib/etcd && systemctl start etcd")
        wait("the empty API server", lambda: "NotFound" in kubectl(kc, "get", "namespace", NS, check=False).stderr)

        # 3. The restore: one command.
        restored, restore_s = etcd_tool(project, "restore", "--yes")
        assert restored.returncode == 0, restored.stdout + restored.stderr
        print(f"[e2e] restore: {restore_s:.1f} s end to end; {restored.stdout.strip().splitlines()[0]}")
        ready_s = wait("the restored Deployment Ready", kept_ready)
        nodes_s = wait("every node Ready", lambda: all(node_ready(kc, n) for n in lab.hosts if n != cp))
        wait("the example service answering", lambda: _answers(url, lab))
    print(f"[e2e] after the restore: the Deployment Ready in {ready_s:.1f} s, the nodes {nodes_s:.1f} s; load during wipe and restore: {load.report()}")

    got = kubectl(kc, "-n", NS, "get", "secret", "kept", "-o", "jsonpath={.data.value}").stdout
    assert base64.b64decode(got).decode() == value
    assert kubectl(kc, "-n", NS, "get", "configmap", "kept", "-o", "jsonpath={.data.note}").stdout == "made before the snapshot"
    kept_dir = lab.ssh(cp, "ls -d /var/lib/etcd.before-restore-*").stdout.split()
    assert kept_dir, "the replaced data is not kept"
    assert lab.ssh(cp, "systemctl is-active etcd-snapshot.timer").stdout.strip() == "active"

    # 4. Nothing for `up` to do.
    again = project.preview(stack)
    assert not again.error and again.changed() == {}, again.error[-2000:] or again.changed()
    kubectl(kc, "delete", "namespace", NS, "--wait=false")
    lab.ssh(cp, "rm -rf /var/lib/etcd.before-restore-*")


def _answers(url: str, lab: Lab) -> bool:
    with Load(url, lab.instance.network, threads=1, max_seconds=10, max_requests=20) as probe:
        while probe.sent < 20 and time.monotonic() - probe._t0 < 10:
            time.sleep(0.2)
    return probe.sent > 0 and not probe.failures
