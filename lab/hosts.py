"""The lab's hosts: systemd-nspawn containers booting real systemd on their own overlay root,
reachable over SSH with the instance's lab key and pinned host keys.

Why each launch flag and each piece of plumbing is there: /work/shared/notes/lab.md and
lab/LAB-NOTES.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

from tools.common import ToolError, progress, run

from . import cgroups, network, system
from .instance import Instance, LabHost, lab_root, lock

SSH_OPTS = [
    "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
    "-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=3", "-o", "LogLevel=ERROR",
]  # fmt: skip

# Machine-wide kernel settings the kubelet checks (protectKernelDefaults: true): /proc/sys is
# read-only inside the hosts, and these are not namespaced, so they are set once here.
MACHINE_SYSCTLS = {"vm/overcommit_memory": "1", "kernel/panic": "10", "kernel/panic_on_oops": "1"}


# ---------------------------------------------------------------------------------------------
# Keys and per-host files


def ensure_lab_key(inst: Instance) -> tuple[Path, str]:
    key = inst.key_path
    if not key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"vm-platform-{inst.label.replace(' ', '-')}", "-f", str(key)])
        progress(f"made the lab SSH key {key}")
    return key, key.with_suffix(".pub").read_text().strip()


def host_key(h: LabHost) -> str | None:
    """The host's ed25519 public key as 'ssh-ed25519 AAAA...' (no comment), if it has one."""
    for base in (h.merged, h.dir / "upper"):
        p = base / "etc/ssh/ssh_host_ed25519_key.pub"
        if p.is_file():
            return " ".join(p.read_text().split()[:2])
    return None


def configure_host(h: LabHost, pubkey: str, changes: list[str]) -> None:
    """Identity, access and lab plumbing, written through the overlay (so into the upper dir)."""
    root, write = h.merged, system.write_file
    write(root / "etc/hostname", f"{h.name}\n", 0o644, changes, f"{h.id}: hostname")
    hosts = f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{h.address}\t{h.name}\n"
    write(root / "etc/hosts", hosts, 0o644, changes, f"{h.id}: /etc/hosts")
    write(root / "etc/resolv.conf", "# lab host: no DNS server; the nodes' names are in /etc/hosts\n", 0o644, changes, f"{h.id}: resolv.conf")
    mid = root / "etc/machine-id"
    if not mid.is_file() or not mid.read_text().strip():
        write(mid, uuid.uuid4().hex + "\n", 0o444, changes, f"{h.id}: machine-id")
    dbus_id = root / "var/lib/dbus/machine-id"
    if not dbus_id.is_symlink():
        dbus_id.unlink(missing_ok=True)
        dbus_id.symlink_to("/etc/machine-id")
        changes.append(f"{h.id}: dbus machine-id")
    if not (root / "etc/ssh/ssh_host_ed25519_key").exists():
        system.out(["ssh-keygen", "-A", "-f", str(root)])  # every default type, into <root>/etc/ssh
        changes.append(f"{h.id}: SSH host keys")
    (root / "root/.ssh").mkdir(mode=0o700, exist_ok=True)
    os.chmod(root / "root/.ssh", 0o700)
    write(root / "root/.ssh/authorized_keys", pubkey + "\n", 0o600, changes, f"{h.id}: authorized_keys")
    write(root / "etc/systemd/system" / cgroups.REMOUNT_UNIT_NAME, cgroups.REMOUNT_UNIT, 0o644, changes, f"{h.id}: cgroup unit")
    link = root / "etc/systemd/system/basic.target.wants" / cgroups.REMOUNT_UNIT_NAME
    if not link.is_symlink():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(f"/etc/systemd/system/{cgroups.REMOUNT_UNIT_NAME}")
        changes.append(f"{h.id}: cgroup unit enabled")
    (h.dir / "containerd").mkdir(exist_ok=True)


def write_known_hosts(inst: Instance, hosts: list[LabHost], changes: list[str]) -> None:
    system.write_file(inst.known_hosts_path, "".join(f"{h.address} {host_key(h)}\n" for h in hosts), 0o644, changes, "known_hosts")


# ---------------------------------------------------------------------------------------------
# Boot, wait, stop


