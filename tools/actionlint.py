"""Builds actionlint (the GitHub Actions workflow linter, a Go module) at the version pinned in
toolchain.toml, cached by version outside the repo, and prints the binary's path.

    python3 -m tools.actionlint          # build when missing, print the path
    python3 -m tools.actionlint --lint   # then lint .github/workflows (shellcheck on every `run:`)

Built from a wrapper module (as the cluster binaries are), so the module's own go.mod decides
its dependencies and the binary reports the pinned version (`actionlint -version`).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from .common import ROOT, ToolError, cache_dir, go_build, pins, progress, write_if_changed

MODULE = "github.com/rhysd/actionlint"


def binary_path(version: str | None = None) -> Path:
    return cache_dir() / "build" / f"actionlint-{version or pins()['lint']['actionlint']}" / "bin" / "actionlint"


def ensure() -> Path:
    version = pins()["lint"]["actionlint"]
    binary = binary_path(version)
    if binary.exists():
        progress(f"actionlint {version}: cached")
        return binary
    work = binary.parent.parent
    write_if_changed(work / "go.mod", f"module vmplatform.local/build/actionlint\n\ngo 1.24\n\nrequire {MODULE} {version}\n")
    progress(f"actionlint {version}: building from its Go module")
    go_build(work, f"{MODULE}/cmd/actionlint", binary, ldflags="-s -w", log=work / "build.log")
    return binary


def lint(binary: Path) -> int:
    """actionlint over .github/workflows with shellcheck checking every `run:` script (the
    integration is on only when actionlint finds shellcheck; here it is required)."""
    shellcheck = shutil.which("shellcheck")
    if not shellcheck:
        raise ToolError("shellcheck is missing (Debian package shellcheck; python3 -m tools.setup installs it)")
    return subprocess.call([str(binary), "-no-color", f"-shellcheck={shellcheck}", "-pyflakes="], cwd=ROOT)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lint", action="store_true", help="lint .github/workflows after building")
    args = ap.parse_args()
    try:
        binary = ensure()
        if args.lint:
            return lint(binary)
    except ToolError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(binary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
