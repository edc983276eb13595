"""The file backend URL the tools give the engine (tools/engine.py): no metadata sidecars, so a
read of the stack's state racing the engine's write of it cannot see a half-written sidecar."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from tools import engine, hints
from tools.common import ToolError


def test_a_state_directory_becomes_a_file_backend_without_sidecars():
    assert engine.file_backend(Path("/var/state")) == "file:///var/state?metadata=skip"
    assert engine.backend_path(engine.file_backend(Path("/var/state"))) == Path("/var/state")


@pytest.mark.parametrize(
    ("given", "passed"),
    [
        ("file:///srv/state", "file:///srv/state?metadata=skip"),
        ("file:///srv/state?no_tmp_dir=true", "file:///srv/state?no_tmp_dir=true&metadata=skip"),
        ("file:///srv/state?metadata=write", "file:///srv/state?metadata=write"),  # the user's choice stands
        ("postgres://u@db:5432/state?sslmode=verify-full", "postgres://u@db:5432/state?sslmode=verify-full"),
        ("", ""),
    ],
)
def test_a_users_backend_url_gets_metadata_skip_only_when_it_is_a_file_backend_without_it(given, passed):
    assert engine.backend_url(given) == passed


def test_env_uses_the_users_backend_or_the_cache(monkeypatch):
    monkeypatch.setenv("PULUMI_BACKEND_URL", "file:///team/state")
    assert engine.env(Path("/bin"))["PULUMI_BACKEND_URL"] == "file:///team/state?metadata=skip"
    monkeypatch.delenv("PULUMI_BACKEND_URL")
    assert engine.env(Path("/bin"))["PULUMI_BACKEND_URL"] == engine.file_backend(engine.backend_dir())


def test_backend_path_refuses_a_url_that_is_not_a_file_backend():
    with pytest.raises(ToolError, match="postgres://... is not a file backend"):
        engine.backend_path("postgres://u:pw@db/state")


def test_the_hint_names_the_state_directory_without_the_query(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("error: could not deserialize deployment: unexpected end of JSON input\n"))
    hints.main(["preview", "-s", "dev"], {"PULUMI_BACKEND_URL": "file:///srv/state?metadata=skip"})
    out = capsys.readouterr().out
    assert "copy /srv/state/.pulumi/stacks/<project>/dev.json.bak" in out, out
