"""tools/hints.py: the engine's common errors get their fix; everything passes through."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from tools import hints
from tools.common import ROOT


@pytest.mark.parametrize(
    ("error", "says"),
    [
        ("error: failed to load checkpoint: place 1: unexpected end of JSON input", "local.json.bak over local.json"),
        ("error: incorrect passphrase", "PULUMI_CONFIG_PASSPHRASE"),
        ("error: the stack is currently locked by 1 lock(s).", "pulumi cancel --yes -s local"),
        ("error: ssh: connect: dial tcp 10.78.0.11:22: connect: connection refused", "SSH port (ssh.port)"),
        ("error: ssh: handshake failed: knownhosts: key mismatch", "set its hostKey"),
    ],
)
def test_each_known_error_gets_its_fix(error, says):
    got = hints.explain(error, "local", "/state")
    assert len(got) == 1 and says in got[0], got


def test_an_unknown_error_gets_nothing():
    assert hints.explain("error: something else entirely") == []


def test_the_filter_passes_stderr_through_then_adds_the_hints(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("Previewing update (dev):\nerror: incorrect passphrase\n"))
    assert hints.main(["preview", "-s", "dev"], {}) == 0
    out = capsys.readouterr().out
    assert out.startswith("Previewing update (dev):\nerror: incorrect passphrase\nhint: wrong passphrase for stack dev:"), out


def test_tools_pulumi_adds_the_hint_and_keeps_the_exit_code(tmp_path):
    """The wrapper with a fake engine on PATH (tools.engine --env is replaced by a stub)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text("#!/bin/sh\necho 'error: incorrect passphrase' >&2\nexit 3\n")
    (bin_dir / "pulumi").chmod(0o755)
    wrapper = (
        (ROOT / "tools" / "pulumi").read_text().replace('eval "$(cd "$root" && python3 -m tools.engine --env 2>/dev/null)" ||', f"PATH={bin_dir}:$PATH ||")
    )
    (tmp_path / "pulumi-wrapper").write_text(wrapper.replace('root=$(cd "$(dirname "$0")/.." && pwd)', f"root={ROOT}"))
    p = subprocess.run(["bash", str(tmp_path / "pulumi-wrapper"), "up", "-s", "prod"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 3, p
    assert "error: incorrect passphrase" in p.stderr and "hint: wrong passphrase for stack prod" in p.stderr, p.stderr
