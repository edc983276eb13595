"""Which provider plugins setup installs: the official release when it can be had, the project's
builds only when not, printed either way (tools/engine.py ensure_plugins)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import engine
from tools.common import pins

COMMAND = pins()["plugins"]["command"]
KUBERNETES = pins()["plugins"]["kubernetes"]
HASH = engine.source_hash(engine.ROOT / COMMAND["source"])


@pytest.mark.parametrize(
    ("spec", "stamp", "installed", "choice", "expected"),
    [
        (COMMAND, None, False, "", "official"),  # a fresh machine: try the official release first
        (KUBERNETES, None, False, "", "official"),
        (COMMAND, engine.OFFICIAL, True, "", "keep"),
        (COMMAND, HASH, True, "", "keep"),  # the stand-in, current: no probe on every run
        (KUBERNETES, None, True, "", "keep"),  # installed by an older setup (no stamp): its module build
        (COMMAND, "0ld", True, "", "build"),  # the stand-in's source changed
        (COMMAND, HASH, True, "official", "official"),  # internet now: ask for the official one
        (COMMAND, engine.OFFICIAL, True, "official", "keep"),
        (COMMAND, engine.OFFICIAL, True, "build", "build"),
        (COMMAND, None, False, "build", "build"),
    ],
)
def test_the_choice(spec, stamp, installed, choice, expected):
    assert engine.plugin_source(spec, stamp, installed, choice) == expected


@pytest.fixture
def fake(monkeypatch, tmp_path: Path):
    calls: dict[str, list] = {"official": [], "built": [], "installed": [], "said": []}
    monkeypatch.setattr(engine, "cache_dir", lambda: tmp_path)
    monkeypatch.setattr(engine, "_installed_plugins", lambda e: set())
    monkeypatch.setattr(engine, "progress", lambda m: calls["said"].append(m))
    monkeypatch.setattr(engine, "run", lambda cmd, env=None: calls["installed"].append(cmd))
    for name in ("_build_kubernetes_provider", "_build_command_provider"):
        monkeypatch.setattr(engine, name, lambda spec, n=name: calls["built"].append(n) or tmp_path / "bin")
    monkeypatch.delenv(engine.PLUGIN_CHOICE, raising=False)
    return calls


def test_offline_both_are_built_and_it_says_so(fake, monkeypatch):
    monkeypatch.setattr(engine, "_official_plugin", lambda n, v, e: fake["official"].append(n) or False)
    engine.ensure_plugins(Path("/nowhere"))
    assert sorted(fake["official"]) == ["command", "kubernetes"] and len(fake["built"]) == 2
    said = "\n".join(fake["said"])
    assert "command 1.2.1: the official release cannot be had here; using the project's stand-in (plugins/commandprovider)" in said, said
    # the next run keeps them, without trying the official releases again
    monkeypatch.setattr(engine, "_installed_plugins", lambda e: {("command", COMMAND["version"]), ("kubernetes", KUBERNETES["version"])})
    fake["official"].clear()
    engine.ensure_plugins(Path("/nowhere"))
    assert fake["official"] == [] and "installed (the project's stand-in" in fake["said"][-2] + fake["said"][-1]


def test_online_the_official_releases_are_installed_and_nothing_is_built(fake, monkeypatch):
    monkeypatch.setattr(engine, "_official_plugin", lambda n, v, e: fake["official"].append(n) or True)
    engine.ensure_plugins(Path("/nowhere"))
    assert fake["built"] == [] and fake["installed"] == [] and sorted(fake["official"]) == ["command", "kubernetes"]
    assert any("command 1.2.1 installed: the official release" in m for m in fake["said"])
