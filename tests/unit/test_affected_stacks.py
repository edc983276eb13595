"""Which stacks a change affects (tools/affected_stacks.py): what the PR workflow previews."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tools.affected_stacks import affected
from tools.common import ROOT


@pytest.mark.parametrize(
    ("paths", "stacks"),
    [
        (["Pulumi.dev.yaml"], ["dev"]),
        (["policy/config/prod.json"], ["prod"]),
        (["Pulumi.prod.yaml", "policy/config/dev.json"], ["dev", "prod"]),
        (["components/worker.py"], ["dev", "prod"]),
        (["components/scripts/restart-service.sh", "Pulumi.dev.yaml"], ["dev", "prod"]),
        (["policy/rules/hosts.py"], ["dev", "prod"]),
        (["__main__.py"], ["dev", "prod"]),
        (["toolchain.toml"], ["dev", "prod"]),
        (["plugins/commandprovider/main.go"], ["dev", "prod"]),
        (["tools/pr_preview.py"], ["dev", "prod"]),
        (["a-new-top-level-file.toml"], ["dev", "prod"]),
        (["README.md", "policy/README.md", "tests/unit/test_steps.py", "lab/hosts.py", "tools/lab.py", ".ci/run"], []),
        (["Pulumi.local.yaml", "policy/config/local.json"], []),
        ([], []),
    ],
)
def test_affected(paths, stacks):
    assert affected(paths) == stacks


def test_cli_prints_every_stack_when_the_base_is_unknown():
    r = subprocess.run([sys.executable, "-m", "tools.affected_stacks", "--base", "0" * 40], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and json.loads(r.stdout) == ["dev", "prod"] and "every stack" in r.stderr


def test_cli_diffs_against_the_base(tmp_path):
    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    (tmp_path / "Pulumi.dev.yaml").write_text("a\n")
    git("add", ".")
    git("commit", "-qm", "base")
    git("checkout", "-qb", "change")
    (tmp_path / "Pulumi.dev.yaml").write_text("b\n")
    (tmp_path / "README.md").write_text("docs\n")
    git("add", ".")
    git("commit", "-qm", "change")
    r = subprocess.run(
        [sys.executable, "-m", "tools.affected_stacks", "--base", "main"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == ["dev"]
