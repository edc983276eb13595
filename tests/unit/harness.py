"""Runs the real __main__.py in-process under Pulumi mocks and records every resource.

Mocks never run a command, contact a host or a cluster: these tests check the resource graph
and properties the program asks for, fast. The engine and lab tests prove the rest.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import runpy
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs, Mocks
from pulumi.runtime.settings import SETTINGS
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parents[2]
TEST_KEY = (Path(__file__).parent / "fixtures" / "test_key").read_text()
PROJECT = "vm-platform"

FAKE_CA = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").decode()
FAKE_EXPIRY = base64.b64encode(b"ca 2036-01-01T00:00:00Z\nkubelet 2027-01-01T00:00:00Z\n").decode()
_ACTIVE: list[RecordingMocks] = []  # the run whose transformation records (stack transformations outlive a run)


@dataclass
class Recorded:
    type: str
    name: str
    inputs: dict[str, Any]
    parent: str | None = None
    deps: list[str] = field(default_factory=list)


_SECRET_SIG = "4dabf18193072939515e22adb298388d"


def _is_secret(v: Any) -> bool:
    return isinstance(v, dict) and _SECRET_SIG in v


def unwrap(v: Any) -> Any:
    """Plain values for assertions: secret wrappers removed, assets shown by their path."""
    if _is_secret(v):
        return unwrap(v["value"])
    if isinstance(v, dict):
        return {k: unwrap(x) for k, x in v.items()}
    if isinstance(v, list):
        return [unwrap(x) for x in v]
    if isinstance(v, pulumi.FileAsset):
        return {"fileAsset": v.path}
    return v


class RecordingMocks(Mocks):
    def __init__(self) -> None:
        self.resources: dict[str, Recorded] = {}
        self.graph: dict[str, tuple[str | None, list[str], dict[str, Any]]] = {}
        self.secret_inputs: dict[str, set[str]] = {}
        # What the stack's reference to itself reads (its last deployment's outputs).
        self.previous_outputs: dict[str, Any] = {}

    def transformation(self, args: pulumi.ResourceTransformationArgs) -> None:
        """Records each resource's parent, explicit dependencies and options (mocks don't)."""
        if not _ACTIVE or _ACTIVE[-1] is not self:
            return None
        opts = args.opts
        deps = [d._name for d in (opts.depends_on or []) if hasattr(d, "_name")] if isinstance(opts.depends_on, list) else []
        parent = opts.parent._name if opts.parent is not None and hasattr(opts.parent, "_name") else None
        provider = getattr(opts.provider, "_name", None) if opts.provider is not None else None
        extra = {"additional_secret_outputs": opts.additional_secret_outputs, "delete_before_replace": opts.delete_before_replace, "provider": provider}
        self.graph[args.name] = (parent, deps, extra)
        return None

    def depends_on(self, name: str) -> set[str]:
        """Everything `name` waits for through explicit depends_on (transitively)."""
        seen: set[str] = set()
        todo = list(self.graph.get(name, (None, [], {}))[1])
        while todo:
            d = todo.pop()
            if d not in seen:
                seen.add(d)
                todo.extend(self.graph.get(d, (None, [], {}))[1])
        return seen

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict]:
        self.resources[args.name] = Recorded(args.typ, args.name, {k: unwrap(v) for k, v in args.inputs.items()})
        self.secret_inputs[args.name] = {k for k, v in args.inputs.items() if _is_secret(v)}
        outputs = dict(args.inputs)
        if args.typ == "pulumi:pulumi:StackReference":
            outputs["outputs"] = dict(self.previous_outputs)
        if args.typ == "command:remote:Command":
            create = args.inputs.get("create", "")
            if "pki-init.sh" in create:
                outputs["stdout"] = f"ca={FAKE_CA}\netcd_ca={FAKE_CA}\nexpiry={FAKE_EXPIRY}"
            elif "ca-bundle.sh" in create:
                outputs["stdout"] = f"ca={FAKE_CA}\netcd_ca={FAKE_CA}\n"
            elif "read-kubeconfig.sh" in create:
                outputs["stdout"] = "apiVersion: v1\nkind: Config\n"
            elif "node-keys.sh" in create:
                outputs["stdout"] = f"kubelet={FAKE_CA}\nkube-proxy={FAKE_CA}\nflanneld={FAKE_CA}"
            elif "sign-node.sh" in create:
                outputs["stdout"] = f"kubelet={FAKE_CA}\nkube-proxy={FAKE_CA}\nflanneld={FAKE_CA}\nexpiry={FAKE_EXPIRY}"
            else:
                outputs["stdout"] = "ok"
            outputs["stderr"] = ""
        return f"{args.name}-id", outputs

    def call(self, args: MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        return {}, None

    def of_type(self, typ: str) -> list[Recorded]:
        return [r for r in self.resources.values() if r.type == typ]

    def commands(self) -> dict[str, Recorded]:
        return {n: r for n, r in self.resources.items() if r.type == "command:remote:Command"}


@functools.cache
def tiny_oci_archive() -> str:
    """A small real OCI archive (the program reads its manifest digest), made once per run."""
    from images import oci

    path = Path(tempfile.mkdtemp(prefix="vmp-unit-")) / "tiny.oci.tar"
    oci.write_oci_archive(path, [[oci.file("hello", data=b"hello\n")]], {"architecture": "amd64", "os": "linux", "config": {}}, "1.0.0")
    return str(path)


def base_config() -> dict[str, Any]:
    """The dev stack's config plus a throwaway key: the starting point every test varies."""
    import yaml

    with open(ROOT / "Pulumi.dev.yaml") as f:
        cfg = {k.split(":", 1)[1]: v for k, v in yaml.safe_load(f)["config"].items()}
    for img in cfg["registry"]["images"]:
        img["archive"] = tiny_oci_archive()
    cfg["sshPrivateKey"] = TEST_KEY
    return cfg


SECRET_KEYS = ("sshPrivateKey", "registryPassword", "secrets")


def run_mocked(program: Callable[[], None], stack: str = "dev", preview: bool = False, mocks: RecordingMocks | None = None) -> RecordingMocks:
    """`program` as a Pulumi program under mocks, recording every resource (and, through a stack
    transformation, each one's parent and explicit dependencies)."""
    mocks = mocks or RecordingMocks()
    _ACTIVE[:] = [mocks]
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview)
    SETTINGS.rpc_manager.clear()
    SETTINGS.outputs.clear()

    def wrapped() -> None:
        pulumi.runtime.register_stack_transformation(mocks.transformation)
        program()

    _sync_await(run_pulumi_func(wrapped))
    return mocks


def run_program(config: dict[str, Any], stack: str = "dev", preview: bool = False, previous_outputs: dict[str, Any] | None = None) -> RecordingMocks:
    """The real __main__.py under mocks with `config` as the stack's config (and
    `previous_outputs` as what its last deployment exported)."""
    mocks = RecordingMocks()
    mocks.previous_outputs = dict(previous_outputs or {})
    flat = {f"{PROJECT}:{k}": (v if isinstance(v, str) else json.dumps(v)) for k, v in copy.deepcopy(config).items()}
    secret = [f"{PROJECT}:{k}" for k in SECRET_KEYS if k in config]
    pulumi.runtime.set_all_config(flat, secret)
    return run_mocked(lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"), stack, preview, mocks)
