"""Each lab host gets its own cgroup in every hierarchy (else, with no systemd on the machine,
every host's cgroup root is the machine's and two kubelets share /kubepods).

A host's groups are <launcher's group>/<host's netns name> in each v1 controller and in the
unified hierarchy; their paths are recorded in the host's dir so `down` from another session
removes them.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from tools.common import progress

from .instance import LabHost

# Lab plumbing, not bootstrap config: nspawn mounts every cgroup-v1 controller read-only inside
# a container, where a VM would have its own writable cgroups. This oneshot stands in for that
# before anything creates cgroups (containerd's shims, the kubelet's /kubepods).
REMOUNT_UNIT_NAME = "vmp-lab-cgroups-rw.service"
REMOUNT_UNIT = """\
# Written by the lab (lab/cgroups.py; lab plumbing, not part of the platform's bootstrap): nspawn
# mounts the cgroup-v1 controllers read-only; a VM has writable cgroups of its own. Remount them rw.
[Unit]
Description=lab: make the cgroup-v1 controllers writable (stands in for a VM's own cgroups)
DefaultDependencies=no
After=sysinit.target
Before=containerd.service kubelet.service flanneld.service basic.target

[Service]
Type=oneshot
RemainAfterExit=yes
# ($$ is systemd's escape for a literal $)
ExecStart=/bin/sh -c 'for d in $$(findmnt -rn -t cgroup -o TARGET); do mount -o remount,bind,rw "$$d"; done'

[Install]
WantedBy=basic.target
"""


def cgroup_dirs() -> list[Path]:
    """This process's cgroup directory in every mounted hierarchy (v1 controllers and unified)."""
    own: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        own[ctrls] = path
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        pre, post = line.split(" - ", 1)
        fields, post_f = pre.split(), post.split()
        fstype, mroot, mpoint = post_f[0], fields[3], fields[4]
        if fstype == "cgroup2":
            key = ""
        elif fstype == "cgroup":
            opts = post_f[2].split(",")
            names = [o for o in opts if o not in ("rw", "ro") and not o.startswith(("release_agent", "clone_children", "noprefix", "xattr", "cpuset_v2_mode"))]
            key = next((k for k in own if k and set(k.split(",")) == set(names)), "")
            if not key:
                continue
        else:
            continue
        if key not in own:
            continue
        rel = os.path.relpath(own[key], mroot)
        found.append(Path(mpoint) / ("" if rel == "." else rel))
    return found


def make_host_cgroups(h: LabHost) -> list[Path]:
    dirs = []
    for parent in cgroup_dirs():
        d = parent / h.netns
        d.mkdir(exist_ok=True)
        if (parent / "cpuset.cpus").exists():
            for f in ("cpuset.cpus", "cpuset.mems"):
                (d / f).write_text((parent / f).read_text())
        dirs.append(d)
    (h.dir / "cgroups").write_text("".join(f"{d}\n" for d in dirs))
    return dirs


def _tree_procs(d: Path) -> list[int]:
    pids: list[int] = []
    for dirpath, _, files in os.walk(d):
        if "cgroup.procs" in files:
            try:
                pids += [int(x) for x in (Path(dirpath) / "cgroup.procs").read_text().split()]
            except OSError:
                pass
    return pids


def _kill_left_over(h: LabHost, d: Path) -> None:
    """Processes the lab started (the host's, left behind by a hard kill): by PID, from the
    host's own cgroup only."""
    for _ in range(20):
        pids = _tree_procs(d)
        if not pids:
            return
        progress(f"{h.id}: killing {len(pids)} process(es) left in {d}")
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.25)


def remove_host_cgroups(h: LabHost) -> None:
    f = h.dir / "cgroups"
    dirs = [Path(x) for x in f.read_text().split()] if f.is_file() else []
    for d in dirs:
        if not d.is_dir():
            continue
        _kill_left_over(h, d)
        subdirs = sorted((Path(p) for p, _, _ in os.walk(d)), key=lambda p: len(p.parts), reverse=True)
        for sd in subdirs:
            for _ in range(20):
                try:
                    sd.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.25)
            else:
                progress(f"{h.id}: could not remove cgroup {sd}")
    f.unlink(missing_ok=True)
