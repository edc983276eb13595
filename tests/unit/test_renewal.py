"""Certificate renewal (issue 12 item 2) under mocks: from the last deployment's expiry dates, a
leaf certificate within pki.renewDays gets a renewal mark on its host's signing step (the PKI step
on the control plane, the signing of a worker's certificates), which changes exactly those steps
and the restarts of what reads them; the mark stays the same afterwards (one renewal, then an
empty preview); CAs only get a warning. pki-init.sh's part: RENEW reissues the named leaves with
their own keys and refuses a CA."""

from __future__ import annotations

import os
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pulumi
import pytest

from components.previous import expiring, renewal_mark
from components.remote import SCRIPTS_DIR
from tests.unit.harness import RecordingMocks, base_config, run_program
from tests.unit.test_components import changed

CP, W1 = "centos-master", "centos-minion-1"
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def at(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_certificates_within_the_window_are_listed_soonest_first():
    expiry = {CP: {"apiserver": "2026-12-20T00:00:00Z", "ca": "2036-01-01T00:00:00Z"}, W1: {"kubelet": "2026-12-05T12:00:00Z", "bad": "soon"}}
    assert [(h, n) for h, n, _, _ in expiring(expiry, 30, NOW)] == [(W1, "kubelet"), (CP, "apiserver")]
    assert expiring(expiry, 3, NOW) == [] and expiring(None, 30, NOW) == []
    assert [n for _, n, _, _ in expiring(expiry, 4.6, NOW)] == ["kubelet"]  # fractions of a day


def test_a_mark_is_new_inside_the_window_and_kept_outside_it():
    certs = {"apiserver": "2026-12-20T00:00:00Z", "admin": "2026-12-10T00:00:00Z", "registry": "2027-06-01T00:00:00Z", "ca": "2026-12-02T00:00:00Z"}
    mark = renewal_mark(None, certs, 30, NOW)
    assert mark == "admin,apiserver@2026-12-10T00:00:00Z"  # leaves only, the soonest notAfter
    renewed = {name: "2027-12-01T00:00:00Z" for name in ("apiserver", "admin", "registry")}
    assert renewal_mark(mark, renewed, 30, NOW) == mark  # after the renewal: unchanged
    assert renewal_mark(None, renewed, 30, NOW) is None and renewal_mark(None, None, 30, NOW) is None
    assert renewal_mark(mark, certs, 0, NOW) == mark  # renewDays 0: never renews
    assert renewal_mark(None, {"ca": "2026-12-02T00:00:00Z"}, 30, NOW) is None  # a CA is never renewed here


@pytest.fixture(scope="module")
def base() -> RecordingMocks:
    far = {CP: {"apiserver": at(300), "admin": at(300), "ca": at(3000)}, W1: {"kubelet": at(300)}}
    return run_program(base_config(), previous_outputs={"certificateExpiry": far})


def test_a_control_plane_certificate_near_expiry_changes_the_pki_step_and_its_readers_only(base: RecordingMocks):
    soon = {CP: {"apiserver": at(10), "admin": at(300), "ca": at(3000)}, W1: {"kubelet": at(300)}}
    renewed = run_program(base_config(), previous_outputs={"certificateExpiry": soon})
    assert "RENEW=" not in base.resources[f"{CP}-pki"].inputs["create"]
    assert f"RENEW=apiserver@{soon[CP]['apiserver']}" in renewed.resources[f"{CP}-pki"].inputs["create"]
    # Exactly what reads the renewed certificate restarts: the API server (its serving certificate).
    assert set(changed(base, renewed)) == {f"{CP}-pki", f"{CP}-kube-apiserver-restart"}, changed(base, renewed)
    every = {CP: {n: at(10) for n in ("apiserver", "etcd-server", "controller-manager", "scheduler", "admin")} | {"ca": at(3000)}, W1: {"kubelet": at(300)}}
    all_renewed = run_program(base_config(), previous_outputs={"certificateExpiry": every})
    readers = {f"{CP}-{u}-restart" for u in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")}
    assert set(changed(base, all_renewed)) == {f"{CP}-pki", f"{CP}-kubeconfig", *readers}, changed(base, all_renewed)


def test_a_worker_certificate_near_expiry_re_signs_that_worker_only(base: RecordingMocks):
    soon = {CP: {"apiserver": at(300), "admin": at(300), "ca": at(3000)}, W1: {"kubelet": at(10), "kube-proxy": at(10)}}
    renewed = run_program(base_config(), previous_outputs={"certificateExpiry": soon})
    diff = changed(base, renewed)
    assert f"{W1}-sign" in diff and "RENEW=kube-proxy,kubelet@" in renewed.resources[f"{W1}-sign"].inputs["create"]
    assert not any(name.startswith(f"{CP}-") for name in diff), diff  # the control plane's own steps stay


def test_the_last_mark_keeps_the_steps_unchanged(base: RecordingMocks):
    """The run after a renewal: the certificates are far from expiry again, and the mark the last
    deployment exported keeps the PKI step's command as the renewal left it (no second renewal)."""
    mark = f"apiserver@{at(10)}"
    after = run_program(base_config(), previous_outputs={"certificateExpiry": {CP: {"apiserver": at(365)}}, "certificateRenewals": {CP: mark}})
    again = run_program(base_config(), previous_outputs={"certificateExpiry": {CP: {"apiserver": at(365)}}, "certificateRenewals": {CP: mark}})
    assert f"RENEW={mark}" in after.resources[f"{CP}-pki"].inputs["create"]
    assert changed(after, again) == {}


def test_the_preview_says_what_it_renews_and_warns_about_a_ca(monkeypatch):
    warnings: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda msg, resource=None, *a, **k: warnings.append(msg))
    soon, ca_soon = at(10), at(20)
    run_program(base_config(), preview=True, previous_outputs={"certificateExpiry": {CP: {"apiserver": soon, "admin": at(300), "ca": ca_soon}}})
    assert len(warnings) == 1, warnings
    assert "renewing 1 certificate(s)" in warnings[0] and f"{CP} apiserver {soon}" in warnings[0] and "admin" not in warnings[0], warnings
    assert f"{CP} ca {ca_soon}" in warnings[0] and "CA rotation is manual" in warnings[0], warnings
    warnings.clear()
    cfg = base_config()
    cfg["pki"] = {**cfg.get("pki", {}), "renewDays": 5}
    run_program(cfg, preview=True, previous_outputs={"certificateExpiry": {CP: {"apiserver": soon}}})
    assert warnings == []


def _pki_init(tmp: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    for name in ("pki-init.sh", "pki-lib.sh", "lib.sh"):
        text = (SCRIPTS_DIR / name).read_text()
        (tmp / name).write_text(text)
    base = {"CP_NAME": "cp", "CP_ADDR": "10.0.0.1", "SERVICE_IP": "10.254.0.1", "CLUSTER_DOMAIN": "cluster.local", "API_PORT": "6443"}
    return subprocess.run(["bash", str(tmp / "pki-init.sh")], env={**os.environ, **base, **env}, capture_output=True, text=True)


def test_pki_init_renews_the_named_leaves_with_their_keys_and_refuses_a_ca():
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        env = {"VMP_ETC": str(tmp / "etc")}
        first = _pki_init(tmp, env)
        assert first.returncode == 0, first.stderr
        pki = tmp / "etc" / "pki"
        before = {f.name: f.read_bytes() for f in pki.iterdir()}
        again = _pki_init(tmp, {**env, "RENEW": "apiserver,admin@2027-01-01T00:00:00Z"})
        assert again.returncode == 0, again.stderr
        after = {f.name: f.read_bytes() for f in pki.iterdir()}
        differ = sorted(n for n in before if before[n] != after[n])
        assert differ == ["admin.crt", "apiserver.crt"], differ  # keys, CAs and other certificates kept
        assert "issued apiserver, admin" in again.stderr, again.stderr
        refused = _pki_init(tmp, {**env, "RENEW": "ca@2027-01-01T00:00:00Z"})
        assert refused.returncode == 1 and "CAs are rotated by hand" in refused.stderr, refused.stderr
