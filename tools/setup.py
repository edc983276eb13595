"""Installs everything the project needs on a fresh machine, idempotently, with caches outside
the repo so the second run takes seconds: Debian packages, the Python virtualenvs, the Pulumi
engine and plugins, the workflow linter (actionlint), the lab's cluster binaries and the
platform's images.

    python3 -m tools.setup
"""

from __future__ import annotations

import shutil
import subprocess
import sys

from .common import ToolError, progress

# Debian packages: lab hosts (debootstrap, nspawn, netns, ssh), image tooling (skopeo, maven).
# shellcheck: tools/test lints every host script and, through actionlint, every workflow's `run:`.
DEBIAN_PACKAGES = ["debootstrap", "systemd-container", "iproute2", "openssh-client", "skopeo", "maven", "curl", "ca-certificates", "shellcheck"]


def ensure_debian_packages() -> None:
    missing = [
        p for p in DEBIAN_PACKAGES if subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True).stdout != "install ok installed"
    ]
    if not missing:
        progress("debian packages: present")
        return
    if not shutil.which("apt-get"):
        raise ToolError(f"missing packages {missing} and no apt-get to install them")
    progress(f"debian packages: installing {' '.join(missing)}")
    subprocess.run(["apt-get", "update", "-q"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
        check=True,
        stdout=subprocess.DEVNULL,
        env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )


def main() -> int:
    from images import build as images
    from lab import binaries

    from . import actionlint, engine

    try:
        ensure_debian_packages()
        engine.ensure()
        actionlint.ensure()
        binaries.ensure()
        images.ensure()
    except (ToolError, subprocess.CalledProcessError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
