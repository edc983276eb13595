"""The shared state backend: the pinned CLI's DIY backend on a real PostgreSQL (Debian's
postgresql 15, a private cluster on loopback started for this module).

- dev's state, created by one checkout (a state made from dev's own preview, imported; dev is
  never deployed from here), is what a second checkout's preview diffs against; a change one
  checkout makes to it (the drift repair's mark on a step) is the diff the other sees, as an
  in-place update of that step, not a replacement;
- the lock: while one `up` of a stack runs, a second `up` of it, and a `stack import` (what the
  drift repair uses), are refused with the engine's message naming `pulumi cancel`, and change
  nothing; once the first ends, its result is the state.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.postgres import LOCKED, Postgres, serve
from tests.integration.previewed_state import preview_states, previewed_state
from tools import drift
from tools.automation import ROOT, Project, copy_project, engine_env, repo_stack_config, throwaway_ssh_key

pytestmark = pytest.mark.engine

KEEP = ("centos-minion-1-kubelet-config", "centos-minion-1-scripts-bundle")


@pytest.fixture(scope="module")
def pg() -> Iterator[Postgres]:
    yield from serve("shared-backend")


_MADE: list[Path] = []


@pytest.fixture(scope="module", autouse=True)
def _remove_checkouts() -> Iterator[None]:
    yield
    for d in _MADE:
        shutil.rmtree(d, ignore_errors=True)


def checkout(pg: Postgres, like: Project | None = None) -> Project:
    """A checkout of the project whose backend is the PostgreSQL server (a second checkout gets the
    first's stack file: the team commits Pulumi.dev.yaml with its encryptionsalt)."""
    tmp = Path(tempfile.mkdtemp(prefix="vmp-checkout-"))
    _MADE.append(tmp)
    engine_dir, env = engine_env(tmp / "unused-file-backend")
    project = Project(copy_project(tmp / "project", {} if like else {"dev": repo_stack_config("dev")}), engine_dir, {**env, "PULUMI_BACKEND_URL": pg.url})
    if like:
        shutil.copy2(like.dir / "Pulumi.dev.yaml", project.dir / "Pulumi.dev.yaml")
    return project


def ops(project: Project, stack_name: str = "dev") -> dict[str, tuple[str, list[str]]]:
    res = project.preview(project.stack(stack_name))
    assert not res.error, res.error
    return {s["name"]: (s["op"], s["diffs"]) for s in res.steps if s["name"] in KEEP}


def test_dev_state_in_postgres_is_what_a_second_checkout_diffs_against(pg: Postgres):
    a = checkout(pg)
    stack_a = a.stack("dev", {"sshPrivateKey": throwaway_ssh_key()})
    states = preview_states(stack_a)  # the first preview: nothing in the state yet
    t0 = time.monotonic()
    assert ops(a) == {name: ("create", []) for name in KEEP}
    preview_s = time.monotonic() - t0

    minion = next(w for w in repo_stack_config("dev")["config"]["vm-platform:workers"] if w["name"] == "centos-minion-1")
    key = a.pulumi("config", "get", "sshPrivateKey", "-s", "dev").stdout.rstrip("\n")
    conn = {"host": minion["address"], "port": 22, "user": "root", "privateKey": key, "hostKey": minion["hostKey"], "dialErrorLimit": 10, "perDialTimeout": 15}
    base = json.loads(a.pulumi("stack", "export", "-s", "dev").stdout)
    engine_a = drift.Engine(a.dir, a.env)
    engine_a.import_("dev", previewed_state(states, lambda urn: urn.endswith(KEEP), {"connection": conn}, base))

    b = checkout(pg, like=a)
    assert ops(b) == {name: ("same", []) for name in KEEP}, "the second checkout does not diff against the first's state"

    # The drift repair's mark, made through the first checkout, is the second's diff: an update.
    state = engine_a.export("dev", show_secrets=False)
    kubelet = next(r["urn"] for r in state["deployment"]["resources"] if r["urn"].endswith(KEEP[0]))
    assert "plaintext" not in json.dumps(state)  # exported encrypted, imported encrypted
    engine_a.import_("dev", drift.nudged(state, {kubelet})[0])
    assert ops(b) == {KEEP[0]: ("update", ["create"]), KEEP[1]: ("same", [])}

    rows = pg.psql("SELECT key FROM pulumi_state ORDER BY key;").split()
    assert any(k.endswith(".pulumi/stacks/vm-platform/dev.json") for k in rows), rows
    stored = pg.psql("SELECT data::text FROM pulumi_state;")
    assert key.splitlines()[1] not in stored, "the SSH private key is stored in plaintext"
    print(f"[shared-backend] dev preview against PostgreSQL: {preview_s:.1f} s; state rows: {len(rows)}")


PROBE_PROGRAM = """\
import os, pathlib, time
import pulumi

# Holds the update (and with it the stack's lock) until the test opens the gate.
if not pulumi.runtime.is_dry_run():
    pathlib.Path(os.environ["VMP_PROBE_STARTED"]).touch()
    t0 = time.monotonic()
    while not pathlib.Path(os.environ["VMP_PROBE_GATE"]).exists() and time.monotonic() - t0 < 120:
        time.sleep(0.1)
pulumi.export("value", os.environ["VMP_PROBE_VALUE"])
"""


def test_a_second_concurrent_update_is_refused_and_changes_nothing(pg: Postgres, tmp_path: Path):
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "Pulumi.yaml").write_text(f"name: vmp-lock-probe\nruntime:\n  name: python\n  options:\n    virtualenv: {ROOT / 'venv'}\n")
    (probe / "__main__.py").write_text(PROBE_PROGRAM)
    engine_dir, env = engine_env(tmp_path / "unused")
    env = {**os.environ, **env, "PULUMI_BACKEND_URL": pg.url, "VMP_PROBE_STARTED": str(tmp_path / "started"), "VMP_PROBE_GATE": str(tmp_path / "gate")}
    pulumi = str(engine_dir / "pulumi")

    def run(*args: str, value: str = "", input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([pulumi, *args], cwd=probe, env={**env, "VMP_PROBE_VALUE": value}, input=input, capture_output=True, text=True, timeout=300)

    def value() -> str:
        return json.loads(run("stack", "output", "--json", "-s", "probe").stdout)["value"]

    assert run("stack", "init", "probe").returncode == 0
    (tmp_path / "gate").touch()
    assert run("up", "--yes", "-s", "probe", value="first").returncode == 0
    assert value() == "first"
    before = json.loads(run("stack", "export", "-s", "probe").stdout)["deployment"]["resources"]
    (tmp_path / "gate").unlink()
    (tmp_path / "started").unlink()

    holder = subprocess.Popen(
        [pulumi, "up", "--yes", "-s", "probe"], cwd=probe, env={**env, "VMP_PROBE_VALUE": "holder"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        t0 = time.monotonic()
        while not (tmp_path / "started").exists():
            assert holder.poll() is None, holder.communicate()
            assert time.monotonic() - t0 < 120, "the first update never started"
            time.sleep(0.1)
        t1 = time.monotonic()
        second = run("up", "--yes", "-s", "probe", value="second")
        refused_s = time.monotonic() - t1
        imported = run("stack", "import", "-s", "probe", input=json.dumps({"version": 3, "deployment": {"resources": before}}))
        assert holder.poll() is None, f"the first update ended before the second was tried: nothing proven {holder.communicate()}"
        assert second.returncode != 0 and LOCKED in second.stderr and "pulumi cancel" in second.stderr, second.stderr
        assert imported.returncode != 0 and LOCKED in imported.stderr, imported.stderr
        assert value() == "first", "the refused update changed the state"
        assert json.loads(run("stack", "export", "-s", "probe").stdout)["deployment"]["resources"] == before
    finally:
        (tmp_path / "gate").touch()
        out, err = holder.communicate(timeout=300)
    assert holder.returncode == 0, out + err
    assert value() == "holder"
    assert run("up", "--yes", "-s", "probe", value="after").returncode == 0 and value() == "after"  # the lock is gone with its update
    message = second.stderr.strip().splitlines()
    print(f"[shared-backend] second update refused in {refused_s:.1f} s: {message[0] if message else ''}")