def nspawn_command(h: LabHost) -> list[str]:
    return [
        "systemd-nspawn", "-D", str(h.merged), "-M", h.machine,
        "--register=no", "--keep-unit",  # no systemd (machined) on the machine to register with
        f"--network-namespace-path=/run/netns/{h.netns}",
        "--capability=all",  # CNI and iptables need CAP_NET_ADMIN (CAP_SYS_RESOURCE stays out of reach)
        "--system-call-filter=@keyring",  # runc joins a session keyring per container
        f"--bind={h.dir / 'containerd'}:/var/lib/containerd",  # overlayfs cannot be an upperdir on overlayfs
        "--bind-ro=/dev/kmsg",  # the kubelet's OOM watcher reads the kernel log
        "--resolv-conf=off",  # not this machine's resolver (unreachable from the lab network anyway)
        "--console=read-only", "-b",
    ]  # fmt: skip


def mount_root(h: LabHost, rootfs: Path, changes: list[str]) -> None:
    """The host's root: an overlay of its own upper dir on the shared image."""
    upper, work = h.dir / "upper", h.dir / "work"
    for d in (upper, work, h.merged):
        d.mkdir(parents=True, exist_ok=True)
    if not system.mounted(h.merged):
        run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={rootfs},upperdir={upper},workdir={work}", str(h.merged)])
        changes.append(f"{h.id}: overlay root")


def on_image(h: LabHost, rootfs: Path) -> bool:
    """Whether the host's mounted root has `rootfs` as its lower layer (else: an older image)."""
    lower = next((o for m, t, o in system.mounts() if m == str(h.merged)), "")
    return f"lowerdir={rootfs}" in lower


def launch(h: LabHost) -> int:
    dirs = cgroups.make_host_cgroups(h)

    def into_host_cgroups() -> None:  # runs in the child, before exec
        for d in dirs:
            (d / "cgroup.procs").write_text(str(os.getpid()))

    log = open(h.dir / "console.log", "ab")
    p = subprocess.Popen(
        nspawn_command(h), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, close_fds=True,
        env={**os.environ, "SYSTEMD_NSPAWN_API_VFS_WRITABLE": "network"},  # /proc/sys/net writable inside
        start_new_session=True, preexec_fn=into_host_cgroups,
    )  # fmt: skip
    log.close()
    h.pid_file.write_text(f"{p.pid}\n")
    return p.pid


