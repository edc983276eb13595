"""Bad input at the edges, with the real engine through the project's own command (tools/pulumi):
a truncated state file and a wrong passphrase each fail with the engine's error plus a hint
naming the problem and the fix, and change nothing (the state file stays as it was)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tools import engine
from tools.automation import ROOT, Project, new_project, repo_stack_config

pytestmark = pytest.mark.engine

KEY = (ROOT / "tests" / "unit" / "fixtures" / "test_key").read_text()


@pytest.fixture(scope="module")
def project() -> Project:
    p = new_project({"dev": repo_stack_config("dev")})
    p.stack("dev", {"sshPrivateKey": KEY})
    return p


def tools_pulumi(project: Project, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "tools" / "pulumi"), *args], cwd=project.dir, env={**os.environ, **project.env, **env}, capture_output=True, text=True, timeout=600
    )


def state_file(project: Project) -> Path:
    backend = engine.backend_path(project.env["PULUMI_BACKEND_URL"])
    [path] = backend.glob(".pulumi/stacks/*/dev.json")
    return path


def test_a_wrong_passphrase_is_named_with_the_fix(project: Project):
    before = state_file(project).read_bytes()
    p = tools_pulumi(project, "preview", "-s", "dev", PULUMI_CONFIG_PASSPHRASE="not-the-passphrase")
    assert p.returncode != 0
    assert "incorrect passphrase" in p.stderr and "hint: wrong passphrase for stack dev: set PULUMI_CONFIG_PASSPHRASE" in p.stderr, p.stderr[-2000:]
    assert state_file(project).read_bytes() == before


def test_a_truncated_state_file_is_named_with_the_fix(project: Project):
    path = state_file(project)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 3])
    try:
        p = tools_pulumi(project, "preview", "-s", "dev")
        assert p.returncode != 0
        assert "hint: the state of stack dev cannot be read" in p.stderr and "dev.json.bak over dev.json" in p.stderr, p.stderr[-2000:]
        assert path.read_bytes() == good[: len(good) // 3]  # nothing rewrote it
    finally:
        path.write_bytes(good)
    assert tools_pulumi(project, "stack", "ls").returncode == 0


def test_the_file_backend_keeps_no_metadata_sidecars(project: Project):
    """Sidecars are rewritten in place, so a read racing a write failed with "failed to load
    checkpoint: EOF" (tools/engine.py FILE_BACKEND_QUERY): the state has none."""
    backend = engine.backend_path(project.env["PULUMI_BACKEND_URL"])
    assert state_file(project).exists()
    assert sorted(p.name for p in backend.rglob("*.attrs")) == []
