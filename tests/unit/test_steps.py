"""The per-host steps object (components/steps.py HostSteps) under mocks: a restart's triggers
and dependencies come from one `reads` list, each host's script bundle is what its steps run,
and a host whose steps are never finished fails the program instead of hanging it."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import textwrap
import types
from collections.abc import Callable

import pulumi
import pytest
from pulumi.runtime.sync_await import _sync_await
from pulumi_command import remote as command

from components import remote as r
from components import steps as st
from tests.unit.harness import ROOT, RecordingMocks, base_config, run_mocked, run_program

SCRIPT_PATH = re.compile(re.escape(r.REMOTE_LIB) + r"/([A-Za-z0-9_.-]+\.sh)")


class Holder(pulumi.ComponentResource):
    def __init__(self, name: str) -> None:
        super().__init__("test:steps:Holder", name, None, None)


def target(name: str = "h1") -> r.Target:
    # HostSteps only needs the host's name (messages) and the connection.
    return r.Target(
        types.SimpleNamespace(name=name, address="10.0.0.1"), command.ConnectionArgs(host="10.0.0.1"), r.Owner("0123456789abcdef", "vm-platform/test")
    )  # type: ignore[arg-type]


def bundled(mocks: RecordingMocks, bundle: str) -> set[str]:
    return set(re.findall(r"^cat > " + re.escape(r.REMOTE_LIB) + r"/(\S+)\.tmp ", mocks.resources[bundle].inputs["stdin"], re.MULTILINE))


# ---------------------------------------------------------------- reads -> triggers + depends_on


def test_a_restart_takes_triggers_and_dependencies_from_its_reads():
    def program() -> None:
        holder = Holder("h1")
        steps = st.HostSteps(target(), holder, "h1")
        conf = steps.file("svc-config", "/etc/svc.yaml", "a: 1\n")
        unit = steps.unit("svc", "[Service]\nExecStart=/bin/true\n")
        other = steps.run("other", "prereqs.sh")
        steps.restart("svc", reads=[conf, unit], after=[other])
        steps.done()

    m = run_mocked(program)
    restart = m.resources["h1-svc-restart"].inputs
    assert restart["triggers"] == [r.sha256("a: 1\n"), r.sha256("[Service]\nExecStart=/bin/true\n")]
    assert set(m.graph["h1-svc-restart"][1]) == {"h1-scripts-bundle", "h1-svc-config", "h1-svc-unit", "h1-other"}
    assert "UNIT=svc" in restart["create"] and restart["create"].endswith("/restart-service.sh")


def test_adding_a_read_adds_exactly_its_trigger_and_dependency():
    def program(extra: bool) -> Callable[[], None]:
        def run() -> None:
            steps = st.HostSteps(target(), Holder("h1"), "h1")
            reads = [steps.unit("svc", "unit\n")]
            if extra:
                reads.append(steps.file("svc-extra", "/etc/svc.d/extra.conf", "x=1\n"))
            steps.restart("svc", reads=reads)
            steps.done()

        return run

    before = run_mocked(program(False))
    triggers_before, deps_before = before.resources["h1-svc-restart"].inputs["triggers"], set(before.graph["h1-svc-restart"][1])
    after = run_mocked(program(True))
    assert after.resources["h1-svc-restart"].inputs["triggers"] == [*triggers_before, r.sha256("x=1\n")]
    assert set(after.graph["h1-svc-restart"][1]) - deps_before == {"h1-svc-extra"}


def test_reading_a_step_without_a_digest_or_nothing_at_all_is_refused():
    def program() -> None:
        steps = st.HostSteps(target(), Holder("h1"), "h1")
        keys = steps.run("keys", "node-keys.sh")  # no stdin, no digest given
        with pytest.raises(TypeError, match="h1-keys, which has no digest"):
            steps.restart("svc", reads=[keys])
        with pytest.raises(ValueError, match="reads nothing"):
            steps.restart("svc", reads=[])
        steps.done()

    run_mocked(program)


def test_secret_steps_log_nothing_and_others_only_stderr(dev):
    for name, cmd in dev.commands().items():
        secret = {"stdout", "stderr"} <= set(dev.graph[name][2]["additional_secret_outputs"] or [])
        if "-maintenance-" in name or name.startswith("maintenance-"):
            continue
        assert cmd.inputs["logging"] == ("none" if secret else "stderr"), name


# ---------------------------------------------------------------- the script bundle


@pytest.fixture(scope="module")
def dev() -> RecordingMocks:
    return run_program(base_config())


def sourced(scripts: set[str]) -> set[str]:
    """The .sh files `scripts` source (`. <dir>/<x>.sh` lines), transitively."""
    found: set[str] = set()
    todo = list(scripts)
    while todo:
        for lib in re.findall(r'^\s*\.\s+"?.*/([\w.-]+\.sh)"?\s*$', r.script_text(todo.pop()), re.MULTILINE):
            if lib not in found:
                found.add(lib)
                todo.append(lib)
    return found


def test_each_bundle_holds_exactly_the_scripts_its_host_runs_and_their_libraries(dev):
    by_host: dict[str, set[str]] = {}
    bundles: dict[str, str] = {}
    for name, cmd in dev.commands().items():
        host = cmd.inputs["connection"]["host"]
        if name.endswith("-scripts-bundle"):
            bundles[host] = name
            continue
        for field in ("create", "delete"):
            by_host.setdefault(host, set()).update(SCRIPT_PATH.findall(cmd.inputs.get(field) or ""))
    assert len(bundles) == 2 and set(bundles) == set(by_host)
    for host, scripts in by_host.items():
        libs = sourced(scripts)
        assert "lib.sh" in libs
        assert bundled(dev, bundles[host]) == scripts | libs, host
    # Steps other components declare on the control plane land in its bundle.
    cp = bundled(dev, bundles["192.168.226.131"])
    assert {"push-image.sh", "sign-node.sh", "wait-node-ready.sh"} <= cp and "cni-config.sh" not in cp
    assert "registry-htpasswd.sh" not in cp  # dev has no registry auth: no step runs it


def test_every_step_depends_on_its_hosts_bundle(dev):
    for name, cmd in dev.commands().items():
        if name.endswith("-scripts-bundle") or SCRIPT_PATH.search(cmd.inputs["create"]) is None:
            continue
        host = cmd.inputs["connection"]["host"]
        bundle = next(n for n, c in dev.commands().items() if n.endswith("-scripts-bundle") and c.inputs["connection"]["host"] == host)
        assert bundle in dev.graph[name][1], name


def test_libraries_are_found_in_both_sourcing_styles(monkeypatch):
    texts = {
        "a.sh": '#!/bin/bash\n. "$(dirname "$0")/lib.sh"\n# . "$(dirname "$0")/not-this.sh"\n. /run/flannel/subnet.env\n',
        "b.sh": f". {r.REMOTE_LIB}/pki-lib.sh\n",
        "lib.sh": "log() { :; }\n",
        "pki-lib.sh": '  . "$VMP_LIB/lib.sh"\n',
    }
    monkeypatch.setattr(r, "script_text", texts.__getitem__)
    assert r.with_libraries(["a.sh"]) == {"a.sh", "lib.sh"}
    assert r.with_libraries(["b.sh"]) == {"b.sh", "pki-lib.sh", "lib.sh"}


def test_a_loop_pumped_mid_program_does_not_fix_the_bundle_early():
    # A synchronous invoke pumps the event loop while the program body is still running; the
    # bundle must still wait for done() and hold the steps declared after the pump.
    def program() -> None:
        steps = st.HostSteps(target(), Holder("h1"), "h1")
        steps.run("prereqs", "prereqs.sh")
        _sync_await(asyncio.sleep(0.05))
        steps.run("cni", "cni-config.sh")
        steps.done()

    m = run_mocked(program)
    assert {"prereqs.sh", "cni-config.sh", "lib.sh"} <= bundled(m, "h1-scripts-bundle")


def test_a_step_declared_after_done_is_refused():
    def program() -> None:
        steps = st.HostSteps(target(), Holder("h1"), "h1")
        steps.run("prereqs", "prereqs.sh")
        steps.done()
        with pytest.raises(RuntimeError, match="after steps.done"):
            steps.view(Holder("late"), "late").run("ready", "wait-node-ready.sh")

    run_mocked(program)


def test_steps_never_finished_fail_the_program_instead_of_hanging():
    # In a child process: a hang must fail this test (timeout), not stall the suite.
    program = textwrap.dedent(
        """
        import types
        import pulumi
        from pulumi_command import remote as command
        from components import remote as r
        from components import steps as st
        from tests.unit.test_steps import Holder, run_mocked

        def program():
            t = r.Target(types.SimpleNamespace(name="h1", address="10.0.0.1"), command.ConnectionArgs(host="10.0.0.1"), r.Owner("0123456789abcdef", "vm-platform/test"))
            steps = st.HostSteps(t, Holder("h1"), "h1")
            steps.run("prereqs", "prereqs.sh")  # ...and no steps.done()

        try:
            run_mocked(program)
        except pulumi.RunError as e:
            print("RunError:", e)
        """
    )
    out = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "RunError: host h1: its steps were never finished" in out.stdout, out.stdout + out.stderr
    assert "call steps.done()" in out.stdout


def test_every_bundle_claims_its_host_for_this_stack_first(dev):
    for name in ("centos-master-scripts-bundle", "centos-minion-1-scripts-bundle"):
        bundle = dev.resources[name].inputs
        text = bundle["stdin"]
        assert text.index("claim-host.sh") < text.index(f"install -d -m 0755 {r.REMOTE_LIB}"), name
        owner = r.stack_owner("vm-platform", "dev")
        assert f"OWNER_ID={owner.id} OWNER=vm-platform/dev bash" in text
        # Destroy releases the claim (only if it is this stack's) with the scripts.
        assert owner.release_command() in bundle["delete"]


def test_stack_identity_follows_the_stack_file_not_the_checkout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r.stack_owner.cache_clear()
    try:
        (tmp_path / "Pulumi.local.yaml").write_text("encryptionsalt: v1:AAAA:BBBB\nconfig: {}\n")
        a = r.stack_owner("vm-platform", "local")
        r.stack_owner.cache_clear()
        (tmp_path / "Pulumi.local.yaml").write_text("encryptionsalt: v1:CCCC:DDDD\nconfig: {}\n")
        b = r.stack_owner("vm-platform", "local")
        r.stack_owner.cache_clear()
        (tmp_path / "Pulumi.local.yaml").write_text("encryptionsalt: v1:AAAA:BBBB\nconfig:\n  vm-platform:x: 1\n")
        c = r.stack_owner("vm-platform", "local")
        assert a.id != b.id and a.id == c.id and a.name == "vm-platform/local"
    finally:
        r.stack_owner.cache_clear()


def test_no_step_that_undoes_itself_is_ever_replaced(dev):
    """Replacement creates the new step before deleting the old one, so an old delete would undo
    the new step (and on a rebuilt host it cannot connect): such steps carry what they read in
    their command line (an update), never in triggers."""
    undoing = {n: r.inputs for n, r in dev.resources.items() if r.type == "command:remote:Command" and r.inputs.get("delete")}
    assert undoing and not [n for n, i in undoing.items() if i.get("triggers")]
    cni = dev.resources["centos-minion-1-cni-config"].inputs
    # It follows flanneld's restart (a restart's digest is its id, new with every restart).
    assert f"VMP_READS={r.sha256('centos-minion-1-flanneld-restart-id')[:16]} " in cni["create"]


def test_an_env_value_may_be_an_output_and_a_none_one_is_left_out():
    """What the last deployment decides (a renewal mark) goes into a command line as an Output;
    None leaves the command line as it was without it."""

    def program() -> None:
        holder = Holder("h1")
        steps = st.HostSteps(target(), holder, "h1")
        marked = steps.run("marked", "prereqs.sh", env={"A": "1", "RENEW": pulumi.Output.from_input("x@2027-01-01T00:00:00Z")})
        unmarked = steps.run("unmarked", "prereqs.sh", env={"A": "1", "RENEW": pulumi.Output.from_input(None)})
        plain = steps.run("plain", "prereqs.sh", env={"A": "1"})
        del marked, unmarked, plain
        steps.done()

    m = run_mocked(program)
    marked, unmarked, plain = (m.resources[f"h1-{n}"].inputs["create"] for n in ("marked", "unmarked", "plain"))
    assert "RENEW=x@2027-01-01T00:00:00Z " in marked
    assert unmarked == plain and "RENEW" not in plain
