"""Runs the real Pulumi engine on the project through the Automation API: the harness that the
benchmark, the PR preview and the engine and lab test suites share.

The project is copied to a temporary directory (its virtualenv path made absolute) so tests set
stack config and secrets without touching the repository's stack files. Each test session has
its own file backend and its own throwaway passphrase.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pulumi import automation as auto

from . import engine
from .common import ROOT, progress

# What the program needs: itself, and the pack's image-reference grammar it shares
# (components/settings reads references as the pack does).
PROJECT_FILES = ("Pulumi.yaml", "__main__.py", "components", "policy/rules/__init__.py", "policy/rules/imageref.py", "toolchain.toml")
TEST_PASSPHRASE = "throwaway-test-passphrase"


def engine_env(backend: Path) -> tuple[Path, dict[str, str]]:
    engine_dir = engine.ensure()
    env = {**engine.env(engine_dir), "PULUMI_BACKEND_URL": engine.file_backend(backend), "PULUMI_CONFIG_PASSPHRASE": TEST_PASSPHRASE}
    return engine_dir, env


def copy_project(dest: Path, stack_files: dict[str, dict[str, Any]]) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    text = (dest / "Pulumi.yaml").read_text()
    (dest / "Pulumi.yaml").write_text(re.sub(r"virtualenv: venv\b", f"virtualenv: {ROOT / 'venv'}", text))
    for stack, cfg in stack_files.items():
        (dest / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return dest


def throwaway_ssh_key() -> str:
    """A fresh ed25519 private key for previews, which never connect to the hosts."""
    with tempfile.TemporaryDirectory(prefix="vmp-key-") as d:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "throwaway-preview", "-f", f"{d}/key"], check=True)
        return Path(d, "key").read_text()


def repo_stack_config(stack: str) -> dict[str, Any]:
    with open(ROOT / f"Pulumi.{stack}.yaml") as f:
        return yaml.safe_load(f)


@dataclass
class PreviewResult:
    steps: list[dict[str, Any]] = field(default_factory=list)
    policy: list[dict[str, Any]] = field(default_factory=list)
    stdout: str = ""
    error: str = ""
    diagnostics: list[str] = field(default_factory=list)  # "info: ..." / "warning: ...": the program's and providers' messages
    program_said: list[str] = field(default_factory=list)  # those of the program's own components (vm-platform:*)

    def detailed(self, name: str) -> list[str]:
        """The property paths a resource's step changes (the provider's detailed diff)."""
        return sorted({p for s in self.steps if s["name"] == name for p in s["detailed"]})

    def ops(self) -> Counter:
        return Counter(s["op"] for s in self.steps)

    def types(self, op: str | None = None) -> Counter:
        return Counter(s["type"] for s in self.steps if op is None or s["op"] == op)

    def changed(self) -> dict[str, tuple[str, list[str]]]:
        """urn name -> (op, diff keys) for every resource that is not 'same'. A replacement shows
        as several steps (create-replacement, replace, delete-replaced): reported as 'replace'."""
        out: dict[str, tuple[str, list[str]]] = {}
        for s in self.steps:
            if s["op"] in ("same", "read"):
                continue
            op = "replace" if s["op"] in ("create-replacement", "replace", "delete-replaced") else s["op"]
            prev_diffs = out.get(s["name"], (op, []))[1]
            out[s["name"]] = (op, sorted(set(prev_diffs) | set(s.get("diffs") or [])))
        return out


class Project:
    """A project directory with one engine environment; stacks are created on demand."""

    def __init__(self, directory: Path, engine_dir: Path, env: dict[str, str]) -> None:
        self.dir = directory
        self.engine_dir = engine_dir
        self.env = env
        self.command = auto.PulumiCommand(root=str(engine_dir.parent), skip_version_check=True)

    @classmethod
    def checkout(cls) -> Project:
        """The repository itself with the team's settings (backend and passphrase from the
        environment, as `tools/pulumi` uses them), for previews of the real stacks."""
        engine_dir = engine.ensure()
        passphrase = {k: v for k, v in os.environ.items() if k.startswith("PULUMI_CONFIG_PASSPHRASE")}
        return cls(ROOT, engine_dir, {**engine.env(engine_dir), **passphrase})

    def workspace_opts(self) -> auto.LocalWorkspaceOptions:
        return auto.LocalWorkspaceOptions(work_dir=str(self.dir), env_vars=self.env, pulumi_command=self.command)

    def stack(self, name: str, secrets: dict[str, str] | None = None) -> auto.Stack:
        st = auto.create_or_select_stack(name, work_dir=str(self.dir), opts=self.workspace_opts())
        for k, v in (secrets or {}).items():
            self.set_secret(st, k, v)
        return st

    def set_secret(self, stack: auto.Stack, key: str, value: str, path: bool = False) -> None:
        """`pulumi config set --secret` with the value on stdin: never on a command line, where
        the host's process list would show it (the Automation API's set_config passes it as an
        argument)."""
        args = ["config", "set", "--secret", *(["--path"] if path else []), "-s", stack.name, key]
        subprocess.run(
            [str(self.engine_dir / "pulumi"), *args], input=value, cwd=self.dir, env={**os.environ, **self.env}, capture_output=True, text=True, check=True
        )

    def set_path(self, stack: auto.Stack, path: str, value: Any) -> None:
        """`pulumi config set --path` (the command the README shows)."""
        args = ["config", "set", "--path", "-s", stack.name, path, str(value)]
        self.pulumi(*args)

    def pulumi(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.engine_dir / "pulumi"), *args], cwd=self.dir, env={**os.environ, **self.env}, capture_output=True, text=True, check=check
        )

    def preview(self, stack: auto.Stack, **kwargs: Any) -> PreviewResult:
        res = PreviewResult()

        def on_event(ev: auto.EngineEvent) -> None:
            if ev.resource_pre_event:
                md = ev.resource_pre_event.metadata
                create = (md.new.inputs or {}).get("create") if md.new else None
                res.steps.append({
                    "op": str(md.op.value if hasattr(md.op, "value") else md.op), "type": md.type, "name": md.urn.split("::")[-1],
                    "diffs": md.diffs or [], "detailed": sorted((md.detailed_diff or {}).keys()), "urn": md.urn,
                    # a command's create line when it is plain text (a secret one is an encrypted object)
                    "create": create if isinstance(create, str) else "",
                })  # fmt: skip
            d = ev.diagnostic_event
            if d and d.severity in ("info", "warning"):
                said = f"{d.severity}: {d.message.strip()}"
                res.diagnostics.append(said)
                parts = (d.urn or "").split("::")
                if len(parts) >= 4 and parts[2].split("$")[-1].startswith("vm-platform:"):
                    res.program_said.append(said)
            if ev.policy_event:
                pe = ev.policy_event
                res.policy.append({
                    "policy": pe.policy_name, "level": pe.enforcement_level, "message": pe.message, "urn": pe.resource_urn, "pack": pe.policy_pack_name,
                })  # fmt: skip

        try:
            out = stack.preview(on_event=on_event, diff=True, color="never", **kwargs)
            res.stdout = out.stdout
        except auto.CommandError as e:
            res.error = str(e)
        return res


def new_project(stack_files: dict[str, dict[str, Any]]) -> Project:
    tmp = Path(tempfile.mkdtemp(prefix="vmp-engine-"))
    if os.environ.get("VMP_KEEP") == "1":  # a throwaway project and its state, removed at exit unless kept
        progress(f"kept: {tmp}")
    else:
        atexit.register(shutil.rmtree, tmp, True)
    backend = tmp / "state"
    backend.mkdir()
    engine_dir, env = engine_env(backend)
    return Project(copy_project(tmp / "project", stack_files), engine_dir, env)
