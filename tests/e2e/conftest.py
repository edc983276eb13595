"""The local lab, the `local` stack and a deployed cluster, shared by the e2e tests.

`python3 -m tools.lab up` boots the lab hosts (systemd in network namespaces, reachable over
SSH); the tests then run the real engine's `up` of the local stack against them. The lab is
taken down at the end unless VMP_KEEP_LAB=1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.engine_harness import ROOT, Project, new_project

pytestmark = pytest.mark.lab


@dataclass
class Lab:
    config: dict
    key_path: Path
    hosts: dict[str, str]  # name -> address

    def ssh(self, host: str, command: str, check: bool = True, timeout: int = 60) -> subprocess.CompletedProcess[str]:
        from tools import lab

        return subprocess.run([*lab.ssh_command(host), command], capture_output=True, text=True, check=check, timeout=timeout)


def _lab(action: str) -> None:
    subprocess.run([sys.executable, "-m", "tools.lab", action], cwd=ROOT, check=True)


@pytest.fixture(scope="session")
def lab() -> Lab:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces, systemd-nspawn)")
    t0 = time.monotonic()
    _lab("up")
    print(f"\n[e2e] lab up: {time.monotonic() - t0:.1f} s")
    from tools import lab as labtool

    cfg, key = labtool.stack_config()
    hosts = {cfg["vm-platform:controlPlane"]["name"]: cfg["vm-platform:controlPlane"]["address"]}
    hosts.update({w["name"]: w["address"] for w in cfg["vm-platform:workers"]})
    yield Lab(cfg, Path(key), hosts)
    if os.environ.get("VMP_KEEP_LAB") != "1":
        _lab("down")


@pytest.fixture(scope="session")
def local(lab: Lab) -> tuple[Project, object]:
    project = new_project({"local": {"config": lab.config}})
    stack = project.stack("local", {"sshPrivateKey": lab.key_path.read_text()})
    yield project, stack
    if os.environ.get("VMP_KEEP_LAB") != "1":
        try:
            stack.destroy(color="never")
        except Exception as e:  # the lab goes down next anyway; report, don't mask the test result
            print(f"[e2e] final destroy failed: {e}")
