"""Stack configs to vary, and the problems a variation produces."""

from __future__ import annotations

import functools
import shlex
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.settings import ConfigError, Secret, parse_settings
from tests.unit.harness import ROOT, TEST_KEY


@functools.cache
def an_archive() -> str:
    """A file where an OCI archive is expected: settings only check that it exists."""
    path = Path(tempfile.mkdtemp(prefix="vmp-settings-")) / "image.oci.tar"
    path.write_bytes(b"")
    return str(path)


def stack_raw(stack: str) -> dict[str, Any]:
    with open(ROOT / f"Pulumi.{stack}.yaml") as f:
        raw = {k.split(":", 1)[1]: v for k, v in yaml.safe_load(f)["config"].items()}
    raw["sshPrivateKey"] = Secret(TEST_KEY)
    for img in raw["registry"]["images"]:
        img["archive"] = an_archive()
    if raw.get("registry", {}).get("auth"):
        raw["registryPassword"] = Secret("s3cret-for-tests")
    return raw


def problems_for(mutate: Callable[[dict[str, Any]], Any], stack: str = "dev") -> list[Any]:
    raw = stack_raw(stack)
    mutate(raw)
    with pytest.raises(ConfigError) as e:
        parse_settings(raw, stack)
    return e.value.problems


def errors_for(mutate: Callable[[dict[str, Any]], Any], stack: str = "dev") -> list[str]:
    return [str(p) for p in problems_for(mutate, stack)]


def setp(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(raw: dict[str, Any]) -> None:
        node = raw
        parts = path.split(".")
        for p in parts[:-1]:
            node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
        if isinstance(node, list):
            node[int(parts[-1])] = value
        else:
            node[parts[-1]] = value

    return mutate


def delp(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(raw: dict[str, Any]) -> None:
        node = raw
        parts = path.split(".")
        for p in parts[:-1]:
            node = node[int(p)] if isinstance(node, list) else node[p]
        del node[parts[-1]]

    return mutate


def _typed(text: str) -> Any:
    """A value as `pulumi config set --path` stores it (true/false and integers are typed)."""
    if text in ("true", "false"):
        return text == "true"
    return int(text) if text.lstrip("-").isdigit() else text


def _tokens(path: str) -> list[str | int]:
    out: list[str | int] = []
    for part in path.replace("[", ".[").split("."):
        if part:
            out.append(int(part[1:-1]) if part.startswith("[") else part)
    return out


def run_fix(raw: dict[str, Any], fix: str) -> dict[str, Any]:
    """Apply a printed fix (`pulumi config set/rm --path ...` joined by &&) to raw, as pulumi would.

    Fails the test when the fix leaves a value to the operator or prompts for a secret."""
    for command in fix.split(" && "):
        words = shlex.split(command)
        assert words[:2] == ["pulumi", "config"] and "<value>" not in command and "--secret" not in words, command
        op, args = words[2], [w for w in words[3:] if w != "--path"]
        path = _tokens(args[0])
        node: Any = raw
        for part, nxt in zip(path, path[1:], strict=False):
            exists = (isinstance(node, list) and isinstance(part, int) and part < len(node)) or (isinstance(node, dict) and part in node)
            if not exists or not isinstance(node[part], dict | list):
                child: Any = [] if isinstance(nxt, int) else {}
                if isinstance(node, list) and isinstance(part, int) and part == len(node):
                    node.append(child)
                else:
                    node[part] = child
            node = node[part]
        last = path[-1]
        if op == "rm":
            del node[last]
        elif isinstance(node, list) and isinstance(last, int) and last == len(node):
            node.append(_typed(args[1]))
        else:
            node[last] = _typed(args[1])
    return raw
