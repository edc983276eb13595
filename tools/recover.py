"""One command after an interrupted `up` (the engine killed, its machine rebooted):

    python3 -m tools.recover --stack local [--cwd DIR] [--no-up]

1. Refuses while an engine still runs for this project directory (that update is not dead).
2. Ends the dead run's orphans: its plugins (`pulumi-resource-*`, `pulumi-language-*`,
   `pulumi-analyzer-*`) and its program, which outlive a SIGKILLed engine and would hold their
   SSH sessions and ports. Only processes whose working directory is the project directory and
   that have no living `pulumi` ancestor: never another project's, never a live run's.
3. `pulumi cancel --yes` (the dead run's lock; a stack that is not locked is fine).
4. `pulumi refresh --clear-pending-creates --yes` (drops the pending operations the dead run
   left; safe because every host step converges when it runs again).
5. `pulumi up --yes` (unless --no-up), which converges.

Each step prints what it did and how long it took. Exit 0 when the stack converged.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .common import ROOT
from .drift import Engine

PLUGIN_PREFIXES = ("pulumi-resource-", "pulumi-language-", "pulumi-analyzer-")


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    name: str  # /proc/PID/comm (15 characters at most)
    argv: tuple[str, ...]
    cwd: str


def processes(proc: Path = Path("/proc")) -> dict[int, Proc]:
    out: dict[int, Proc] = {}
    for d in proc.iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            argv = tuple(a for a in (d / "cmdline").read_bytes().decode(errors="replace").split("\0") if a)
            out[int(d.name)] = Proc(int(d.name), ppid, (d / "comm").read_text().strip(), argv, os.readlink(d / "cwd"))
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not ours to read
    return out


def _is_engine(p: Proc) -> bool:
    return bool(p.argv) and Path(p.argv[0]).name == "pulumi"


def _is_run_part(p: Proc) -> bool:
    """A plugin, or the Python program the language host starts."""
    exe = Path(p.argv[0]).name if p.argv else p.name
    return exe.startswith(PLUGIN_PREFIXES) or any(Path(a).name == "pulumi-language-python-exec" for a in p.argv[:3])


def live_engines(procs: dict[int, Proc], cwd: Path) -> list[Proc]:
    return [p for p in procs.values() if _is_engine(p) and Path(p.cwd) == cwd and p.pid != os.getpid()]


def orphans(procs: dict[int, Proc], cwd: Path) -> list[Proc]:
    """The run parts in `cwd` with no living engine among their ancestors."""

    def has_engine_ancestor(p: Proc) -> bool:
        seen = set()
        while p.ppid in procs and p.ppid not in seen:
            seen.add(p.ppid)
            p = procs[p.ppid]
            if _is_engine(p):
                return True
        return False

    return [p for p in procs.values() if _is_run_part(p) and Path(p.cwd) == cwd and not has_engine_ancestor(p)]


def end(found: Sequence[Proc], grace: float = 5.0) -> None:
    for p in found:
        try:
            os.kill(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + grace
    for p in found:
        while time.monotonic() < deadline and Path(f"/proc/{p.pid}").exists():
            time.sleep(0.1)
        if Path(f"/proc/{p.pid}").exists():
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tools.recover", description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--stack", required=True)
    ap.add_argument("--cwd", type=Path, default=ROOT, help="the project directory (default: this checkout)")
    ap.add_argument("--no-up", action="store_true", help="stop after cancel and refresh")
    args = ap.parse_args(argv)
    cwd = args.cwd.resolve()
    procs = processes()
    alive = live_engines(procs, cwd)
    if alive:
        pids = ", ".join(str(p.pid) for p in alive)
        print(f"error: an engine still runs in {cwd} (pid {pids}): that update is not dead; wait for it, or end it first", file=sys.stderr)
        return 2
    found = orphans(procs, cwd)
    end(found)
    print(f"recover: ended {len(found)} orphaned process(es) of the dead run" + (f": {', '.join(f'{p.name} ({p.pid})' for p in found)}" if found else ""))
    engine = Engine(cwd)
    steps: list[tuple[str, list[str]]] = [
        ("cancel", ["cancel", "--yes", "-s", args.stack]),
        # --skip-preview: a preview first would read every object twice (half the time, same result).
        ("refresh", ["refresh", "--clear-pending-creates", "--yes", "--skip-preview", "--color", "never", "-s", args.stack]),
    ]
    if not args.no_up:
        steps.append(("up", ["up", "--yes", "--skip-preview", "--color", "never", "-s", args.stack]))
    for label, cmd in steps:
        t0 = time.monotonic()
        p = engine.run(*cmd, timeout=3600)
        ok = p.returncode == 0 or (label == "cancel" and "not locked" in (p.stderr + p.stdout).lower())
        print(f"recover: pulumi {label}: {'done' if ok else 'FAILED'} in {time.monotonic() - t0:.1f} s")
        if not ok:
            from .hints import explain

            sys.stderr.write(p.stdout[-3000:] + p.stderr[-3000:])
            for hint in explain(p.stderr + p.stdout, args.stack):
                print(f"hint: {hint}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
