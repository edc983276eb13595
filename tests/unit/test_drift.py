"""tools/drift.py on synthetic state exports and fake hosts: what each host should have is derived
from the state (files with digests and modes, binaries, copies, the bundle's scripts, units with
restart steps), one script per host reports what it has, every difference is a finding with the
steps that repair it, and the repair marks file steps for an in-place re-run (never a replace,
whose delete would remove the file) and replaces restarts. The SSH key never leaves memory."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from components import remote as r
from tests.unit.harness import TEST_KEY, base_config, run_program
from tools import drift

SIG, SECRET, ASSET = drift._SIG, drift._SECRET, drift._ASSET
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFgCbgojfueBmH1DvmVb6BN9/SKzU4pPoNTf9YwBgPkl"
OWNER = r.Owner("0123456789abcdef", "vm-platform/local")
KUBELET_YAML = "kind: KubeletConfiguration\nport: 10250\n"
KP_YAML = "kind: KubeProxyConfiguration\n"
KUBELET_SHA = drift.sha256(b"kubelet binary")
STAGE = b"staged kubelet"
STACK = "local"


def secret(value: Any, encrypted: bool = False) -> dict[str, Any]:
    return {SIG: SECRET, "ciphertext": "v1:c2VjcmV0"} if encrypted else {SIG: SECRET, "plaintext": json.dumps(value)}


def urn(typ: str, name: str) -> str:
    return f"urn:pulumi:{STACK}::vm-platform::vm-platform:cluster:WorkerNode${typ}::{name}"


class Export:
    """A state export as `pulumi stack export [--show-secrets]` writes it."""

    def __init__(self, encrypted: bool = False) -> None:
        self.encrypted = encrypted
        self.resources: list[dict[str, Any]] = [
            {"urn": f"urn:pulumi:{STACK}::vm-platform::pulumi:pulumi:Stack::vm-platform-{STACK}", "type": "pulumi:pulumi:Stack"}
        ]

    def conn(self, host: str) -> dict[str, Any]:
        return secret({"host": host, "port": 22, "user": "root", "privateKey": TEST_KEY, "hostKey": HOST_KEY, "dialErrorLimit": 10}, self.encrypted)

    def command(
        self,
        host: str,
        name: str,
        create: str,
        *,
        stdin: str | None = None,
        delete: str | None = None,
        triggers: list[str] | None = None,
        secret_stdin: bool = False,
    ) -> str:
        inputs: dict[str, Any] = {"connection": self.conn(host), "create": create, "addPreviousOutputInEnv": False, "logging": "stderr"}
        if stdin is not None:
            inputs["stdin"] = secret(stdin, self.encrypted) if secret_stdin else stdin
        if delete:
            inputs["delete"] = delete
        if triggers:
            inputs["triggers"] = triggers
        u = urn(drift.COMMAND, name)
        self.resources.append({"urn": u, "type": drift.COMMAND, "custom": True, "inputs": inputs, "outputs": {**inputs, "stdout": "", "stderr": ""}})
        return u

    def copy(self, host: str, name: str, path: str, content: bytes) -> str:
        u = urn(drift.COPY, name)
        source = {SIG: ASSET, "hash": drift.sha256(content), "path": f"/build/{name}"}
        inputs = {"connection": self.conn(host), "remotePath": path, "source": source, "triggers": [HOST_KEY]}
        self.resources.append({"urn": u, "type": drift.COPY, "custom": True, "inputs": inputs, "outputs": dict(inputs)})
        return u

    def data(self) -> dict[str, Any]:
        return {"version": 3, "deployment": {"manifest": {}, "resources": self.resources}}


def worker_export(host: str = "10.0.0.11", name: str = "w1", encrypted: bool = False) -> tuple[Export, dict[str, str]]:
    e = Export(encrypted)
    u = {}
    u["bundle"] = e.command(
        host, f"{name}-scripts-bundle", "bash -s", stdin=r.script_bundle({"install-file.sh", "lib.sh"}, OWNER), delete=OWNER.release_command()
    )
    u["kubelet-config"] = e.command(
        host,
        f"{name}-kubelet-config",
        r.command_line("install-file.sh", {"DEST": "/etc/vm-platform/kubelet.yaml", "MODE": "0644"}),
        stdin=KUBELET_YAML,
        delete=r.command_line("remove-file.sh", {"DEST": "/etc/vm-platform/kubelet.yaml"}),
    )
    u["kp-config"] = e.command(
        host, f"{name}-kube-proxy-config", r.command_line("install-file.sh", {"DEST": "/etc/vm-platform/kube-proxy.yaml", "MODE": "0644"}), stdin=KP_YAML
    )
    u["token"] = e.command(
        host,
        f"{name}-token",
        r.command_line("install-file.sh", {"DEST": "/etc/vm-platform/token", "MODE": "0600"}),
        stdin="s3cret-token\n",
        secret_stdin=True,
        delete=r.command_line("remove-file.sh", {"DEST": "/etc/vm-platform/token"}),
    )
    u["stage"] = e.copy(host, f"{name}-stage-kubelet", "/var/lib/vm-platform/stage/kubelet", STAGE)
    u["bin"] = e.command(
        host,
        f"{name}-bin-kubelet",
        r.command_line("install-binary.sh", {"NAME": "kubelet", "SRC": "/var/lib/vm-platform/stage/kubelet", "SHA256": KUBELET_SHA}),
        delete=r.command_line("remove-file.sh", {"DEST": "/usr/local/bin/kubelet"}),
    )
    u["kubelet-restart"] = e.command(
        host,
        f"{name}-kubelet-restart",
        r.command_line("restart-service.sh", {"UNIT": "kubelet", "HEALTH": "true", "TIMEOUT": 120}),
        triggers=[drift.sha256(KUBELET_YAML), KUBELET_SHA],
    )
    u["kp-restart"] = e.command(
        host,
        f"{name}-kube-proxy-restart",
        r.command_line("restart-service.sh", {"UNIT": "kube-proxy", "HEALTH": "true", "TIMEOUT": 120}),
        triggers=[drift.sha256(KP_YAML)],
    )
    u["certs"] = e.command(host, f"{name}-certs", r.command_line("node-certs.sh", {"API_SERVER": "https://10.0.0.10:6443"}), stdin="kubelet=AAAA")
    return e, u


@dataclass
class FakeHost:
    """A host as the check script would see it: path -> (content, mode), unit -> (enabled, active)."""

    files: dict[str, tuple[bytes, int]] = field(default_factory=dict)
    units: dict[str, tuple[str, str]] = field(default_factory=dict)
    scripts: list[str] = field(default_factory=list)

    @classmethod
    def converged(cls, p: drift.HostPlan, contents: dict[str, bytes]) -> FakeHost:
        h = cls()
        for path, want in p.files.items():
            h.files[path] = (contents[path], int(want.mode or "0644", 8))
        h.units = {u: ("enabled", "active") for u in p.units}
        return h

    def run(self, script: str) -> str:
        self.scripts.append(script)
        out = []
        for line in script.splitlines():
            words = shlex.split(line) if line[:2] in ("f ", "u ") else []
            if words and words[0] == "f":
                if words[1] in self.files:
                    content, mode = self.files[words[1]]
                    out.append(f"F\t{drift.sha256(content)}\t{mode:o}\t{words[1]}")
                else:
                    out.append(f"F\t-\t-\t{words[1]}")
            elif words and words[0] == "u":
                enabled, active = self.units.get(words[1], ("", "inactive"))
                out.append(f"U\t{enabled}\t{active}\t{words[1]}")
        return "\n".join([*out, "VMP_DRIFT_END"]) + "\n"


def worker_contents(p: drift.HostPlan) -> dict[str, bytes]:
    contents = {path: r.script_text(path.rsplit("/", 1)[1]).rstrip("\n").encode() + b"\n" for path, w in p.files.items() if w.kind == "script"}
    contents.update({
        "/etc/vm-platform/kubelet.yaml": KUBELET_YAML.encode(),
        "/etc/vm-platform/kube-proxy.yaml": KP_YAML.encode(),
        "/etc/vm-platform/token": b"s3cret-token\n",
        "/var/lib/vm-platform/stage/kubelet": STAGE,
        "/usr/local/bin/kubelet": b"kubelet binary",
    })  # fmt: skip
    return contents


def one_plan() -> tuple[drift.HostPlan, dict[str, str]]:
    e, u = worker_export()
    (p,) = drift.plan(e.data())
    return p, u


def findings_of(mutate: Any) -> tuple[list[drift.Finding], dict[str, str]]:
    p, u = one_plan()
    host = FakeHost.converged(p, worker_contents(p))
    mutate(host)
    return drift.compare(p, drift.parse_observed(host.run(drift.check_script(p)))), u


# --------------------------------------------------------------------------------------------
# What the state wants


def test_plan_derives_files_units_and_the_connection_from_the_state():
    p, u = one_plan()
    assert p.name == "w1" and p.connection.host == "10.0.0.11" and p.connection.port == 22 and p.connection.host_key == HOST_KEY
    kinds = {path: w.kind for path, w in p.files.items()}
    assert kinds["/etc/vm-platform/kubelet.yaml"] == "file" and kinds["/etc/vm-platform/token"] == "file"
    assert kinds["/usr/local/bin/kubelet"] == "binary" and kinds["/var/lib/vm-platform/stage/kubelet"] == "copy"
    assert kinds[f"{r.REMOTE_LIB}/install-file.sh"] == kinds[f"{r.REMOTE_LIB}/lib.sh"] == "script"
    assert p.files["/etc/vm-platform/kubelet.yaml"].sha256 == drift.sha256(KUBELET_YAML)
    assert p.files["/etc/vm-platform/token"].sha256 == drift.sha256("s3cret-token\n") and p.files["/etc/vm-platform/token"].mode == "0600"
    assert p.files[f"{r.REMOTE_LIB}/lib.sh"].sha256 == drift.sha256(r.script_text("lib.sh").rstrip("\n") + "\n")
    assert {unit: [s.urn for s in w.restarts] for unit, w in p.units.items()} == {"kubelet": [u["kubelet-restart"]], "kube-proxy": [u["kp-restart"]]}
    assert p.unchecked == ["w1-certs"]
    assert TEST_KEY not in repr(p) and "privateKey" not in repr(p)


def test_plan_groups_by_host_and_skips_resources_pending_deletion():
    e, _ = worker_export("10.0.0.11", "w1")
    e2, _ = worker_export("10.0.0.12", "w2")
    e.resources += e2.resources[1:]
    e.resources.append({**e2.resources[2], "urn": e2.resources[2]["urn"] + "-old", "delete": True})
    plans = drift.plan(e.data())
    assert [(p.name, p.connection.host) for p in plans] == [("w1", "10.0.0.11"), ("w2", "10.0.0.12")]
    assert len(plans[0].files) == len(plans[1].files)


def test_an_encrypted_export_or_a_host_without_pinned_key_is_refused_with_the_fix():
    e, _ = worker_export(encrypted=True)
    with pytest.raises(drift.DriftError, match="--show-secrets"):
        drift.plan(e.data())
    e, _ = worker_export()
    conn = json.loads(e.resources[1]["inputs"]["connection"]["plaintext"])
    conn["hostKey"] = ""
    e.resources[1]["inputs"]["connection"]["plaintext"] = json.dumps(conn)
    with pytest.raises(drift.DriftError, match="no pinned host key.*hostKey"):
        drift.plan(e.data())


def test_parse_command_reads_the_env_prefix_and_the_script():
    line = r.command_line("install-file.sh", {"DEST": "/etc/a b", "MODE": "0600"})
    assert drift.parse_command(line) == ("install-file.sh", {"VMP_SCRIPT": r.sha256(r.script_text("install-file.sh"))[:12], "DEST": "/etc/a b", "MODE": "0600"})
    assert drift.parse_command("bash -s")[0] == "" and drift.parse_command("echo 'unbalanced")[0] == ""


def test_the_plan_of_the_real_program_covers_each_worker_s_files_and_units():
    """The mocked program's steps, as a state would record them: the check must find the
    files and units the components declare (drift stays in step with components/)."""
    mocks = run_program({**base_config()}, stack="dev")
    e = Export()
    for rec in mocks.resources.values():
        if rec.type in (drift.COMMAND, drift.COPY):
            inputs = {k: (secret(v["value"]) if isinstance(v, dict) and SIG in v else v) for k, v in rec.inputs.items()}
            if rec.type == drift.COPY and isinstance(inputs.get("source"), dict) and "path" in inputs["source"]:
                inputs["source"] = {SIG: ASSET, "hash": "0" * 64, "path": inputs["source"]["path"]}
            e.resources.append({"urn": urn(rec.type, rec.name), "type": rec.type, "inputs": inputs})
    plans = {p.name: p for p in drift.plan(e.data())}
    worker = plans["centos-minion-1"]
    for path in ("/etc/vm-platform/kubelet.yaml", "/etc/vm-platform/kube-proxy.yaml", "/etc/systemd/system/kube-proxy.service", "/usr/local/bin/kubelet"):
        assert path in worker.files, sorted(worker.files)
    assert {"kubelet", "kube-proxy", "containerd", "flanneld"} <= set(worker.units)
    kp_yaml = worker.files["/etc/vm-platform/kube-proxy.yaml"].sha256
    assert [s.name for s in worker.readers[kp_yaml]] == ["centos-minion-1-kube-proxy-restart"]
    assert {"etcd", "kube-apiserver"} <= set(plans["centos-master"].units)
    kubelet = worker.files["/usr/local/bin/kubelet"]  # dev downloads it without a pinned digest: presence only
    assert (
        kubelet.sha256 == "" and kubelet.stamp.startswith("https://") and [s.name for s in worker.readers[kubelet.stamp]] == ["centos-minion-1-kubelet-restart"]
    )


# --------------------------------------------------------------------------------------------
# Comparison


def test_a_converged_host_has_no_findings_and_is_checked_in_one_script():
    p, _ = one_plan()
    host = FakeHost.converged(p, worker_contents(p))
    findings, seconds, errors = drift.check_hosts([p], lambda conn, script: host.run(script))
    assert findings == [] and errors == [] and list(seconds) == ["w1"]
    assert len(host.scripts) == 1 and host.scripts[0].count("\nf ") == len(p.files) and host.scripts[0].count("\nu ") == 2


def test_an_edited_file_is_rewritten_in_place_and_restarts_only_its_reader():
    def edit(h: FakeHost) -> None:
        h.files["/etc/vm-platform/kubelet.yaml"] = (KUBELET_YAML.encode() + b"# by hand\n", 0o644)

    (f,), u = findings_of(edit)
    assert f.what == "file /etc/vm-platform/kubelet.yaml" and f.drift.startswith("changed (sha256 ")
    assert [s.urn for s in f.nudge] == [u["kubelet-config"]]
    assert [s.urn for s in f.replace] == [u["kubelet-restart"]]


def test_a_missing_binary_and_a_re_moded_secret_file():
    def break_it(h: FakeHost) -> None:
        del h.files["/usr/local/bin/kubelet"]
        h.files["/etc/vm-platform/token"] = (b"s3cret-token\n", 0o644)

    fs, u = findings_of(break_it)
    by_what = {f.what: f for f in fs}
    assert set(by_what) == {"file /usr/local/bin/kubelet", "file /etc/vm-platform/token"}
    assert by_what["file /usr/local/bin/kubelet"].drift == "missing"
    assert [s.urn for s in by_what["file /usr/local/bin/kubelet"].nudge] == [u["bin"]]
    assert [s.urn for s in by_what["file /usr/local/bin/kubelet"].replace] == [u["kubelet-restart"]]
    assert by_what["file /etc/vm-platform/token"].drift == "mode 644 (wants 0600)"


def test_a_stopped_or_disabled_unit_is_repaired_by_replacing_its_restart():
    def stop(h: FakeHost) -> None:
        h.units["kube-proxy"] = ("enabled", "inactive")
        h.units["kubelet"] = ("disabled", "active")

    fs, u = findings_of(stop)
    by_what = {f.what: f for f in fs}
    assert by_what["unit kube-proxy"].drift == "inactive (wants active)" and [s.urn for s in by_what["unit kube-proxy"].replace] == [u["kp-restart"]]
    assert by_what["unit kubelet"].drift == "disabled (wants enabled)" and [s.urn for s in by_what["unit kubelet"].replace] == [u["kubelet-restart"]]
    assert all(not f.nudge for f in fs)


def test_a_changed_copy_is_replaced_and_a_changed_script_re_runs_the_bundle():
    def break_it(h: FakeHost) -> None:
        h.files["/var/lib/vm-platform/stage/kubelet"] = (b"other", 0o644)
        h.files[f"{r.REMOTE_LIB}/lib.sh"] = (b"echo hacked\n", 0o755)

    fs, u = findings_of(break_it)
    by_what = {f.what: f for f in fs}
    copy = by_what["file /var/lib/vm-platform/stage/kubelet"]
    assert copy.nudge == () and [s.urn for s in copy.replace] == [u["stage"]]
    assert [s.urn for s in by_what[f"file {r.REMOTE_LIB}/lib.sh"].nudge] == [u["bundle"]]


def test_the_check_script_runs_in_bash_and_reports_digests_modes_and_units(tmp_path: Path):
    """The real script in bash, against temp files, with a stand-in systemctl."""
    a, missing = tmp_path / "a.yaml", tmp_path / "gone"
    a.write_text("x: 1\n")
    a.chmod(0o600)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "systemctl"
    fake.write_text('#!/bin/sh\ncase "$1 $2" in\n "is-enabled kubelet") echo enabled;;\n "is-active kubelet") echo active;;\n'
                    ' "is-enabled kube-proxy") echo disabled; exit 1;;\n "is-active kube-proxy") echo inactive; exit 3;;\n *) exit 4;;\nesac\n')  # fmt: skip
    fake.chmod(0o755)
    p = drift.HostPlan("h", drift.Connection("10.0.0.1", 22, "root", HOST_KEY, "k"))
    step = drift.Step("urn:x::s", drift.COMMAND, True)
    p.files = {
        str(a): drift.WantedFile(str(a), drift.sha256("x: 1\n"), step, "file", "0644"),
        str(missing): drift.WantedFile(str(missing), "0" * 64, step, "file"),
    }
    p.units = {
        "kubelet": drift.WantedUnit("kubelet", (step,)),
        "kube-proxy": drift.WantedUnit("kube-proxy", (step,)),
        "nope": drift.WantedUnit("nope", (step,)),
    }
    out = subprocess.run(
        ["bash", "-s"], input=drift.check_script(p), capture_output=True, text=True, env={**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}, check=True
    ).stdout
    seen = drift.parse_observed(out)
    assert seen.files == {str(a): (drift.sha256("x: 1\n"), "600"), str(missing): ("-", "-")}
    assert seen.units == {"kubelet": ("enabled", "active"), "kube-proxy": ("disabled", "inactive"), "nope": ("not-found", "unknown")}
    assert [f.drift for f in drift.compare(p, seen)] == [
        "mode 600 (wants 0644)",
        "missing",
        "inactive (wants active), disabled (wants enabled)",
        "unknown (wants active), not-found (wants enabled)",
    ]


def test_truncated_host_output_is_a_failed_check_not_a_clean_host():
    with pytest.raises(drift.DriftError, match="incomplete"):
        drift.parse_observed("F\t-\t-\t/etc/x\n")


# --------------------------------------------------------------------------------------------
# Kubernetes preview


def test_parse_preview_keeps_changes_and_folds_a_replacement():
    pre = "urn:pulumi:local::vm-platform::vm-platform:apps:Microservice$kubernetes:policy/v1:PodDisruptionBudget::service-example-service-pdb"
    dep = "urn:pulumi:local::vm-platform::kubernetes:apps/v1:Deployment::d"
    svc = "urn:pulumi:local::vm-platform::kubernetes:core/v1:Service::s"
    text = json.dumps({
        "steps": [
            {"op": "same", "urn": "urn:pulumi:local::vm-platform::pulumi:pulumi:Stack::x"},
            {"op": "refresh", "urn": dep},
            {"op": "create", "urn": pre},
            {"op": "update", "urn": dep, "detailedDiff": {"spec.replicas": {"kind": "update"}}},
            {"op": "create-replacement", "urn": svc, "diffReasons": ["spec"]},
            {"op": "replace", "urn": svc, "diffReasons": ["spec"]},
            {"op": "delete-replaced", "urn": svc},
        ],
        "diagnostics": [{"severity": "error", "message": "no changes were expected"}],
    })  # fmt: skip
    changes = drift.parse_preview(text)
    assert [(c.op, c.type, c.name, c.properties) for c in changes] == [
        ("create", "kubernetes:policy/v1:PodDisruptionBudget", "service-example-service-pdb", ()),
        ("update", "kubernetes:apps/v1:Deployment", "d", ("spec.replicas",)),
        ("replace", "kubernetes:core/v1:Service", "s", ("spec",)),
    ]
    assert drift.preview_errors(text) == ["no changes were expected"]


# --------------------------------------------------------------------------------------------
# Repair


def report_with(findings: list[drift.Finding], k8s: list[drift.K8sChange] = ()) -> drift.Report:  # type: ignore[assignment]
    p, _ = one_plan()
    return drift.Report(STACK, [p], findings, {"w1": 0.4}, list(k8s), 3.0)


def test_the_repair_up_replaces_restarts_once_each_and_refreshes():
    def break_it(h: FakeHost) -> None:
        h.files["/etc/vm-platform/kubelet.yaml"] = (b"edited", 0o644)
        del h.files["/usr/local/bin/kubelet"]
        h.units["kube-proxy"] = ("enabled", "inactive")

    fs, u = findings_of(break_it)
    rep = report_with(fs)
    assert rep.up_args() == ["up", "--yes", "--refresh", "--replace", u["kubelet-restart"], "--replace", u["kp-restart"], "-s", STACK]
    assert {s.urn for s in rep.nudges()} == {u["kubelet-config"], u["bin"]}
    md = rep.markdown()
    assert "**Result: drift found**" in md and "python3 -m tools.drift --stack local --repair" in md
    assert "| file /etc/vm-platform/kubelet.yaml | changed" in md and "re-run `w1-kubelet-config`, replace `w1-kubelet-restart`" in md
    assert "| unit kube-proxy | inactive (wants active) | replace `w1-kube-proxy-restart` |" in md
    assert "--replace " + shlex.quote(u["kp-restart"]) in md and TEST_KEY not in md


def test_a_clean_report_and_a_kubernetes_only_report():
    assert "**Result: no drift**" in report_with([]).markdown() and "## Repair" not in report_with([]).markdown()
    pdb = drift.K8sChange("create", "urn:pulumi:local::vm-platform::kubernetes:policy/v1:PodDisruptionBudget::service-example-service-pdb", ())
    rep = report_with([], [pdb])
    assert rep.drifted and rep.up_args() == ["up", "--yes", "--refresh", "-s", STACK]
    assert "| create | `kubernetes:policy/v1:PodDisruptionBudget` `service-example-service-pdb` |" in rep.markdown()


def test_nudged_marks_only_the_drifted_steps_create_and_keeps_ciphertexts():
    e, u = worker_export(encrypted=True)
    before = json.loads(json.dumps(e.data()))
    state, marked = drift.nudged(e.data(), {u["kubelet-config"], u["bin"]})
    assert sorted(marked) == sorted([u["kubelet-config"], u["bin"]])
    for res_before, res in zip(before["deployment"]["resources"], state["deployment"]["resources"], strict=True):
        if res["urn"] in marked:
            assert res["inputs"]["create"] == res_before["inputs"]["create"] + drift.NUDGE == res["outputs"]["create"]
            assert res["inputs"]["connection"] == res_before["inputs"]["connection"]  # still ciphertext
        else:
            assert res == res_before
    again, _ = drift.nudged(state, {u["bin"]})
    assert again["deployment"]["resources"][6]["inputs"]["create"].count(drift.NUDGE) == 1
    with pytest.raises(drift.DriftError, match="cannot mark"):
        drift.nudged(e.data(), {"urn:pulumi:local::vm-platform::x::nope"})


# --------------------------------------------------------------------------------------------
# The command line, with a fake engine and fake hosts


class FakeEngine:
    def __init__(self, export: Export, preview: list[drift.K8sChange] | None = None, error: str = "") -> None:
        self.export_ = export
        self.k8s = preview or []
        self.error = error
        self.calls: list[tuple[str, ...]] = []
        self.imported: list[dict[str, Any]] = []
        self.env = {"PULUMI_BACKEND_URL": "file:///tmp/x"}
        self.cwd = Path("/tmp/vmp-project")

    def export(self, stack: str, show_secrets: bool) -> dict[str, Any]:
        self.calls.append(("export", stack, str(show_secrets)))
        if self.error:
            raise drift.DriftError(drift.explain_engine_error(stack, self.error))
        data = self.export_.data()
        if not show_secrets:
            data = json.loads(json.dumps(data).replace('"plaintext"', '"ciphertext"'))
        return data

    def import_(self, stack: str, state: dict[str, Any]) -> None:
        self.imported.append(state)

    def preview(self, stack: str) -> tuple[list[drift.K8sChange], float]:
        return list(self.k8s), 0.1

    def run(self, *args: str, **_: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append(args)
        self.k8s = []
        return subprocess.CompletedProcess(args, 0, "", "")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeEngine, FakeHost, dict[str, str]]]:
    e, u = worker_export()
    (p,) = drift.plan(e.data())
    host = FakeHost.converged(p, worker_contents(p))
    eng = FakeEngine(e)
    keys: list[str] = []

    @contextlib.contextmanager
    def agent(k: list[str]) -> Iterator[dict[str, str]]:
        keys.extend(k)
        yield {}

    monkeypatch.setattr(drift, "Engine", lambda cwd: eng)
    monkeypatch.setattr(drift, "ssh_agent", agent)
    monkeypatch.setattr(drift, "SshRunner", lambda env, d: lambda conn, script: host.run(script))
    yield eng, host, u
    assert set(keys) <= {TEST_KEY}


def test_main_exit_codes_clean_drift_and_failure(fake, capsys):
    eng, host, _ = fake
    assert drift.main(["--stack", STACK]) == 0
    out = capsys.readouterr()
    assert "**Result: no drift**" in out.out and "## w1 (10.0.0.11): clean" in out.out
    host.files["/etc/vm-platform/kubelet.yaml"] = (b"x", 0o644)
    assert drift.main(["--stack", STACK]) == 1
    out = capsys.readouterr()
    assert "## w1 (10.0.0.11): 1 drifted" in out.out and "python3 -m tools.drift --stack local --cwd /tmp/vmp-project --repair\n" in out.out
    eng.error = "error: incorrect passphrase, please set PULUMI_CONFIG_PASSPHRASE"
    assert drift.main(["--stack", STACK]) == 2
    out = capsys.readouterr()
    assert "wrong passphrase for stack local: set PULUMI_CONFIG_PASSPHRASE" in out.err and "check failed" in out.out
    for text in (out.out, out.err):
        assert TEST_KEY.splitlines()[1] not in text and "s3cret-token" not in text


def test_main_reports_an_unreachable_host_as_a_failed_check(fake, monkeypatch, capsys):
    def refuse(conn: drift.Connection, script: str) -> str:
        raise drift.DriftError(f"{conn.host}:22 is unreachable over SSH (Connection refused)")

    monkeypatch.setattr(drift, "SshRunner", lambda env, d: refuse)
    assert drift.main(["--stack", STACK]) == 2
    out = capsys.readouterr()
    assert "w1: 10.0.0.11:22 is unreachable over SSH" in out.out and "w1: 10.0.0.11:22 is unreachable" in out.err


def test_main_repair_marks_the_file_step_runs_the_printed_up_and_checks_again(fake, capsys):
    eng, host, u = fake
    host.files["/etc/vm-platform/kubelet.yaml"] = (b"x", 0o644)
    host.units["kube-proxy"] = ("enabled", "inactive")
    real_run = eng.run

    def up(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:  # what `up` does on the host
        host.files["/etc/vm-platform/kubelet.yaml"] = (KUBELET_YAML.encode(), 0o644)
        host.units["kube-proxy"] = ("enabled", "active")
        return real_run(*args, **kw)

    eng.run = up  # type: ignore[method-assign]
    assert drift.main(["--stack", STACK, "--repair"]) == 0
    out = capsys.readouterr().out
    (state,) = eng.imported
    marked = {res["urn"] for res in state["deployment"]["resources"] if str((res.get("inputs") or {}).get("create", "")).endswith(drift.NUDGE)}
    assert marked == {u["kubelet-config"]}
    assert "ciphertext" in json.dumps(state) and "plaintext" not in json.dumps(state)
    ups = [c for c in eng.calls if c[0] == "up"]
    assert ups == [("up", "--yes", "--refresh", "--replace", u["kubelet-restart"], "--replace", u["kp-restart"], "-s", STACK)]
    assert "pulumi up --yes --refresh --replace" in out and "**Result: no drift**" in out.split("# After the repair")[1]


# --------------------------------------------------------------------------------------------
# SSH: pinned host key, the key only in an agent, errors that name the fix


def test_explain_engine_error_names_the_fix():
    assert "PULUMI_CONFIG_PASSPHRASE" in drift.explain_engine_error("dev", "error: incorrect passphrase")
    assert "PULUMI_BACKEND_URL" in drift.explain_engine_error("dev", "error: no stack named 'dev' found")
    assert "pulumi cancel" in drift.explain_engine_error("dev", "error: the stack is currently locked by 1 lock(s).")
    assert drift.explain_engine_error("dev", "a\nb\nc\nd") == "b / c / d"


def fake_ssh(tmp_path: Path, rc: int, stderr: str) -> dict[str, str]:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    ssh = bindir / "ssh"
    ssh.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/argv\ncat > {tmp_path}/stdin\necho "{stderr}" >&2\necho VMP_DRIFT_END\nexit {rc}\n')
    ssh.chmod(ssh.stat().st_mode | stat.S_IXUSR)
    return {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}


@pytest.mark.parametrize(
    "rc,stderr,message",
    [
        (255, "Host key verification failed.", "host key is not the one the stack pins"),
        (255, "ssh: connect to host 10.0.0.1 port 22: Connection refused", "unreachable over SSH"),
        (255, "root@10.0.0.1: Permission denied (publickey).", "refused: check ssh.user and sshPrivateKey"),
        (1, "boom", "check script failed"),
    ],
)
def test_ssh_runner_errors(tmp_path: Path, rc: int, stderr: str, message: str):
    runner = drift.SshRunner(fake_ssh(tmp_path, rc, stderr), tmp_path)
    with pytest.raises(drift.DriftError, match=message):
        runner(drift.Connection("10.0.0.1", 22, "root", HOST_KEY, TEST_KEY), "echo hi\n")


def test_ssh_runner_pins_the_host_key_and_keeps_the_key_off_argv(tmp_path: Path):
    runner = drift.SshRunner(fake_ssh(tmp_path, 0, ""), tmp_path)
    assert "VMP_DRIFT_END" in runner(drift.Connection("10.0.0.1", 2222, "ops", HOST_KEY, TEST_KEY), "echo hi\n")
    argv = (tmp_path / "argv").read_text().splitlines()
    assert "StrictHostKeyChecking=yes" in argv and "GlobalKnownHostsFile=/dev/null" in argv and "BatchMode=yes" in argv
    assert argv[-2:] == ["10.0.0.1", "bash -s"] and argv[argv.index("-p") + 1] == "2222" and argv[argv.index("-l") + 1] == "ops"
    known = Path(next(a.split("=", 1)[1] for a in argv if a.startswith("UserKnownHostsFile=")))
    alias = next(a.split("=", 1)[1] for a in argv if a.startswith("HostKeyAlias="))
    assert known.read_text() == f"{alias} {HOST_KEY}\n"
    assert (tmp_path / "stdin").read_text() == "echo hi\n"
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert "PRIVATE KEY" not in f.read_text(errors="replace"), f


def test_ssh_agent_holds_the_key_in_memory_and_is_stopped(tmp_path: Path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "drift-test", "-f", str(tmp_path / "k")], check=True)
    key = (tmp_path / "k").read_text()
    with drift.ssh_agent([key, key]) as env:
        listed = subprocess.run(["ssh-add", "-l"], env=env, capture_output=True, text=True).stdout
        sock = env["SSH_AUTH_SOCK"]
    assert listed.count("drift-test") == 1
    assert not os.path.exists(sock)
    with pytest.raises(drift.DriftError, match="sshPrivateKey"), drift.ssh_agent(["not a key"]):
        pass


# --------------------------------------------------------------------------------------------
# The engine wrapper, against a stand-in `pulumi` that answers like the real one


def fake_pulumi(tmp_path: Path, rc: int, stdout: str, stderr: str = "") -> drift.Engine:
    bindir = tmp_path / "pulumi-bin"
    bindir.mkdir(exist_ok=True)
    (tmp_path / "out").write_text(stdout)
    script = bindir / "pulumi"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/argv\ncat {tmp_path}/out\necho {shlex.quote(stderr)} >&2\nexit {rc}\n')
    script.chmod(0o755)
    return drift.Engine(tmp_path, {"PATH": f"{bindir}:{os.environ['PATH']}"})


def test_engine_export_errors_name_the_fix(tmp_path: Path):
    with pytest.raises(drift.DriftError, match="wrong passphrase for stack dev"):
        fake_pulumi(tmp_path, 255, "", "error: incorrect passphrase").export("dev", show_secrets=True)
    assert (tmp_path / "argv").read_text().split() == ["stack", "export", "-s", "dev", "--show-secrets"]
    with pytest.raises(drift.DriftError, match="no stack dev in this backend"):
        fake_pulumi(tmp_path, 255, "", "error: no stack named 'dev' found").export("dev", show_secrets=True)
    with pytest.raises(drift.DriftError, match=r"has no state .*run `pulumi up -s dev` first"):
        fake_pulumi(tmp_path, 0, json.dumps({"version": 3, "deployment": {"manifest": {}}})).export("dev", show_secrets=True)


def test_engine_preview_tells_changes_from_a_failed_preview(tmp_path: Path):
    pdb = "urn:pulumi:local::vm-platform::kubernetes:policy/v1:PodDisruptionBudget::pdb"
    changes, _ = fake_pulumi(tmp_path, 255, json.dumps({"steps": [{"op": "create", "urn": pdb}]}), "error: no changes were expected").preview("local")
    assert [c.name for c in changes] == ["pdb"]
    assert (tmp_path / "argv").read_text().split() == ["preview", "--refresh", "--expect-no-changes", "--json", "-s", "local"]
    assert fake_pulumi(tmp_path, 0, json.dumps({"steps": [{"op": "same", "urn": pdb}]})).preview("local")[0] == []
    failed = json.dumps({"steps": [], "diagnostics": [{"severity": "error", "message": "configured Kubernetes cluster is unreachable"}]})
    with pytest.raises(drift.DriftError, match="cluster is unreachable"):
        fake_pulumi(tmp_path, 255, failed).preview("local")
    with pytest.raises(drift.DriftError, match="preview --refresh` of local failed"):
        fake_pulumi(tmp_path, 255, "not json", "error: boom").preview("local")


def test_only_property_free_updates_after_a_repair_are_waited_for():
    ds = "urn:pulumi:local::vm-platform::kubernetes:apps/v1:DaemonSet::metallb-speaker"
    not_ready = drift.K8sChange("update", ds, ())
    assert drift.settling(report_with([], [not_ready]))
    assert not drift.settling(report_with([], []))  # clean: nothing to wait for
    assert not drift.settling(report_with([], [drift.K8sChange("update", ds, ("spec.replicas",))]))  # a real change
    assert not drift.settling(report_with([], [not_ready, drift.K8sChange("create", ds, ())]))  # an object gone
    host_drift = drift.Finding("w1", "unit kube-proxy", "inactive (wants active)")
    assert not drift.settling(report_with([host_drift], [not_ready]))
