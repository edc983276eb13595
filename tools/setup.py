"""Installs everything the project needs on a fresh machine, idempotently, with caches outside
the repo so the second run takes seconds: Debian packages, the Python virtualenvs, the Pulumi
engine and plugins, the workflow linter (actionlint), the lab's cluster binaries and the
platform's images.

After the Debian packages, two lanes run side by side: (1) the virtualenvs, the engine, its
plugins and actionlint; (2) the cluster binaries and the images. Neither needs the other's
output. Each is a chain of downloads (CPU idle) and Go or Maven builds (both cores); beside each
other, one lane's downloads and single-threaded links overlap the other's compiles.

    python3 -m tools.setup                       # everything, the main job's way
    python3 -m tools.setup --pin-in-background   # tools/test: the pinned Kubernetes is built after
                                                 # setup returns, at nice 19 (lab/binaries.py ensure)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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


def run_lanes(lanes: dict[str, list[Callable[[], object]]]) -> list[str]:
    """Runs each lane's steps in order, the lanes side by side; returns one error line per lane
    that failed (a failed lane stops; the others run to their end)."""

    def lane(name: str, steps: list[Callable[[], object]]) -> str | None:
        t0 = time.monotonic()
        try:
            for step in steps:
                step()
        except (ToolError, subprocess.CalledProcessError) as e:
            return f"{name}: {e}"
        progress(f"setup: lane '{name}' done in {time.monotonic() - t0:.0f} s")
        return None

    with ThreadPoolExecutor(max_workers=len(lanes)) as pool:
        futures = [pool.submit(lane, name, steps) for name, steps in lanes.items()]
        return [err for f in futures if (err := f.result())]


def main(argv: list[str]) -> int:
    from images import build as images
    from lab import binaries

    from . import actionlint, engine

    try:
        ensure_debian_packages()
    except (ToolError, subprocess.CalledProcessError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    unknown = [a for a in argv if a != "--pin-in-background"]
    if unknown:
        print(f"error: unknown argument(s) {' '.join(unknown)} (expected: --pin-in-background)", file=sys.stderr)
        return 2
    background = "--pin-in-background" in argv
    # The pin's background build starts once both lanes are done, so it never slows the setup.
    errors = run_lanes({"engine": [engine.ensure, actionlint.ensure], "binaries and images": [lambda: binaries.ensure(pin_deferred=background), images.ensure]})
    if background and not errors:
        try:
            binaries.start_background(binaries.versions()[1])
        except ToolError as e:
            errors.append(str(e))
    for err in errors:
        print(f"error: {err}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
