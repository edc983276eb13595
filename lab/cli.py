"""`python3 -m tools.lab up|down|status [--workers N] [--instance NAME]`: the lab's commands.

python3 -m tools.lab up [--workers N]     # idempotent; writes Pulumi.local.yaml
python3 -m tools.lab status
python3 -m tools.lab down                 # keeps the cached image and the lab key
python3 -m tools.lab up --instance e2e    # another lab beside the default one (lab/instance.py)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tools.common import ToolError, progress

from . import binaries, hosts, instance, network, rootfs, stackfile, system
from .instance import Instance, LabHost


def up(inst: Instance, workers: int) -> None:
    t0 = time.monotonic()
    if os.geteuid() != 0:
        raise ToolError("the lab needs root (network namespaces, mounts, cgroups)")
    changes: list[str] = []
    image = rootfs.ensure_rootfs()
    key, pubkey = hosts.ensure_lab_key(inst)
    bins = binaries.ensure()
    backend = network.flannel_backend(inst)
    hosts.ensure_machine_sysctls(changes)
    network.ensure_bridge(inst, changes)
    wanted = inst.hosts(workers)
    for extra in [h for h in inst.existing_hosts() if h.id not in {w.id for w in wanted}]:
        progress(f"{extra.id}: not in this lab (--workers {workers}); removing it")
        hosts.host_down(extra)
        changes.append(f"{extra.id}: removed")
    started = [(h, time.monotonic()) for h in wanted if _start(h, image, pubkey, changes)]
    hosts.write_known_hosts(inst, wanted, changes)
    for h, ts in started:
        hosts.wait_ready(h)
        progress(f"{h.id}: up in {time.monotonic() - ts:.1f}s after launch")
    if not started:
        for h in wanted:
            if not hosts.ssh_works(h):
                raise ToolError(f"{h.id}: running (pid {hosts.running(h)}) but SSH to {h.address} fails; try `lab down` then `lab up`")
    path, cfg_changed = stackfile.write_stack_file(inst, workers, backend)
    if cfg_changed:
        changes.append(path.name)
    _report(inst, wanted, changes, time.monotonic() - t0, key, path, bins)


def _start(h: LabHost, image: Path, pubkey: str, changes: list[str]) -> bool:
    """Network, root and identity of one host, then its launch unless it runs: whether it was launched."""
    h.dir.mkdir(parents=True, exist_ok=True)
    network.ensure_netns(h, changes)
    hosts.mount_root(h, image, changes)
    if not hosts.on_image(h, image):
        progress(f"{h.id}: runs on an older image; `lab down` then `lab up` to move it to {image.name}")
    hosts.configure_host(h, pubkey, changes)
    if hosts.running(h):
        return False
    pid = hosts.launch(h)
    changes.append(f"{h.id}: booted (pid {pid})")
    return True


def _report(inst: Instance, wanted: list[LabHost], changes: list[str], elapsed: float, key: Path, path: Path, bins: Path) -> None:
    if changes:
        progress(f"{inst.label} up in {elapsed:.1f}s; changed:")
        for line in _group(changes):
            progress(f"  {line}")
    else:
        progress(f"{inst.label} already up: nothing changed")
    for h in wanted:
        print(f"{h.name:14} {h.address:12} ssh -i {key} -o UserKnownHostsFile={inst.known_hosts_path} root@{h.address}")
    print(f"stack config: {path} (binaries: {bins})")
    if inst.is_default:
        print("next, once per lab key:")
        print(f"  pulumi config set --stack local --secret sshPrivateKey < {key}")


def _group(changes: list[str]) -> list[str]:
    """'master: hostname', 'master: netns' -> 'master: hostname, netns' (order kept)."""
    groups: dict[str, list[str]] = {}
    for c in changes:
        head, _, rest = c.partition(": ")
        key, item = (head, rest) if rest and " " not in head else ("lab", c)
        groups.setdefault(key, []).append(item)
    return [f"{k}: {', '.join(v)}" for k, v in groups.items()]


def down(inst: Instance) -> None:
    t0 = time.monotonic()
    errors = []
    for h in inst.existing_hosts():
        try:
            hosts.host_down(h)
        except (ToolError, OSError) as e:
            errors.append(f"{h.id}: {e}")
    network.remove_bridge(inst)
    inst.known_hosts_path.unlink(missing_ok=True)
    still_up = [o.label for o in instance.others(inst) if any(hosts.running(h) for h in o.existing_hosts())]
    if still_up:
        progress(f"machine sysctls kept for {', '.join(still_up)}")
    else:
        hosts.restore_machine_sysctls()
    if errors:
        raise ToolError(f"{inst.label} down left state behind:\n" + "\n".join(errors))
    progress(f"{inst.label} down in {time.monotonic() - t0:.1f}s (kept: the image {rootfs.rootfs_path().name} and the lab key)")


def status(inst: Instance) -> int:
    image = rootfs.rootfs_path()
    bridge = "present" if system.link_exists(inst.bridge) else "absent"
    print(f"{inst.label} ({inst.network}): bridge {inst.bridge}: {bridge}; image {image.name}: {'built' if image.is_dir() else 'not built'}")
    lab_hosts = inst.existing_hosts()
    if not lab_hosts:
        print("no lab hosts")
        return 1
    bad = 0
    for h in lab_hosts:
        netns = h.netns in system.netns_list()
        pid = hosts.running(h)
        ssh = pid is not None and hosts.ssh_works(h)
        state = hosts.systemd_state(h) if ssh else "-"
        bad += not (netns and pid and ssh and state in ("running", "degraded"))
        print(f"{h.name:14} {h.address:12} netns={'yes' if netns else 'no':3} pid={pid or '-':<8} ssh={'ok' if ssh else 'no':3} systemd={state}")
    return 1 if bad else 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tools.lab", description="The local lab: nspawn hosts on this machine that the `local` stack deploys to.")
    ap.add_argument("command", choices=("up", "down", "status"))
    ap.add_argument("--workers", type=int, default=None, help="number of worker hosts (up; default: as many as are up now, else 2)")
    ap.add_argument("--instance", default=instance.DEFAULT, help="which lab (default: the main job's; e.g. e2e for the test suite's own)")
    a = ap.parse_args(argv)
    if a.workers is not None and not 1 <= a.workers <= 20:
        ap.error("--workers must be 1..20")
    try:
        if a.command != "up" and not instance.exists(a.instance):
            progress(f"no lab instance {a.instance!r} on this machine" + (": nothing to take down" if a.command == "down" else ""))
            return 0 if a.command == "down" else 1
        inst = instance.get(a.instance, create=True)
        workers = a.workers if a.workers is not None else inst.current_workers()
        if a.command == "up":
            up(inst, workers)
        elif a.command == "down":
            down(inst)
        else:
            return status(inst)
    except ToolError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
