"""tools/recover.py picks exactly the dead run's orphans: plugins and the program in this
project directory with no living engine above them; never a live run's, never another project's."""

from __future__ import annotations

import os
from pathlib import Path

from tools import recover


def fake_proc(root: Path, pid: int, ppid: int, argv: list[str], cwd: Path) -> None:
    d = root / str(pid)
    d.mkdir(parents=True)
    name = Path(argv[0]).name[:15]
    (d / "stat").write_text(f"{pid} ({name}) S {ppid} 0 0\n")
    (d / "cmdline").write_bytes("\0".join(argv).encode() + b"\0")
    (d / "comm").write_text(name + "\n")
    os.symlink(cwd, d / "cwd")


def test_orphans_are_the_dead_runs_parts_in_this_project_only(tmp_path):
    proc, mine, other = tmp_path / "proc", tmp_path / "project", tmp_path / "elsewhere"
    mine.mkdir()
    other.mkdir()
    fake_proc(proc, 1, 0, ["/sbin/init"], Path("/"))
    # a live run in another project, with its plugin
    fake_proc(proc, 10, 1, ["/opt/pulumi/bin/pulumi", "up"], other)
    fake_proc(proc, 11, 10, ["/home/p/plugins/pulumi-resource-command", "127.0.0.1:1"], other)
    # the dead run of this project: its plugins and its program, reparented to init
    fake_proc(proc, 21, 1, ["/home/p/plugins/pulumi-resource-command", "127.0.0.1:2"], mine)
    fake_proc(proc, 22, 1, ["/opt/pulumi/bin/pulumi-language-python", "127.0.0.1:2"], mine)
    fake_proc(proc, 23, 22, ["/venv/bin/python", "-u", "/opt/pulumi/bin/pulumi-language-python-exec", "--monitor", "x"], mine)
    # not a run part: a shell in the project directory
    fake_proc(proc, 30, 1, ["/bin/bash"], mine)
    procs = recover.processes(proc)
    assert sorted(p.pid for p in recover.orphans(procs, mine)) == [21, 22, 23]
    assert recover.orphans(procs, other) == []  # 11 has a living engine above it
    assert [p.pid for p in recover.live_engines(procs, other)] == [10] and recover.live_engines(procs, mine) == []


def test_a_live_engine_in_the_project_stops_the_recovery(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(recover, "processes", lambda: {4242: recover.Proc(4242, 1, "pulumi", ("/opt/bin/pulumi", "up"), str(tmp_path))})
    assert recover.main(["--stack", "local", "--cwd", str(tmp_path)]) == 2
    assert "an engine still runs" in capsys.readouterr().err
