"""Drift on the lab: after `up` the check is clean; then a managed file is edited on a worker, a
service is stopped and a Kubernetes object is deleted by hand; the check reports each one (and
nothing on the other hosts), the repair command it prints fixes all three, and the check is clean
again. Prints how long the check takes per host and in total."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time

import pytest
from pulumi import automation as auto

from tests.e2e.conftest import Lab
from tests.e2e.test_local_stack import kubeconfig_of, kubectl
from tools.automation import ROOT, Project

pytestmark = pytest.mark.lab

EDIT = "# edited by hand (drift e2e)"
HOST_LINE = re.compile(r"^## (\S+) \((\S+)\): (clean|\d+ drifted) \((\d+) files, (\d+) units, ([\d.]+) s\)$", re.MULTILINE)


def drift(project: Project, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.monotonic()
    p = subprocess.run(
        [sys.executable, "-m", "tools.drift", "--stack", "local", "--cwd", str(project.dir), *args],
        cwd=ROOT, env={**os.environ, **project.env}, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    return p, time.monotonic() - t0


def hosts_in(report: str) -> dict[str, tuple[str, float]]:
    return {m.group(1): (m.group(3), float(m.group(6))) for m in HOST_LINE.finditer(report)}


def test_drift_is_reported_per_host_and_the_printed_repair_fixes_it(local: tuple[Project, auto.Stack], stack: auto.Stack, lab: Lab):
    project, _ = local
    worker = lab.settings.workers[0].name
    ns = lab.settings.eureka.namespace
    kc = kubeconfig_of(stack)

    clean, seconds = drift(project)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    hosts = hosts_in(clean.stdout)
    assert set(hosts) == set(lab.hosts) and all(state == "clean" for state, _ in hosts.values()), clean.stdout
    k8s_s = re.search(r"Kubernetes preview ([\d.]+) s", clean.stdout)
    print(
        f"\n[e2e] drift check, clean: {seconds:.1f} s in all; per host over SSH: "
        + ", ".join(f"{h} {s:.2f} s" for h, (_, s) in sorted(hosts.items()))
        + f"; Kubernetes preview {k8s_s.group(1) if k8s_s else '?'} s"
    )

    lab.ssh(worker, f"echo {shlex.quote(EDIT)} >> /etc/vm-platform/kubelet.yaml")
    lab.ssh(worker, "systemctl stop kube-proxy")
    kubectl(kc, "-n", ns, "delete", "pdb", "example-service")
    try:
        found, seconds = drift(project)
        print(f"[e2e] drift check with 3 drifts: {seconds:.1f} s\n{found.stdout}")
        assert found.returncode == 1, found.stdout + found.stderr
        report = found.stdout
        hosts = hosts_in(report)
        assert hosts[worker][0] == "2 drifted", report
        assert all(state == "clean" for h, (state, _) in hosts.items() if h != worker), report
        worker_section = report.split(f"## {worker} ")[1].split("\n## ")[0]
        assert "| file /etc/vm-platform/kubelet.yaml | changed (sha256 " in worker_section, report
        assert f"re-run `{worker}-kubelet-config`, replace `{worker}-kubelet-restart`" in worker_section, report
        assert f"| unit kube-proxy | inactive (wants active) | replace `{worker}-kube-proxy-restart` |" in worker_section, report
        assert "| create | `kubernetes:policy/v1:PodDisruptionBudget` `service-example-service-pdb` |" in report, report
        command = report.split("## Repair\n\n```bash\n")[1].split("\n```")[0]
        assert command == f"python3 -m tools.drift --stack local --cwd {shlex.quote(str(project.dir))} --repair", report

        t0 = time.monotonic()
        repaired = subprocess.run(shlex.split(command), cwd=ROOT, env={**os.environ, **project.env}, capture_output=True, text=True, timeout=3600)
        print(f"[e2e] repair (`{command}`): {time.monotonic() - t0:.1f} s")
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr
        assert "# After the repair" in repaired.stdout and "**Result: no drift**" in repaired.stdout.split("# After the repair")[1], repaired.stdout
    finally:  # whatever failed, leave the hosts as the rest of the suite expects them
        lab.ssh(worker, f"sed -i '/^{EDIT}$/d' /etc/vm-platform/kubelet.yaml; systemctl start kube-proxy", check=False)

    assert EDIT not in lab.ssh(worker, "cat /etc/vm-platform/kubelet.yaml").stdout
    assert lab.ssh(worker, "systemctl is-active kube-proxy", check=False).stdout.strip() == "active"
    assert kubectl(kc, "-n", ns, "get", "pdb", "example-service", check=False).returncode == 0

    again, seconds = drift(project)
    assert again.returncode == 0, again.stdout + again.stderr
    print(f"[e2e] drift check after the repair: clean in {seconds:.1f} s")
    changed = project.preview(stack).changed()
    assert changed == {}, changed
