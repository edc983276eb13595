"""tools/etcd.py: where the snapshots are (from the mocked program's state) and what runs on the
control plane; a restore without --yes does nothing."""

from __future__ import annotations

import contextlib
import os
import shlex
import time

import pytest

from components.remote import SCRIPTS_DIR
from tests.unit.harness import base_config, run_program
from tests.unit.test_drift import SIG, Export, secret, urn
from tools import drift, etcd


def state_of_the_program(config: dict) -> dict:
    mocks = run_program(config, stack="dev")
    e = Export()
    for rec in mocks.resources.values():
        if rec.type == drift.COMMAND:
            inputs = {k: (secret(v["value"]) if isinstance(v, dict) and SIG in v else v) for k, v in rec.inputs.items()}
            e.resources.append({"urn": urn(rec.type, rec.name), "type": rec.type, "inputs": inputs})
    return e.data()


def test_the_snapshot_step_names_the_control_plane_and_the_configured_directory():
    cfg = base_config()
    cfg["etcdSnapshots"] = {"dir": "/srv/etcd-backups", "keep": 5}
    conn, env = etcd.snapshot_step(state_of_the_program(cfg))
    assert conn.host == cfg["controlPlane"]["address"] and conn.host_key == cfg["controlPlane"]["hostKey"] and conn.private_key
    assert env["DIR"] == "/srv/etcd-backups" and env["KEEP"] == "5"
    line = etcd.remote_command("restore", env, "pre-upgrade-x.db")
    words = shlex.split(line)
    assert words[-1] == f"{drift.REMOTE_LIB}/etcd-snapshot.sh" and "ACTION=restore" in words and "SNAPSHOT=pre-upgrade-x.db" in words
    assert "KIND=manual" in shlex.split(etcd.remote_command("save", env))


def test_a_state_without_the_step_is_refused_with_the_fix():
    with pytest.raises(drift.DriftError, match="run `pulumi up` first"):
        etcd.snapshot_step({"deployment": {"resources": []}})


def test_restore_needs_yes(capsys):
    assert etcd.main(["restore", "--stack", "nowhere"]) == 2
    assert "add --yes" in capsys.readouterr().err


def test_fetch_copies_the_newest_snapshot_checked_and_private(tmp_path, monkeypatch):
    """fetch() with `bash -s` in place of ssh: the host's side runs here against a directory."""
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    (snaps / "scheduled-1.db").write_bytes(b"old")
    time.sleep(0.02)
    (snaps / "manual-2.db").write_bytes(b"\x00\x01newest")
    conn = drift.Connection("10.0.0.1", 22, "root", "ssh-ed25519 AAAA", "key")
    monkeypatch.setattr(etcd, "snapshot_step", lambda state: (conn, {"DIR": str(snaps), "KEEP": "3"}))
    monkeypatch.setattr(etcd.Engine, "export", lambda self, stack, show_secrets: {})
    monkeypatch.setattr(etcd, "ssh_agent", lambda keys: contextlib.nullcontext(dict(os.environ)))
    monkeypatch.setattr(etcd.SshRunner, "argv", lambda self, c: ["bash", "-s"])
    monkeypatch.setattr(etcd, "REMOTE_LIB", str(SCRIPTS_DIR))  # the host scripts, as installed
    dest, size, _ = etcd.fetch("local", tmp_path, "latest", tmp_path / "copy.db")
    assert dest.read_bytes() == b"\x00\x01newest" and size == 8 and oct(dest.stat().st_mode & 0o777) == "0o600"
    dest, _, _ = etcd.fetch("local", tmp_path, "scheduled-1.db", tmp_path / "old.db")
    assert dest.read_bytes() == b"old"
    with pytest.raises(drift.DriftError, match="no snapshot nope.db"):
        etcd.fetch("local", tmp_path, "nope.db", tmp_path / "x.db")
