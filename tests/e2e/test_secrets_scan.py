"""Last of the e2e suite: nothing the suite wrote holds a secret in plaintext.

A probe Secret from secret config is deployed first, so every kind of secret has passed through
the engine: the SSH private key, the registry password (set by the registry-auth test), the
admin kubeconfig's client key and a Kubernetes Secret value. Then everything the run wrote is
read back: the state backend (checkpoints, history, backups), the project copy (stack file),
the engine's home (logs, workspaces), this test's own `up` and `preview --diff` output and
event stream, the lab instance's files (console logs; the lab's key files and the hosts'
filesystems, where keys live by design, are left out), the shared temporary directory and the
hosts' journals.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pulumi import automation as auto

from tests.e2e.conftest import GREETING, REGISTRY_PASSWORD, Lab
from tests.e2e.test_local_stack import kubeconfig_of, kubectl
from tools import engine
from tools.automation import Project

pytestmark = pytest.mark.lab

# Per-host state the lab keeps: the hosts' own filesystems (keys, kubeconfigs and the containerd
# registry credentials live there by design) and runtime directories.
HOST_TREES = {"root", "upper", "work", "containerd", "cgroups"}
KEY_FILES = {"id_ed25519", "passphrase"}


def needles(lab: Lab, stack: auto.Stack, probe: str) -> dict[str, bytes]:
    """What must never appear: each secret, and the encodings it travels in."""
    out: dict[str, bytes] = {}
    key_lines = [ln for ln in lab.key_path.read_text().splitlines() if ln and not ln.startswith("-----")]
    for i, line in enumerate(key_lines):
        if len(line) >= 16:
            out[f"ssh private key line {i}"] = line.encode()
    for name, value in (("registry password", REGISTRY_PASSWORD), ("config Secret value", probe), ("example service's Secret value", GREETING)):
        out[name] = value.encode()
        out[f"{name} (base64)"] = base64.b64encode(value.encode())
    kubeconfig = yaml.safe_load(stack.outputs()["kubeconfig"].value)
    user = kubeconfig["users"][0]["user"]
    out["kubeconfig client key (base64)"] = user["client-key-data"].encode()
    pem = base64.b64decode(user["client-key-data"]).decode()
    for i, line in enumerate(ln for ln in pem.splitlines() if ln and not ln.startswith("-----")):
        out[f"kubeconfig client key line {i}"] = line.encode()
    if user.get("token"):
        out["kubeconfig token"] = user["token"].encode()
    return out


def files_under(root: Path, skip_dirs: set[str] = frozenset(), skip_files: set[str] = frozenset()) -> Iterator[Path]:
    if not root.exists():
        return
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).parts
        if any(part in skip_dirs for part in rel[:-1]) or p.name in skip_files or not p.is_file() or p.is_symlink():
            continue
        yield p


def shared_tmp_files() -> Iterator[Path]:
    """The shared temporary directory's files (top level, where the kubernetes provider writes
    its kubeconfig when TMPDIR is /tmp, and the suite's own vmp-* directories). The engine's
    private directory (tools/engine.py run_tmp) holds the provider's kubeconfig by design."""
    shared = Path(tempfile.gettempdir())
    for p in sorted(shared.iterdir()):
        if p.is_dir() and p.name.startswith("vmp-"):
            yield from files_under(p)
        elif p.is_file() and not p.is_symlink() and os.access(p, os.R_OK) and p.stat().st_size < 50_000_000:
            yield p


def test_nothing_the_suite_wrote_holds_a_secret(local: tuple[Project, auto.Stack], lab: Lab):
    project, stack = local
    probe = "probe-" + secrets.token_hex(12)
    project.set_secret(stack, "secrets.e2e-scan.data.token", probe, path=True)
    events: list[str] = []
    out = stack.up(color="never", on_event=lambda ev: events.append(json.dumps(ev, default=lambda o: getattr(o, "__dict__", str(o)))))
    preview = stack.preview(color="never", diff=True)
    try:
        found = needles(lab, stack, probe)
        haystacks: dict[str, bytes] = {
            "up output": out.stdout.encode(),
            "up event stream": "\n".join(events).encode(),
            "preview --diff output": preview.stdout.encode(),
        }
        backend = engine.backend_path(project.env["PULUMI_BACKEND_URL"])
        home = Path(project.env["PULUMI_HOME"])
        paths = [
            *files_under(backend),
            *files_under(project.dir, skip_dirs={"__pycache__"}),
            *files_under(home / "logs"),
            *files_under(home / "workspaces"),
            *files_under(lab.instance.dir, skip_dirs=HOST_TREES, skip_files=KEY_FILES),
            *shared_tmp_files(),
        ]
        for p in paths:
            haystacks[str(p)] = p.read_bytes()
        for host in lab.hosts:
            haystacks[f"journal of {host}"] = lab.ssh(host, "journalctl --no-pager -o cat", timeout=120).stdout.encode()
        hits = [f"{what} in {where}" for where, data in haystacks.items() for what, needle in found.items() if needle in data]
        print(
            f"\n[e2e] secrets scan: {len(haystacks)} sources ({len(paths)} files), {sum(map(len, haystacks.values())) / 1e6:.1f} MB, {len(found)} needles, {len(hits)} hits"
        )
        assert not hits, "\n".join(hits)
        # The needles are right: the probe is in the cluster's Secret (base64, as the API keeps
        # it) and the key lines are the lab key's.
        data = kubectl(kubeconfig_of(stack), "-n", "platform", "get", "secret", "e2e-scan", "-o", "jsonpath={.data.token}").stdout
        assert data.encode() == found["config Secret value (base64)"]
        assert all(n in lab.key_path.read_bytes() for k, n in found.items() if k.startswith("ssh private key"))
    finally:
        project.pulumi("config", "rm", "--path", "-s", stack.name, "secrets.e2e-scan")
        t0 = time.monotonic()
        stack.up(color="never")
        print(f"[e2e] probe Secret removed: {time.monotonic() - t0:.1f} s")
