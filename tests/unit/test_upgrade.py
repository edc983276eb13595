"""Kubernetes upgrades in place: the version rule (shared with upgrade-gate.sh), the order of
the steps under mocks, exactly what a version change touches, and the preview's refusal."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from components.remote import SCRIPTS_DIR
from components.upgrade import VERSION_OUTPUT, plan, refusal
from tests.unit.harness import RecordingMocks, base_config, run_program
from tests.unit.test_components import changed

CP = "centos-master"
W1, W2 = "centos-minion-1", "centos-minion-2"

CASES = [
    ("v1.34.3", "v1.34.4", None),
    ("v1.34.4", "v1.35.0", None),
    ("v1.34.4", "v1.34.4", None),
    ("v1.34.4", "v1.36.0", "one minor version at a time"),
    ("v1.34.4", "v1.34.3", "refusing to downgrade"),
    ("v1.35.1", "v1.34.9", "refusing to downgrade"),
    ("v1.34.4", "v2.34.4", "one minor version at a time"),
]


@pytest.mark.parametrize(("previous", "target", "problem"), CASES)
def test_the_version_rule(previous, target, problem):
    got = refusal(previous, target)
    assert (got is None) == (problem is None), got
    if problem:
        assert problem in got and got.startswith("kubernetesVersion: "), got


@pytest.mark.parametrize(("previous", "target", "problem"), CASES)
def test_the_control_planes_gate_applies_the_same_rule(previous, target, problem):
    """upgrade-gate.sh against a fake installed kube-apiserver: refuses exactly what the preview
    refuses (no etcd runs here, so an allowed upgrade takes no snapshot)."""
    with tempfile.TemporaryDirectory() as tmp:
        bin_dir = Path(tmp) / "bin"
        bin_dir.mkdir()
        fake = bin_dir / "kube-apiserver"
        fake.write_text(f"#!/bin/sh\necho 'Kubernetes {previous}'\n")
        fake.chmod(0o755)
        script = (SCRIPTS_DIR / "upgrade-gate.sh").read_text().replace("/usr/local/bin/kube-apiserver", str(fake))
        (Path(tmp) / "gate.sh").write_text(script)
        for lib in ("lib.sh", "etcd-lib.sh"):
            (Path(tmp) / lib).write_text((SCRIPTS_DIR / lib).read_text())
        env = {**os.environ, "TARGET": target, "DIR": f"{tmp}/snapshots", "KEEP": "3", "PATH": f"{bin_dir}:{os.environ['PATH']}"}
        proc = subprocess.run(["bash", f"{tmp}/gate.sh"], env=env, capture_output=True, text=True)
    if problem:
        assert proc.returncode == 1 and problem in proc.stderr, proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == f"from={previous} to={target} snapshot=none"


def test_the_plan_names_the_order():
    text = plan("v1.34.3", "v1.34.4", CP, [W1, W2])
    assert text.index("etcd snapshot") < text.index("kube-apiserver") < text.index(W1) < text.index(W2), text


def two_workers() -> dict:
    cfg = base_config()
    second = dict(cfg["workers"][0], name=W2, address="192.168.226.132")
    cfg["workers"] = [cfg["workers"][0], second]
    return cfg


@pytest.fixture(scope="module")
def dev() -> RecordingMocks:
    return run_program(two_workers())


def test_the_control_plane_upgrades_first_then_one_worker_at_a_time(dev: RecordingMocks):
    gate = f"{CP}-upgrade-gate"
    for b in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"):
        assert gate in dev.depends_on(f"{CP}-bin-{b}"), b
    assert f"{CP}-bin-etcdctl" in dev.depends_on(gate)
    assert f"{CP}-bin-kube-apiserver" not in dev.depends_on(gate)
    for w in (W1, W2):
        drain = f"{w}-upgrade-drain"
        assert {f"{CP}-kube-controller-manager-restart", f"{CP}-kube-scheduler-restart"} <= dev.depends_on(drain)
        for b in ("kubelet", "kube-proxy"):
            assert drain in dev.depends_on(f"{w}-bin-{b}"), (w, b)
        assert drain not in dev.depends_on(f"{w}-bin-flanneld")
        uncordon = f"{w}-upgrade-uncordon"
        assert {f"{w}-kubelet-restart", f"{w}-kube-proxy-restart", f"{w}-ready"} <= dev.depends_on(uncordon)
    # One at a time: the second worker's drain waits for the first one's uncordon, not the reverse.
    assert f"{W1}-upgrade-uncordon" in dev.depends_on(f"{W2}-upgrade-drain")
    assert f"{W2}-upgrade-uncordon" not in dev.depends_on(f"{W1}-upgrade-drain")


def test_a_version_change_touches_only_the_upgrade_path(dev: RecordingMocks):
    cfg = two_workers()
    cfg["kubernetesVersion"] = "v1.34.5"
    new = run_program(cfg, previous_outputs={VERSION_OUTPUT: "v1.34.4"})
    cp_bins = {f"{CP}-bin-{b}" for b in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")}
    cp_restarts = {f"{CP}-{u}-restart" for u in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")}
    workers = {
        f"{w}-{s}" for w in (W1, W2) for s in ("upgrade-drain", "bin-kubelet", "bin-kube-proxy", "kubelet-restart", "kube-proxy-restart", "upgrade-uncordon")
    }
    assert set(changed(dev, new)) == {f"{CP}-upgrade-gate", *cp_bins, *cp_restarts, *workers}


def test_a_skipped_minor_version_fails_the_preview_before_any_host_step():
    cfg = base_config()
    cfg["kubernetesVersion"] = "v1.36.0"
    with pytest.raises(Exception, match="one minor version at a time"):
        run_program(cfg, preview=True, previous_outputs={VERSION_OUTPUT: "v1.34.4"})


def test_a_first_deployment_has_no_previous_version_to_check():
    cfg = base_config()
    cfg["kubernetesVersion"] = "v1.35.0"
    mocks = run_program(cfg, preview=True)
    assert f"{CP}-upgrade-gate" in mocks.resources
