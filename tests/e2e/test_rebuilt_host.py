"""A host rebuilt from scratch (a VM reinstalled: empty disk, new SSH host key) is reconverged by
the next `up` once its new key is in the config: the preview names the host key as the reason
for re-copying its files, every step of that host runs again, and the node is Ready. Nothing on
the other hosts changes, and a second preview is empty. Before that, an `up` while the host's SSH
server is down fails naming its address, with the hint to check it (tools/hints.py).
"""

from __future__ import annotations

import json
import time

import pytest
from pulumi import automation as auto

from lab import hosts as lab_hosts
from lab import instance as lab_instance
from lab import stackfile
from tests.e2e.conftest import INSTANCE, Lab, lab_up
from tests.e2e.test_local_stack import kubeconfig_of, kubectl
from tools.automation import Project
from tools.hints import explain

pytestmark = pytest.mark.lab


def test_a_rebuilt_worker_is_reconverged_by_the_next_up(local: tuple[Project, auto.Stack], stack: auto.Stack, lab: Lab):
    project, _ = local
    n = len(lab.settings.workers)
    inst = lab_instance.get(INSTANCE)
    victim = inst.hosts(n)[-1]
    index = n - 1
    old_key = lab.settings.workers[index].host_key
    lab_hosts.host_down(victim)  # the disk is gone
    lab_up(n)
    new_key = stackfile.stack_config(inst, n)[0]["vm-platform:workers"][index]["hostKey"]
    assert new_key != old_key
    try:
        project.set_path(stack, f"workers[{index}].hostKey", new_key)
        # First its SSH server is down: `up` fails naming the host, and the hint (tools/hints.py,
        # what tools/pulumi prints) says what to check. It stays down until the failure is seen
        # (a timer would race the provider's dial retries), then starts again from inside the
        # host without SSH; the 600 s timer only guards against a test killed in between.
        lab.ssh(
            victim.name,
            "systemd-run --quiet --on-active=600 systemctl start ssh.service && systemctl stop ssh.service && { systemctl stop ssh.socket 2>/dev/null || true; }",
        )
        assert not lab_hosts.ssh_works(victim), "the SSH server still answers"
        t0 = time.monotonic()
        try:
            with pytest.raises(auto.CommandError) as refused:
                stack.up(color="never", on_output=lambda line: None)
        finally:
            started = lab_hosts.inside(victim, "systemctl", "start", "ssh.service")
            assert started.returncode == 0, started.stderr
        message = str(refused.value)
        print(
            f"\n[e2e] {victim.name} unreachable: up failed in {time.monotonic() - t0:.1f} s: "
            + next((ln.strip() for ln in message.splitlines() if victim.address in ln), "?")[:300]
        )
        assert victim.address in message, message[-2000:]
        assert any("did not answer over SSH" in h for h in explain(message, "local")), message[-2000:]
        deadline = time.monotonic() + 90
        while not lab_hosts.ssh_works(victim):
            assert time.monotonic() < deadline, "the SSH server did not come back"
            time.sleep(2)
        preview = project.preview(stack)
        changed = preview.changed()
        assert changed and all(victim.name in r for r in changed), sorted(r for r in changed if victim.name not in r)
        replaced = {r for r, (op, _) in changed.items() if op == "replace"}
        assert replaced and all("triggers" in changed[r][1] for r in replaced), {r: changed[r] for r in replaced}
        t0 = time.monotonic()
        stack.up(color="never", on_output=lambda line: None)
        up_s = time.monotonic() - t0
        node = json.loads(kubectl(kubeconfig_of(stack), "get", "node", victim.name, "-o", "json").stdout)
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
        print(f"\n[e2e] rebuilt {victim.name}: {len(changed)} resources changed ({len(replaced)} copies replaced), up {up_s:.1f} s, node Ready={ready}")
        assert ready == "True"
        assert project.preview(stack).changed() == {}
    finally:
        stack.up(color="never", on_output=lambda line: None)
