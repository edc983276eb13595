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
from pathlib import Path

from .common import ToolError, progress

# Debian packages: lab hosts (debootstrap, nspawn, netns, ssh), image tooling (skopeo, maven).
# shellcheck: tools/test lints every host script and, through actionlint, every workflow's `run:`.
# postgresql-15: the shared-backend tests start a private cluster of their own (never a system one).
DEBIAN_PACKAGES = [
    "debootstrap", "systemd-container", "iproute2", "openssh-client", "skopeo", "maven", "curl", "ca-certificates", "shellcheck", "postgresql-15",
]  # fmt: skip
# Debian's postgresql packages create and start a system-wide cluster on install unless told not to.
NO_MAIN_CLUSTER = Path("/etc/postgresql-common/createcluster.d/vm-platform.conf")


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
    if any(p.startswith("postgresql") for p in missing) and not NO_MAIN_CLUSTER.exists():
        NO_MAIN_CLUSTER.parent.mkdir(parents=True, exist_ok=True)
        NO_MAIN_CLUSTER.write_text("# vm-platform: its tests run private clusters; no system-wide one on install\ncreate_main_cluster = false\n")
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
