"""Small wrappers over this machine's processes, links and mounts that every part of the lab uses.

They stay in one place because the lab's safety rests on them: a tree is removed only when
nothing is still mounted beneath it, and a PID counts as a lab host only while its command
line is that host's nspawn (a recycled PID is never signalled).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from tools.common import ToolError, run


def out(cmd: Sequence[str], check: bool = True, timeout: float | None = None) -> str:
    """The command's stdout; a failure raises with its stderr (unless check is off)."""
    p = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise ToolError(f"command failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr.strip()}")
    return p.stdout


def ok(cmd: Sequence[str], timeout: float | None = None) -> bool:
    """Whether the command succeeds (a timeout counts as failure), output discarded."""
    try:
        return subprocess.run(list(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def netns_list() -> list[str]:
    d = Path("/run/netns")
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def link_exists(name: str, netns: str | None = None) -> bool:
    return ok(["ip", *(["-n", netns] if netns else []), "link", "show", "dev", name])


def mounts() -> list[tuple[str, str, str]]:
    """(mount point, fstype, super options) of this mount namespace, in mount order."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        pre, post = line.split(" - ", 1)
        fields, post_f = pre.split(), post.split()
        found.append((fields[4].replace("\\040", " "), post_f[0], post_f[2] if len(post_f) > 2 else ""))
    return found


def mounted(path: Path) -> bool:
    return any(m == str(path) for m, _, _ in mounts())


def mounts_under(path: Path) -> list[str]:
    p = str(path)
    return [m for m, _, _ in mounts() if m == p or m.startswith(p + "/")]


def unmount_under(path: Path) -> None:
    for m in reversed(mounts_under(path)):  # deepest (last mounted) first
        if not ok(["umount", m]):
            run(["umount", "-l", m])


def remove_tree(path: Path) -> None:
    """rm -rf that refuses to cross into anything still mounted beneath `path`."""
    if not path.exists():
        return
    unmount_under(path)
    if mounts_under(path):
        raise ToolError(f"refusing to remove {path}: still mounted: {mounts_under(path)}")
    run(["rm", "-rf", "--one-file-system", str(path)])


def pid_alive(pid: int, marker: str) -> bool:
    """True when `pid` runs and is the lab's nspawn for `marker` (not a reused PID or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X") and b"systemd-nspawn" in cmdline[0] and marker.encode() in cmdline


def write_file(path: Path, text: str, mode: int, changes: list[str], what: str) -> None:
    """Write `text` with `mode` through a temp file and rename, noting `what` in changes; a
    file that already has this content and mode is left alone (so `up` can report no change)."""
    if path.is_file() and not path.is_symlink() and path.read_text() == text and (path.stat().st_mode & 0o7777) == mode:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        path.unlink()
    tmp = path.with_name(f".{path.name}.lab-tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    tmp.rename(path)
    changes.append(what)
