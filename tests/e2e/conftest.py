"""The e2e suite's own lab instance, the `local` stack on it and a deployed cluster.

`python3 -m tools.lab up --instance e2e` boots the suite's own lab (its own bridge, /24,
network namespaces, machine names, keys and state dir: lab/instance.py), so the suite never
touches the lab the main job (`tools/deploy-local`) deployed, nor its stack. The tests then run
the real engine's `up` of a `local` stack in a project copy with its own backend against those
hosts. The instance is taken down at the end unless VMP_KEEP_LAB=1.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto

from components.settings import Secret, Settings, parse_settings
from lab import binaries, instance, stackfile
from lab import hosts as lab_hosts
from tests.e2e.load import neighbor
from tools.automation import ROOT, Project, new_project

pytestmark = pytest.mark.lab

# VMP_E2E_LAB picks another instance name (e.g. to run two checkouts' suites side by side).
INSTANCE = os.environ.get("VMP_E2E_LAB", "e2e")
# The example service's Secret value (random per run; the secrets scan looks for it).
GREETING = secrets.token_urlsafe(18)
# The registry password the registry-auth test sets: random per run, so the secrets scan finds it
# only where a tool wrote it, never in a failed test's traceback (which quotes the test's source).
REGISTRY_PASSWORD = "lab-registry-" + secrets.token_hex(12)
GREETING_PATH = "secrets.{}.data.{}".format(*stackfile.EXAMPLE_SECRET)


@dataclass
class Lab:
    config: dict
    key_path: Path
    hosts: dict[str, str]  # name -> address
    instance: instance.Instance

    @property
    def settings(self) -> Settings:
        """The stack's effective settings (defaults included: the stack file leaves them out)."""
        raw = {k.split(":", 1)[1]: v for k, v in self.config.items()}
        name, key = stackfile.EXAMPLE_SECRET
        given = {"sshPrivateKey": Secret(self.key_path.read_text()), "secrets": {name: {"data": {key: Secret(GREETING)}}}}
        return parse_settings({**raw, **given}, "local", check_files=False)

    def ssh(self, host: str, command: str, check: bool = True, timeout: int = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*lab_hosts.ssh_command(host, self.instance), command], capture_output=True, text=True, check=check, timeout=timeout)


def _lab(action: str, workers: int = instance.DEFAULT_WORKERS) -> None:
    count = ["--workers", str(workers)] if action == "up" else []
    subprocess.run([sys.executable, "-m", "tools.lab", action, "--instance", INSTANCE, *count], cwd=ROOT, check=True)


def lab_up(workers: int) -> None:
    """`tools.lab up` of the suite's instance with `workers` workers: boots hosts that are down
    (same disk), adds missing ones, removes extra ones."""
    _lab("up", workers)


def lb_arp_mismatches(kubeconfig: Path, hosts: list[Any]) -> list[str]:
    """What is not yet settled about the LoadBalancer addresses, empty when all is: no address
    has two announcing nodes (MetalLB's ServiceL2Status; an address without a status is not
    counted: one was seen missing for minutes while the address answered), and this machine's
    ARP entry for an announced address names that node's MAC (a client holding a node that no
    longer announces fails when its kernel re-checks the entry). The "no route to host" failures
    seen after node loss came with a REACHABLE entry naming the right node, so this check did not
    explain them; it stays as a guard."""
    from tests.e2e.test_local_stack import kubectl

    services = json.loads(kubectl(kubeconfig, "get", "services", "-A", "-o", "json").stdout)["items"]
    statuses = [st.get("status", {}) for st in json.loads(kubectl(kubeconfig, "get", "servicel2statuses.metallb.io", "-A", "-o", "json").stdout)["items"]]
    macs = {h.name: neighbor(h.address)[0] for h in hosts}
    out = []
    for svc in services:
        if svc["spec"].get("type") != "LoadBalancer":
            continue
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        ips = [i.get("ip") for i in svc.get("status", {}).get("loadBalancer", {}).get("ingress", []) if i.get("ip")]
        nodes = sorted({st.get("node", "") for st in statuses if (st.get("serviceNamespace"), st.get("serviceName")) == (ns, name)})
        for ip in ips:
            mac, state = neighbor(ip)
            if len(nodes) > 1:
                out.append(f"{ns}/{name} {ip}: announced by {nodes}")
            elif nodes and mac and mac != macs.get(nodes[0]):
                held = next((n for n, m in macs.items() if m == mac), mac)
                out.append(f"{ns}/{name} {ip}: announced by {nodes[0]}, this machine's ARP entry names {held} ({state})")
    return out


