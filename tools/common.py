"""Helpers shared by the tools, the lab and the image builds: pins, the cache directory, progress
output, commands, Go builds, and running an entry point inside the project's virtualenv."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / "venv" / "bin" / "python"


def pins() -> dict:
    with open(ROOT / "toolchain.toml", "rb") as f:
        return tomllib.load(f)


def cache_dir() -> Path:
    """Caches live outside the repo, keyed by version inside; VMP_CACHE overrides the place."""
    d = Path(os.environ.get("VMP_CACHE", Path.home() / ".cache" / "vm-platform"))
    d.mkdir(parents=True, exist_ok=True)
    return d


_T0 = time.monotonic()


def progress(msg: str) -> None:
    print(f"[{time.monotonic() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


class ToolError(Exception):
    pass


def run(cmd: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None, log: Path | None = None) -> None:
    full_env = {**os.environ, **(env or {})}
    if log:
        with open(log, "a") as f:
            f.write(f"$ {' '.join(cmd)}\n")
            f.flush()
            rc = subprocess.call(list(cmd), cwd=cwd, env=full_env, stdout=f, stderr=subprocess.STDOUT)
        if rc != 0:
            tail = "".join(open(log).readlines()[-25:])
            raise ToolError(f"command failed ({rc}): {' '.join(cmd)}\n--- last lines of {log} ---\n{tail}")
    else:
        subprocess.run(list(cmd), cwd=cwd, env=full_env, check=True)


def go_env() -> dict[str, str]:
    if not shutil.which("go"):
        raise ToolError("the Go toolchain (go 1.26) is needed to build from modules; install golang first")
    return {"CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}


def go_build(workdir: Path, package: str, output: Path, *, ldflags: str = "", tags: str = "", cgo: bool = False, log: Path) -> None:
    """`go build` one main package inside a wrapper module, writing to a temp file then renaming.
    No VCS stamp (-buildvcs=false): the binary would otherwise embed the checkout's commit and
    dirty flag, so the same sources would give different bytes (and image digests) per commit."""
    cmd = ["go", "build", "-trimpath", "-buildvcs=false"]
    if tags:
        cmd += ["-tags", tags]
    if ldflags:
        cmd += ["-ldflags", ldflags]
    tmp = output.with_name(output.name + ".tmp")
    output.parent.mkdir(parents=True, exist_ok=True)
    run([*cmd, "-o", str(tmp), package], cwd=workdir, env={**go_env(), "CGO_ENABLED": "1" if cgo else "0"}, log=log)
    tmp.chmod(0o755)
    tmp.rename(output)


def write_if_changed(path: Path, text: str) -> None:
    """Write through a temp file and rename (a stack file holding secrets is never half written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        if path.exists():
            tmp.chmod(path.stat().st_mode & 0o7777)
        tmp.replace(path)


def in_project_venv(module: str) -> None:
    """Re-run `python3 -m <module> <args>` under the project's virtualenv when a bare python3
    started it: entry points that import pulumi or pyyaml then work as the README writes them.
    Returns when already there; exits when there is no virtualenv yet."""
    if Path(sys.prefix).resolve() == VENV_PYTHON.parent.parent.resolve():
        return
    if not VENV_PYTHON.exists() or os.environ.get("VMP_IN_VENV") == "1":
        print(f"error: {module} runs in the project's virtualenv ({VENV_PYTHON}): run `python3 -m tools.setup` first", file=sys.stderr)
        sys.exit(1)
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    os.execve(str(VENV_PYTHON), [str(VENV_PYTHON), "-m", module, *sys.argv[1:]], {**os.environ, "PYTHONPATH": path, "VMP_IN_VENV": "1"})
