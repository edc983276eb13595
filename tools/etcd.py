"""etcd snapshots of a deployed stack, by hand: `python3 -m tools.etcd <list|save|restore> --stack <name>`.

    python3 -m tools.etcd list --stack local               # the snapshots on the control plane
    python3 -m tools.etcd save --stack local               # one now (kind "manual")
    python3 -m tools.etcd restore --stack local [--snapshot latest|NAME] --yes
    python3 -m tools.etcd fetch --stack local [--snapshot latest|NAME] [--out FILE]   # a copy off the host

The stack takes snapshots itself (etcdSnapshots: a systemd timer, and one before every
Kubernetes version change); this is the way back. `restore` stops the control plane's services
(scheduler, controller manager, API server, etcd), restores the snapshot into a fresh data
directory with etcdutl (revisions bumped and marked compacted, so every watcher relists instead
of trusting a revision the restored data never had), keeps the data it replaces beside it
(/var/lib/etcd.before-restore-<time>), starts everything again and waits for the API server.
Objects created after the snapshot are gone; nodes and workloads reconcile to the restored
state. `pulumi up` afterwards changes nothing when the snapshot was taken after the last `up`.

Where and how: from the stack's state (`pulumi stack export --show-secrets`, in memory only,
as tools/drift does): the control plane's connection and pinned host key, and the snapshot
directory of its `etcd-snapshots` step. One SSH session runs the step's own host script
(etcd-snapshot.sh) there. Exit codes: 0 done, 2 failed (the message names the fix).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .common import ROOT
from .drift import COMMAND, REMOTE_LIB, Connection, DriftError, Engine, SshRunner, parse_command, plain, ssh_agent

SCRIPT = "etcd-snapshot.sh"


def snapshot_step(deployment: Mapping[str, Any]) -> tuple[Connection, dict[str, str]]:
    """The control plane's connection and the env of its etcd-snapshots step (DIR, KEEP)."""
    for res in (deployment.get("deployment") or deployment).get("resources") or []:
        if res.get("type") != COMMAND or res.get("delete"):
            continue
        inputs = plain(res.get("inputs") or {})
        script, env = parse_command(inputs.get("create") or "")
        if script == SCRIPT and env.get("ACTION") == "schedule":
            c = inputs.get("connection") or {}
            if not c.get("hostKey") or not c.get("privateKey"):
                raise DriftError(
                    "the control plane's connection in the state has no pinned host key or SSH key: set hostKey and sshPrivateKey, then `pulumi up`"
                )
            return Connection(str(c["host"]), int(c.get("port") or 22), str(c.get("user") or "root"), str(c["hostKey"]), str(c["privateKey"])), env
    raise DriftError("the stack's state has no etcd-snapshots step (deployed before etcdSnapshots existed?): run `pulumi up` first")


def remote_command(action: str, env: Mapping[str, str], snapshot: str = "") -> str:
    args = {"ACTION": action, "DIR": env["DIR"], "KEEP": env.get("KEEP", "14"), **({"SNAPSHOT": snapshot} if snapshot else {})}
    if action == "save":
        args["KIND"] = "manual"
    line = " ".join(f"{k}={shlex.quote(v)}" for k, v in args.items())
    return f"{line} {REMOTE_LIB}/{SCRIPT}\n"


def run(action: str, stack: str, cwd: Path, snapshot: str = "", timeout: float = 900) -> str:
    conn, env = snapshot_step(Engine(cwd).export(stack, show_secrets=True))
    with ssh_agent([conn.private_key]) as agent_env, tempfile.TemporaryDirectory(prefix="vmp-etcd-") as d:
        return SshRunner(agent_env, Path(d), timeout=timeout)(conn, remote_command(action, env, snapshot))


def fetch_script(env: Mapping[str, str], snapshot: str) -> str:
    """On the host: the snapshot's sha256 and path on stderr, its bytes on stdout."""
    d = shlex.quote(env["DIR"])
    if snapshot == "latest":  # the newest, as the host script's own list orders them
        pick = f"f=$(ACTION=list DIR={d} {REMOTE_LIB}/{SCRIPT} | head -n 1 | cut -d' ' -f1 || true); f=${{f:+{d}/$f}}"
    else:
        pick = f"f={d}/{shlex.quote(snapshot.rsplit('/', 1)[-1])}"
    return (
        f"set -euo pipefail\n{pick}\n"
        f'if [ -z "$f" ] || [ ! -f "$f" ]; then echo "no snapshot {snapshot} in {env["DIR"]} (python3 -m tools.etcd list)" >&2; exit 3; fi\n'
        'echo "sha256 $(sha256sum < "$f" | cut -d" " -f1) $f" >&2\ncat "$f"\n'
    )


def fetch(stack: str, cwd: Path, snapshot: str, out: Path | None, timeout: float = 1800) -> tuple[Path, int, str]:
    """Copies a snapshot from the control plane to this machine (mode 0600: it holds every
    Secret), checked against the host's sha256. Returns (file, bytes, sha256)."""
    conn, env = snapshot_step(Engine(cwd).export(stack, show_secrets=True))
    with ssh_agent([conn.private_key]) as agent_env, tempfile.TemporaryDirectory(prefix="vmp-etcd-") as d:
        runner = SshRunner(agent_env, Path(d), timeout=timeout)
        part = Path(d) / "snapshot.part"
        with open(part, "wb") as f:
            p = subprocess.run(runner.argv(conn), input=fetch_script(env, snapshot).encode(), stdout=f, stderr=subprocess.PIPE, env=runner.env, timeout=timeout)
        err = p.stderr.decode(errors="replace")
        if p.returncode != 0:
            raise DriftError(f"{conn.host}: fetching the snapshot failed ({p.returncode}): {err.strip()[-400:]}")
        line = next((ln for ln in err.splitlines() if ln.startswith("sha256 ")), "")
        _, want, remote = (line.split(" ", 2) + ["", ""])[:3]
        got = hashlib.sha256(part.read_bytes()).hexdigest()
        if got != want:
            raise DriftError(f"{conn.host}: the copy of {remote or snapshot} does not match the host's sha256 ({got} != {want or 'none'}); fetch it again")
        dest = out or Path.cwd() / remote.rsplit("/", 1)[-1]
        os.chmod(part, 0o600)
        shutil.move(part, dest)
        return dest, dest.stat().st_size, got


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m tools.etcd", description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("action", choices=("list", "save", "restore", "fetch"))
    ap.add_argument("--stack", required=True)
    ap.add_argument("--cwd", type=Path, default=ROOT, help="the project directory (default: this checkout)")
    ap.add_argument("--snapshot", default="latest", help="restore, fetch: a snapshot's file name (see list), or latest (default)")
    ap.add_argument("--out", type=Path, help="fetch: where to write the copy (default: its name, in the current directory)")
    ap.add_argument("--yes", action="store_true", help="restore: confirm (the control plane is down while it runs)")
    args = ap.parse_args(argv)
    if args.action == "restore" and not args.yes:
        print("error: restore replaces the cluster's data with the snapshot's (objects created since are gone): add --yes to go on", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    if args.action == "fetch":
        try:
            dest, size, digest = fetch(args.stack, args.cwd, args.snapshot, args.out)
        except DriftError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"fetch: {dest} ({size} bytes, sha256 {digest}, as on the host) in {time.monotonic() - t0:.1f} s")
        return 0
    try:
        out = run(args.action, args.stack, args.cwd, args.snapshot if args.action == "restore" else "")
    except DriftError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(out)
    if args.action != "list":
        print(f"{args.action}: done in {time.monotonic() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