def lb_urls(stack: auto.Stack) -> dict[str, str]:
    """What the day-2 tests load: the example service and Eureka through their LoadBalancer addresses."""
    outputs = stack.outputs()
    return {"example": outputs["serviceEndpoints"].value[stackfile.EXAMPLE_SERVICE] + "/", "eureka": outputs["eurekaEndpoint"].value + "/actuator/health"}


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (network namespaces, systemd-nspawn)")
    if INSTANCE == instance.DEFAULT:
        pytest.fail("the e2e suite never runs on the main job's lab instance: set VMP_E2E_LAB to another name")
    t0 = time.monotonic()
    with _suite_lock():
        yield from _lab_session(t0)


@contextmanager
def _suite_lock() -> Iterator[None]:
    """One suite per lab instance at a time: a second one would share its hosts under another
    stack (each run has its own backend) and fail on the hosts' owner record, test after test."""
    path = instance.lab_root() / f".suite-{INSTANCE}.lock"
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            pytest.fail(f"lab instance {INSTANCE!r} is in use by another e2e suite (pid {holder}): wait for it, or set VMP_E2E_LAB to another name")
        f.truncate(0)
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield


def _lab_session(t0: float) -> Iterator[Lab]:
    # Hosts left by an earlier run (killed, or kept with VMP_KEEP_LAB=1) carry that run's stack
    # id in their owner record; this run's backend is new, so it starts on new hosts.
    if instance.exists(INSTANCE) and instance.get(INSTANCE).existing_hosts():
        print(f"\n[e2e] lab instance {INSTANCE} has hosts of an earlier run: taking it down first")
        _lab("down")
    _lab("up")
    inst = instance.get(INSTANCE)
    print(f"\n[e2e] lab {inst.name} ({inst.network}, bridge {inst.bridge}) up: {time.monotonic() - t0:.1f} s")
    cfg, key = stackfile.stack_config(inst)
    # The suite starts one patch behind the pin, so that test_platform_upgrade can upgrade to it.
    cfg["vm-platform:kubernetesVersion"] = binaries.versions()[0]
    addresses = {cfg["vm-platform:controlPlane"]["name"]: cfg["vm-platform:controlPlane"]["address"]}
    addresses.update({w["name"]: w["address"] for w in cfg["vm-platform:workers"]})
    yield Lab(cfg, Path(key), addresses, inst)
    if os.environ.get("VMP_KEEP_LAB") != "1":
        _lab("down")


@pytest.fixture(scope="session")
def local(lab: Lab) -> Iterator[tuple[Project, object]]:
    project = new_project({"local": {"config": lab.config}})
    stack = project.stack("local", {"sshPrivateKey": lab.key_path.read_text()})
    project.set_secret(stack, GREETING_PATH, GREETING, path=True)
    yield project, stack
    if os.environ.get("VMP_KEEP_LAB") != "1":
        try:
            stack.destroy(color="never")
        except Exception as e:  # the lab goes down next anyway; report, don't mask the test result
            print(f"[e2e] final destroy failed: {e}")


# The stack file's text after the last `up` of the `stack` fixture, while every test since passed.
_CONVERGED: dict[str, str] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    if outcome.get_result().failed:  # whatever it left may not be what the config says
        _CONVERGED.clear()


@pytest.fixture(scope="module")
def stack(local: tuple[Project, auto.Stack]) -> auto.Stack:
    """The local stack as its config says, whatever the module before this one left: an `up`
    at the start of each module that uses it. Skipped when the stack file is what it was at
    this fixture's last `up` and no test has failed since (every day-2 test ends converged and
    asserts it): an `up` that changes nothing still costs 10 s here."""
    project, st = local
    text = (project.dir / f"Pulumi.{st.name}.yaml").read_text()
    if _CONVERGED.get(st.name) != text:
        st.up(color="never", on_output=lambda line: None)
        _CONVERGED[st.name] = text
    return st
