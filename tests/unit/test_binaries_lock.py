"""lab/binaries.py: one build per Kubernetes version at a time (the background build of the pin
and a `tools.lab up` beside it)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab import binaries


def test_a_version_another_process_builds_is_left_to_it_or_waited_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("VMP_CACHE", str(tmp_path))
    built: list[str] = []
    monkeypatch.setattr(binaries, "build_kubernetes", lambda v: built.append(v) or tmp_path)
    monkeypatch.setattr(binaries, "_others", lambda: {})
    monkeypatch.setattr(binaries, "_gather", lambda out, sources: None)
    lock = binaries._lock_path("v1.99.0")
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import fcntl, time; f = open({str(lock)!r}, 'a+'); fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(1.5)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    assert binaries.ensure_version("v1.99.0", wait=False) is False and built == []
    t0 = time.monotonic()
    assert binaries.ensure_version("v1.99.0") is True  # waits for the holder, then builds
    assert built == ["v1.99.0"] and time.monotonic() - t0 > 0.5
    holder.wait(timeout=10)
    assert binaries.ensure_version("v1.99.0", wait=False) is True and built == ["v1.99.0", "v1.99.0"]