def running(h: LabHost) -> int | None:
    """The host's nspawn PID while it runs (checked against its command line, not just the file)."""
    try:
        pid = int(h.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if system.pid_alive(pid, h.machine) else None


def ssh_cmd(h: LabHost, *cmd: str) -> list[str]:
    inst = h.instance
    return ["ssh", "-i", str(inst.key_path), "-o", f"UserKnownHostsFile={inst.known_hosts_path}", *SSH_OPTS, f"root@{h.address}", *cmd]


def ssh_command(host: str, inst: Instance) -> list[str]:
    """ssh to a lab host of `inst` by node name (lab-master) or lab id (master); append the command."""
    for h in inst.existing_hosts():
        if host in (h.name, h.id):
            return ssh_cmd(h)
    raise ToolError(f"no host {host!r} in the {inst.label} (hosts: {', '.join(h.name for h in inst.existing_hosts()) or 'none'})")


def ssh_works(h: LabHost) -> bool:
    return system.ok(ssh_cmd(h, "true"), timeout=10)


def wait_ready(h: LabHost, timeout: float = 120) -> str:
    t0 = time.monotonic()
    while not ssh_works(h):
        if not running(h):
            tail = "".join((h.dir / "console.log").read_text(errors="replace").splitlines(keepends=True)[-20:])
            raise ToolError(f"{h.id}: the nspawn process exited; last console lines:\n{tail}")
        if time.monotonic() - t0 > timeout:
            raise ToolError(f"{h.id}: no SSH on {h.address} after {timeout:.0f}s (console: {h.dir / 'console.log'})")
        time.sleep(0.3)
    t_ssh = time.monotonic() - t0
    p = subprocess.run(ssh_cmd(h, "timeout", str(int(timeout)), "systemctl", "is-system-running", "--wait"), capture_output=True, text=True)
    state = p.stdout.strip() or p.stderr.strip()
    if state not in ("running", "degraded"):
        raise ToolError(f"{h.id}: systemd says {state!r}")
    if state == "degraded":
        failed = system.out(ssh_cmd(h, "systemctl", "--failed", "--no-legend", "--plain"), check=False).strip()
        progress(f"{h.id}: degraded; failed units: {failed}")
    progress(f"{h.id}: ssh after {t_ssh:.1f}s, systemd {state} after {time.monotonic() - t0:.1f}s")
    return state


def systemd_state(h: LabHost) -> str:
    return system.out(ssh_cmd(h, "systemctl", "is-system-running"), check=False, timeout=15).strip()


def stop(h: LabHost) -> None:
    pid = running(h)
    if pid:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while system.pid_alive(pid, h.machine) and time.monotonic() < deadline:
            time.sleep(0.2)
        if system.pid_alive(pid, h.machine):
            progress(f"{h.id}: still running after 15s; SIGKILL")
            os.kill(pid, signal.SIGKILL)
            while system.pid_alive(pid, h.machine):
                time.sleep(0.1)
        progress(f"{h.id}: stopped (pid {pid})")
    h.pid_file.unlink(missing_ok=True)


def _children(pid: int) -> list[int]:
    """The child PIDs of `pid` (for an nspawn process: the container's init)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def init_pid(h: LabHost) -> int:
    """The PID (in this machine's namespace) of the host's own init: the nspawn process's child."""
    pid = running(h)
    if not pid:
        raise ToolError(f"{h.id} is not running")
    children = _children(pid)
    if not children:
        raise ToolError(f"{h.id}: nspawn {pid} has no init yet")
    return children[0]


def inside(h: LabHost, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Runs `cmd` inside the host without SSH (nsenter into its init's namespaces): for what
    must work while the host's SSH server is down, such as starting it again."""
    return subprocess.run(["nsenter", "-t", str(init_pid(h)), "-m", "-u", "-i", "-n", "-p", "--", *cmd], capture_output=True, text=True, timeout=timeout)


def power_off(h: LabHost) -> int:
    """A power cut, not a shutdown: SIGKILL to the host's init (the kernel then kills every
    process of its PID namespace: kubelet, containerd, the pods) and to its nspawn. Its disk
    (the overlay's upper dir) stays, so `tools.lab up` boots it again. Returns the nspawn PID."""
    pid = running(h)
    if not pid:
        raise ToolError(f"{h.id} is not running")
    children = _children(pid)
    for child in children:  # the container's PID 1
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while system.pid_alive(pid, h.machine) and time.monotonic() < deadline:
        time.sleep(0.05)
    h.pid_file.unlink(missing_ok=True)
    progress(f"{h.id}: powered off (SIGKILL to nspawn {pid} and init {children})")
    return pid


def host_down(h: LabHost) -> None:
    stop(h)
    # nspawn's mount-propagation dir: it declines to remove it when /run is a disk file system.
    system.remove_tree(Path("/run/systemd/nspawn/propagate") / h.machine)
    cgroups.remove_host_cgroups(h)
    system.unmount_under(h.dir)
    network.remove_netns(h)
    system.remove_tree(h.dir)
    progress(f"{h.id}: removed")


# ---------------------------------------------------------------------------------------------
# Machine-wide sysctls: shared by every instance, so saved once and restored by the last `down`


def _saved_sysctls() -> Path:
    return lab_root() / "machine-sysctls.json"


def ensure_machine_sysctls(changes: list[str]) -> None:
    with lock("sysctls"):
        _set_machine_sysctls(changes)


def _set_machine_sysctls(changes: list[str]) -> None:
    saved = _saved_sysctls()
    before = json.loads(saved.read_text()) if saved.is_file() else {}
    for key, want in MACHINE_SYSCTLS.items():
        p = Path("/proc/sys") / key
        have = p.read_text().strip()
        if have == want:
            continue
        try:
            p.write_text(want)
        except OSError as e:
            progress(f"cannot set {key.replace('/', '.')}={want} on this machine ({e.strerror}); the kubelet will refuse to start with protectKernelDefaults")
            continue
        before.setdefault(key, have)
        changes.append(f"machine sysctl {key.replace('/', '.')}={want} (was {have})")
    if before:
        saved.write_text(json.dumps(before, indent=1) + "\n")


def restore_machine_sysctls() -> None:
    with lock("sysctls"):
        _restore_machine_sysctls()


def _restore_machine_sysctls() -> None:
    saved = _saved_sysctls()
    if not saved.is_file():
        return
    for key, value in json.loads(saved.read_text()).items():
        try:
            (Path("/proc/sys") / key).write_text(value)
            progress(f"machine sysctl {key.replace('/', '.')} restored to {value}")
        except OSError as e:
            progress(f"could not restore {key}: {e.strerror}")
    saved.unlink()
